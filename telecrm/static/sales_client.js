// The client card's sales block: invoices, payments and the contact frequency from the API.
(function () {
  "use strict";
  var box = document.getElementById("sales-client");
  if (!box || !window.fetch) return;
  fetch("/api/clients/" + box.dataset.client + "/sales", {credentials: "same-origin"})
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (data) {
      var money = document.getElementById("sales-money");
      if (!data) { money.textContent = ""; return; }
      document.getElementById("sales-every").textContent = data.contact_every_days + " дн.";
      var names = {unpaid: "не оплачен", partly_paid: "оплачен частично", paid: "оплачен"};
      var paid = data.payments.reduce(function (s, p) { return s + parseFloat(p.amount); }, 0);
      var open = data.invoices.filter(function (i) { return i.status !== "paid"; });
      money.textContent = "Оплачено всего: " + paid.toLocaleString("ru-RU") + " ₽" +
        (open.length ? "; счета к оплате: " + open.map(function (i) {
          return "№" + i.number + " (" + names[i.status] + ", " +
            (parseFloat(i.amount) - parseFloat(i.paid_amount)).toLocaleString("ru-RU") + " ₽)";
        }).join(", ") : "; неоплаченных счетов нет") + ".";
    })
    .catch(function () {});
})();
