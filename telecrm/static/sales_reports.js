// Report tables sort by any column: click a heading (again to reverse). Numbers sort as numbers.
(function () {
  "use strict";
  function key(cell) {
    var raw = cell ? cell.getAttribute("data-sort") : "";
    var num = parseFloat(raw);
    return raw !== "" && !isNaN(num) && /^-?[0-9.]+$/.test(raw) ? num : (raw || "").toLowerCase();
  }
  function sortBy(table, index, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.cells.length > 1; });
    var descending = th.getAttribute("aria-sort") !== "descending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      if (x === y) return 0;
      var before = typeof x === typeof y ? x < y : typeof x === "number";
      return (before ? -1 : 1) * (descending ? -1 : 1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  // The overdue report's form: take clients away and give them to another manager.
  function reassign(form) {
    var out = document.getElementById("reassign-result");
    var ids = form.ids.value.split(/[\s,;]+/).filter(Boolean).map(Number);
    var token = document.querySelector("meta[name=csrf-token]").content;
    out.textContent = "Передаю…";
    fetch("/api/clients/reassign", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
      body: JSON.stringify({client_ids: ids, owner_id: Number(form.owner_id.value),
                            reason: form.reason.value})
    }).then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
      .then(function (res) {
        if (!res[0]) { out.textContent = "Не передано: " + res[1].error; return; }
        out.textContent = "Передано клиентов: " + res[1].reassigned + ".";
        window.location.reload();
      })
      .catch(function () { out.textContent = "Нет связи с сервером."; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("reassign-form");
    if (form) form.addEventListener("submit", function (e) { e.preventDefault(); reassign(form); });
    Array.prototype.forEach.call(document.querySelectorAll("table.report"), function (table) {
      if (!table.tHead) return;
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
        th.addEventListener("click", function () { sortBy(table, index, th); });
      });
    });
  });
})();
