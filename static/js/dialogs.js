// Dialogs that htmx loads into a slot marked data-dialog-slot open as modals (focus trapped, Esc closes), a button
// marked data-close-dialog closes the dialog it sits in, and a dialog marked data-remove-on-close leaves the page when
// closed, so the next load into the slot starts from the server's HTML again.
document.addEventListener("htmx:afterSwap", (event) => {
  const slot = event.target.closest && event.target.closest("[data-dialog-slot]");
  const dialog = slot && slot.querySelector("dialog");
  if (dialog && !dialog.open) dialog.showModal();
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-close-dialog]");
  if (button) button.closest("dialog")?.close();
});
// "close" does not bubble: listen while it is captured on the way down.
document.addEventListener("close", (event) => {
  if (event.target.matches("dialog[data-remove-on-close]")) event.target.remove();
}, true);
