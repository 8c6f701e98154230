// The sales rules page: the new pipeline's stages as rows — add, remove, move up and down,
// and the task fields only for working stages. The rows post in the order shown.

const list = document.getElementById("new-stages");

function syncTask(row) {
  const outcome = row.querySelector(".sp-outcome").value;
  row.querySelector(".sp-task").hidden = outcome !== "open";
  row.classList.remove("open", "won", "lost");
  row.classList.add(outcome);
}

function blankRow() {
  const row = list.querySelector(".sp-new-stage").cloneNode(true);
  row.querySelector("[name=stage_name]").value = "";
  row.querySelector("[name=stage_name]").placeholder = "";
  row.querySelector("[name=stage_outcome]").value = "open";
  row.querySelector("[name=stage_task_kind]").value = "call";
  row.querySelector("[name=stage_task_title]").value = "";
  row.querySelector("[name=stage_days]").value = "1";
  row.querySelector("[name=stage_assignee]").value = "owner";
  syncTask(row);
  return row;
}

function addRow() {
  const row = blankRow();
  const closing = Array.from(list.children).find((r) => !r.classList.contains("open"));
  list.insertBefore(row, closing || null);
  row.querySelector("[name=stage_name]").focus();
}

if (list) {
  list.addEventListener("click", (event) => {
    const row = event.target.closest(".sp-new-stage");
    if (!row) return;
    if (event.target.closest(".sp-up") && row.previousElementSibling) {
      list.insertBefore(row, row.previousElementSibling);
    } else if (event.target.closest(".sp-down") && row.nextElementSibling) {
      list.insertBefore(row.nextElementSibling, row);
    } else if (event.target.closest(".sp-remove") && list.children.length > 1) {
      row.remove();
    }
  });
  list.addEventListener("change", (event) => {
    if (event.target.matches(".sp-outcome")) syncTask(event.target.closest(".sp-new-stage"));
  });
  document.getElementById("add-new-stage").addEventListener("click", addRow);
}
