// The deals board: show the amount field for a won stage and the reason for a lost one.
function sync(form) {
  const select = form.querySelector("select[name=stage_id]");
  const outcome = select.selectedOptions[0] ? select.selectedOptions[0].dataset.outcome : "open";
  form.querySelector("input[name=amount]").closest("label").hidden = outcome !== "won";
  form.querySelector("select[name=lose_reason_id]").closest("label").hidden = outcome !== "lost";
  form.querySelector("input[name=note]").closest("label").hidden = outcome !== "lost";
}

document.querySelectorAll("form.move-form").forEach((form) => {
  form.querySelector("select[name=stage_id]").addEventListener("change", () => sync(form));
  sync(form);
});
