// Report tables sort by any column: click a heading (again to reverse). Numbers sort as numbers.
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

document.querySelectorAll("table.report").forEach((table) => {
  if (!table.tHead) return;
  Array.from(table.tHead.rows[0].cells).forEach((th, index) => {
    th.addEventListener("click", () => sortBy(table, index, th));
  });
});
