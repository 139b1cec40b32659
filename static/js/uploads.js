// The intake form's file fields upload as soon as a file is chosen when htmx runs (hx-post on change), so the
// Upload button the page offers for browsers without JavaScript would only upload nothing a second time.
document.addEventListener("DOMContentLoaded", () => {
  if (!window.htmx) return;
  const hide = (root) => root.querySelectorAll("[data-upload-button]").forEach((button) => { button.hidden = true; });
  hide(document);
  document.body.addEventListener("htmx:afterSwap", (event) => hide(event.target.parentNode || document));
});
