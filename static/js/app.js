// Send Django's CSRF token with every htmx request (the token lives in a <meta> tag of base.html).
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
});
// Confirm destructive actions marked with data-confirm (on the form, or on the button that submits it) before submitting.
document.addEventListener("submit", (event) => {
  const message = event.submitter?.dataset.confirm || event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
// Remember the browser's time zone so the server renders times in it.
(() => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && !document.cookie.split("; ").includes(`tz=${zone}`)) {
    document.cookie = `tz=${zone}; path=/; max-age=31536000; SameSite=Lax`;
  }
})();
// One handler for every htmx request that fails (4xx, 5xx, network, timeout): say what went wrong where the person
// acted, and put state controls (selects, checkboxes, radios) back to the values the server last confirmed, so the
// screen never shows a change that was not saved. The server's values are the controls' defaults (the HTML it
// rendered), moved forward after each successful request. Typed text is kept: it is the person's draft.
(() => {
  const STATE_CONTROLS = "select, input[type=checkbox], input[type=radio]";

  const scopeOf = (elt) => elt.closest("form") || elt;
  const controlsIn = (scope) => (scope.matches(STATE_CONTROLS) ? [scope] : [...scope.querySelectorAll(STATE_CONTROLS)]);

  const restore = (scope) => {
    for (const control of controlsIn(scope)) {
      if (control.tagName === "SELECT") for (const option of control.options) option.selected = option.defaultSelected;
      else control.checked = control.defaultChecked;
    }
  };
  const confirmSaved = (scope) => {
    for (const control of controlsIn(scope)) {
      if (control.tagName === "SELECT") for (const option of control.options) option.defaultSelected = option.selected;
      else control.defaultChecked = control.checked;
    }
  };

  // The server's own words when it sent a short message (plain text, or HTML with a role="alert" element).
  const serverMessage = (xhr) => {
    const body = (xhr && xhr.responseText) || "";
    if (!body.trim()) return "";
    const doc = new DOMParser().parseFromString(body, "text/html");
    const alert = doc.querySelector('[role="alert"]');
    const text = (alert ? alert.textContent : doc.body ? doc.body.textContent : body).replace(/\s+/g, " ").trim();
    return text.length <= 300 ? text : "";
  };

  const errorBox = (scope) => {
    const next = scope.nextElementSibling;
    return next && next.classList.contains("htmx-error") ? next : null;
  };
  const show = (scope, message) => {
    let box = errorBox(scope);
    if (!box) {
      box = document.createElement("p");
      box.className = "htmx-error";
      box.setAttribute("role", "alert");
      scope.insertAdjacentElement("afterend", box);
    }
    box.textContent = message;
  };

  const fail = (event, fallback) => {
    const scope = scopeOf(event.detail.elt);
    restore(scope);
    show(scope, serverMessage(event.detail.xhr) || fallback);
  };

  // A refusal (4xx) that re-renders the block it belongs to (same id as the target, or retargeted by the server)
  // is swapped in: it carries the server's own message and the true state. htmx leaves 4xx bodies unswapped by
  // default, which hid every form error the server sent back.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const { xhr, target } = event.detail;
    if (xhr.status < 400 || xhr.status >= 500 || !target) return;
    const fragment = document.createElement("template");
    fragment.innerHTML = xhr.responseText || "";
    const first = fragment.content.firstElementChild;
    if (xhr.getResponseHeader("HX-Retarget") || (first && target.id && first.id === target.id)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    fail(event, status >= 500
      ? `The server could not complete this (error ${status}). Nothing was changed; please try again.`
      : `This was not saved (error ${status}). Nothing was changed.`);
  });
  document.addEventListener("htmx:sendError", (event) => {
    fail(event, "Could not reach the server. Nothing was saved; check your connection and try again.");
  });
  document.addEventListener("htmx:timeout", (event) => {
    fail(event, "The server took too long to answer. Nothing was saved; please try again.");
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const elt = event.detail.elt;
    if (!event.detail.successful || !elt.isConnected) return;
    const scope = scopeOf(elt);
    confirmSaved(scope);
    errorBox(scope)?.remove();
  });
})();
