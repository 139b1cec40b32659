// The intake form's file fields upload as soon as a file is chosen when htmx runs (hx-post on change), so the
// Upload button the page offers browsers without JavaScript would only post an empty field: hide it, also in each
// field htmx swaps back in.
if (window.htmx) {
  const hide = (root) => root.querySelectorAll("[data-upload-button]").forEach((button) => { button.hidden = true; });
  hide(document);
  window.htmx.onLoad(hide);
}
