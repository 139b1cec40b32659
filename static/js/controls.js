// Form controls that act as soon as they change, declared with data- attributes instead of inline handlers (the CSP
// forbids those): a select marked data-autosubmit submits its form; one marked data-navigate goes to the data-url of
// the chosen option.
document.addEventListener("change", (event) => {
  const control = event.target;
  if (control.matches("select[data-autosubmit]")) control.form.submit();
  if (control.matches("select[data-navigate]")) {
    const url = control.selectedOptions[0]?.dataset.url;
    if (url) window.location.assign(url);
  }
});
// After htmx settles a swap into the block a container names in data-scroll-to-saved, bring the row just saved
// (.just-saved) into view: a long list re-rendered from the top would otherwise leave the person lost.
document.addEventListener("htmx:afterSettle", (event) => {
  const area = event.target.closest && event.target.closest("[data-scroll-to-saved]");
  if (!area || event.detail.target?.id !== area.dataset.scrollToSaved) return;
  area.querySelector(".just-saved")?.scrollIntoView({ block: "center" });
});
