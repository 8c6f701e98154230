// telecrm: click-to-call, live updates (Server-Sent Events) and the screen pop.
// Plain JavaScript modules, no build step.
import { el, sendJSON } from "./common.js";

// -- toast ---------------------------------------------------------------------------------
let toastTimer = null;
function toast(text, bad) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = text;
  box.classList.toggle("bad", !!bad);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
}

// -- click-to-call -------------------------------------------------------------------------
const CALL_ERRORS = {
  400: "Неверный номер телефона.",
  401: "Сессия истекла — войдите снова.",
  403: "У вас нет своего телефона (внутреннего номера) для звонка.",
  409: "Ваш телефон уже набирает другой номер.",
  502: "Asterisk не смог позвонить: ",
  503: "Телефония недоступна. Попробуйте позже.",
};

async function placeCall(button) {
  const number = button.dataset.call;
  button.disabled = true;
  try {
    const response = await sendJSON("/api/calls/originate", { number: number });
    let body = {};
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (response.status === 202) {
      toast(body.status === "failed" ? "Звонок не состоялся." :
        "Звоним на ваш телефон — снимите трубку, затем пойдёт вызов клиенту.");
    } else {
      const base = CALL_ERRORS[response.status] || "Не удалось позвонить.";
      toast(response.status === 502 ? base + (body.error || "") : base, true);
    }
  } catch (e) {
    toast("Нет связи с сервером.", true);
  } finally {
    setTimeout(() => { button.disabled = false; }, 4000);
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-call]");
  if (button && !button.disabled) placeCall(button);
  const close = event.target.closest("[data-close-pop]");
  if (close) hidePop();
});

// -- refreshing parts of the page ----------------------------------------------------------
const pending = new Set();
let refreshTimer = null;

function scheduleRefresh(what) {
  pending.add(what);
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(runRefresh, 250);
}

async function runRefresh() {
  const jobs = Array.from(pending);
  pending.clear();
  for (const job of jobs) {
    try {
      if (job === "history") await refreshHistory();
      else if (job === "page") await refreshSections();
    } catch (e) { /* the next event tries again */ }
  }
}

async function refreshHistory() {
  const box = document.getElementById("history");
  if (!box) return;
  const response = await fetch(box.dataset.src, { credentials: "same-origin" });
  if (response.ok) box.innerHTML = await response.text();
}

async function refreshSections() {
  const current = document.querySelectorAll("[data-refresh-on]");
  if (!current.length) return;
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (!response.ok) return;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = doc.querySelectorAll("[data-refresh-on]");
  current.forEach((node, i) => { if (fresh[i]) node.replaceWith(fresh[i]); });
}

// -- screen pop ----------------------------------------------------------------------------
let popLinkedid = null;
const CLIENT_STATUSES = { potential: "Потенциальный", new: "Новый", regular: "Постоянный",
                          lost: "Потерянный" };

function showPop(pop) {
  const box = document.getElementById("screenpop");
  if (!box) return;
  popLinkedid = pop.linkedid;
  box.replaceChildren();
  box.append(el("button", { type: "button", class: "close", "data-close-pop": "1",
                            "aria-label": "Закрыть" }, "×"));
  box.append(el("div", { class: "ringing" }, "Входящий звонок"));
  const client = pop.client;
  const lead = pop.is_new_lead || !client;
  box.append(el("h2", { class: lead ? "lead" : "" }, lead ? "Новый лид" : client.name));
  box.append(el("div", { class: "number" }, pop.number_display || pop.number || "номер скрыт"));
  if (client && !lead) {
    const facts = el("div", { class: "muted" });
    facts.textContent = [CLIENT_STATUSES[client.status] || client.status,
      client.owner ? "ответственный: " + client.owner.name : "без ответственного"].join(" · ");
    box.append(facts);
  }
  // call tracking: where the caller came from (the ad, the site, the billboard)
  const origin = el("div", { class: "muted ct-source", hidden: "" });
  box.append(origin);
  if (pop.call_id) {
    fetch("/api/ct/calls/" + encodeURIComponent(pop.call_id) + "/source",
          { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((data) => {
        if (data && data.source && popLinkedid === pop.linkedid) {
          origin.textContent = "Источник: " + data.source;
          origin.hidden = false;
        }
      })
      .catch(() => {});
  }
  const actions = el("div", { class: "actions" });
  if (client) {
    actions.append(el("a", { href: "/clients/" + client.id, class: "open-card" },
                      lead ? "Открыть карточку лида" : "Открыть карточку"));
  }
  box.append(actions);
  box.dataset.clientId = client ? client.id : "";
  box.hidden = false;
}

function hidePop() {
  const box = document.getElementById("screenpop");
  if (box) box.hidden = true;
  popLinkedid = null;
}

// -- live events ---------------------------------------------------------------------------
function connect() {
  if (!document.body.dataset.live || !window.EventSource) return;
  const dot = document.getElementById("live-dot");
  const source = new EventSource("/api/events");
  source.onopen = () => dot && dot.classList.add("on");
  source.onerror = () => dot && dot.classList.remove("on");
  source.addEventListener("screenpop", (e) => showPop(JSON.parse(e.data)));
  source.addEventListener("call", (e) => {
    const event = JSON.parse(e.data);
    // Page scripts react to calls too (the client card's outcome form) without a stream of their own.
    document.dispatchEvent(new CustomEvent("telecrm:call", { detail: event }));
    if (popLinkedid && event.linkedid === popLinkedid &&
        (event.kind === "call_ended" ||
         (event.kind === "answered" && !event.managers.includes(document.body.dataset.extension)))) {
      hidePop();
    }
    const history = document.getElementById("history");
    if (history && event.client_id && String(event.client_id) === history.dataset.client) {
      scheduleRefresh("history");
    }
    if (event.kind === "call_ended") scheduleRefresh("page");
  });
  source.addEventListener("reload", () => { scheduleRefresh("history"); scheduleRefresh("page"); });
  source.addEventListener("signed_out", () => { source.close(); location.href = "/login"; });
}

connect();
