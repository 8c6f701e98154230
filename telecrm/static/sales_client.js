// The client card's sales block: invoices, payments and the contact frequency from the API.
import { money } from "./common.js";

const STATUSES = { unpaid: "не оплачен", partly_paid: "оплачен частично", paid: "оплачен" };

function show(data) {
  const total = document.getElementById("sales-money");
  if (!data) { total.textContent = ""; return; }
  document.getElementById("sales-every").textContent = data.contact_every_days + " дн.";
  const paid = data.payments.reduce((sum, p) => sum + parseFloat(p.amount), 0);
  const open = data.invoices.filter((i) => i.status !== "paid");
  total.textContent = "Оплачено всего: " + money(paid) +
    (open.length ? "; счета к оплате: " + open.map((i) =>
      "№" + i.number + " (" + STATUSES[i.status] + ", " +
      money(parseFloat(i.amount) - parseFloat(i.paid_amount)) + ")").join(", ")
      : "; неоплаченных счетов нет") + ".";
}

const box = document.getElementById("sales-client");
if (box && window.fetch) {
  fetch("/api/clients/" + box.dataset.client + "/sales", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then(show)
    .catch(() => {});
}
