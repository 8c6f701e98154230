// Report tables sort by any column: click a heading (again to reverse). Numbers sort as numbers.
import { sendJSON } from "./common.js";

function key(cell) {
  const raw = cell ? cell.getAttribute("data-sort") : "";
  const num = parseFloat(raw);
  return raw !== "" && !isNaN(num) && /^-?[0-9.]+$/.test(raw) ? num : (raw || "").toLowerCase();
}

function sortBy(table, index, th) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).filter((r) => r.cells.length > 1);
  const descending = th.getAttribute("aria-sort") !== "descending";
  Array.from(table.tHead.rows[0].cells).forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  rows.sort((a, b) => {
    const x = key(a.cells[index]), y = key(b.cells[index]);
    if (x === y) return 0;
    const before = typeof x === typeof y ? x < y : typeof x === "number";
    return (before ? -1 : 1) * (descending ? -1 : 1);
  });
  rows.forEach((r) => body.appendChild(r));
}

// The overdue report's form: take clients away and give them to another manager.
function reassign(form) {
  const out = document.getElementById("reassign-result");
  const ids = Array.from(form.querySelectorAll("input[name=client_id]:checked"))
    .map((box) => Number(box.value));
  if (!ids.length) { out.textContent = "Отметьте клиентов, которых передать."; return; }
  out.textContent = "Передаю…";
  sendJSON("/api/clients/reassign", { client_ids: ids, owner_id: Number(form.owner_id.value),
                                      reason: form.reason.value })
    .then((r) => r.json().then((body) => [r.ok, body]))
    .then(([ok, body]) => {
      if (!ok) { out.textContent = "Не передано: " + body.error; return; }
      out.textContent = "Передано клиентов: " + body.reassigned + ".";
      window.location.reload();
    })
    .catch(() => { out.textContent = "Нет связи с сервером."; });
}

const form = document.getElementById("reassign-form");
if (form) form.addEventListener("submit", (e) => { e.preventDefault(); reassign(form); });
document.querySelectorAll("table.report").forEach((table) => {
  if (!table.tHead) return;
  Array.from(table.tHead.rows[0].cells).forEach((th, index) => {
    th.addEventListener("click", () => sortBy(table, index, th));
  });
});
