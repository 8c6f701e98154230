// The call-tracking page: number lists (one field per number, add and remove fields) and
// copying a site's snippet. The forms post without this script too (one field each).

function addNumber(list) {
  const rows = list.querySelectorAll(".ct-number");
  const last = rows[rows.length - 1];
  const row = last.cloneNode(true);
  const input = row.querySelector("input");
  input.value = "";
  input.required = false;
  last.after(row);
  input.focus();
}

function removeNumber(row) {
  const list = row.closest(".ct-numbers");
  if (list.querySelectorAll(".ct-number").length > 1) {
    const first = list.querySelector(".ct-number") === row;
    row.remove();
    if (first) list.querySelector(".ct-number input").required = true;
  } else {
    row.querySelector("input").value = "";
  }
}

async function copy(button) {
  const text = button.dataset.copy;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Скопировано";
  } catch (e) {
    const code = button.parentElement.querySelector("code");
    if (code) window.getSelection().selectAllChildren(code);
    button.textContent = "Выделено — нажмите Ctrl+C";
  }
  setTimeout(() => { button.textContent = "Копировать"; }, 3000);
}

document.addEventListener("click", (event) => {
  const more = event.target.closest(".ct-more");
  if (more) { addNumber(more.closest(".ct-numbers")); return; }
  const remove = event.target.closest(".ct-remove");
  if (remove) { removeNumber(remove.closest(".ct-number")); return; }
  const copyButton = event.target.closest(".ct-copy");
  if (copyButton) copy(copyButton);
});
