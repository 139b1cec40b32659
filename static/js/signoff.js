// The portal's sign-off form: count answers as they are given, ask for a comment on every "no" (and put the cursor
// there), and focus the error summary the server sent back so a screen reader announces it.
(() => {
  const form = document.getElementById("signoff-form");
  if (!form) return;
  const items = Array.from(form.querySelectorAll("fieldset.signoff-item"));
  const progress = document.getElementById("signoff-progress");
  const update = () => {
    let answered = 0, no = 0;
    for (const item of items) {
      const checked = item.querySelector("input[type=radio]:checked");
      const isNo = !!checked && checked.value === "no";
      answered += checked ? 1 : 0;
      no += isNo ? 1 : 0;
      item.classList.toggle("is-yes", !!checked && !isNo);
      item.classList.toggle("is-no", isNo);
      item.querySelector("textarea").required = isNo;
    }
    progress.querySelector(".signoff-progress-count").textContent = `${answered} of ${items.length} answered`;
    progress.querySelector(".signoff-progress-no").textContent = no ? `${no} change${no === 1 ? "" : "s"} requested` : "";
  };
  form.addEventListener("change", (event) => {
    update();
    if (event.target.type === "radio" && event.target.value === "no") {
      event.target.closest("fieldset").querySelector("textarea").focus();
    }
  });
  update();
  const problem = document.getElementById("signoff-errors") || document.getElementById("signoff-error");
  if (problem) problem.focus();
})();
