// The team board of «Обзвон»: who is in a session, on a call, paused or idle; refreshed by
// itself every few seconds and at once on every call event of the team.
import { duration, el, number } from "/static/common.js";

const WORDS = { off: "не в обзвоне", call: "на звонке", paused: "пауза", wrap_up: "заполняет итог",
  idle: "ждёт звонка" };
const box = document.getElementById("dl-team");
let timer = null;

async function refresh() {
  try {
    const response = await fetch(box.dataset.src, { credentials: "same-origin" });
    if (!response.ok) return;
    const body = await response.json();
    const rows = document.getElementById("dl-rows");
    rows.replaceChildren(...body.managers.map((r) => {
      const tr = el("tr", { "data-user": r.user_id });
      const who = el("td", { "data-label": "Менеджер" }, r.name + " ");
      who.append(el("span", { class: "muted" }, r.extension || ""));
      tr.append(who,
        el("td", { "data-label": "Обзвон", class: `dl-st-${r.state}` }, WORDS[r.state] || r.state),
        el("td", { "data-label": "Клиент" }, r.client || "—"),
        el("td", { "data-label": "Звонков" }, number(r.calls)),
        el("td", { "data-label": "В час" }, number(r.calls_per_hour, 1)),
        el("td", { "data-label": "Разговор" }, duration(r.talk_seconds)));
      return tr;
    }));
    document.getElementById("dl-updated").textContent =
      "обновлено в " + new Date(body.at).toLocaleTimeString("ru-RU", { timeZone: box.dataset.tz });
  } catch (e) { /* next time */ }
}

function soon() {
  clearTimeout(timer);
  timer = setTimeout(refresh, 300);
}

document.addEventListener("telecrm:call", soon);
setInterval(() => { if (!document.hidden) refresh(); }, 5000);
refresh();
