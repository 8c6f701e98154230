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
  502: "Звонок не состоялся.",
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
      toast(response.status === 502 ? (body.error || base) : base, true);
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
// A part marked data-refresh-on="kind kind…" is fetched again when a call event of one of
// those kinds arrives: from its data-src when it has one (a fragment), else from the page
// itself (matched by id, else by position). data-refresh-every="N" also refreshes it every
// N seconds while the page is visible (talk time grows during a call without events).
const pendingKinds = new Set();
let refreshHistoryPending = false;
let refreshTimer = null;

function scheduleRefresh(what) {
  if (what === "history") refreshHistoryPending = true;
  else pendingKinds.add(what);
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(runRefresh, 250);
}

async function runRefresh() {
  const kinds = Array.from(pendingKinds);
  const history = refreshHistoryPending;
  pendingKinds.clear();
  refreshHistoryPending = false;
  try {
    if (history) await refreshHistory();
    const parts = Array.from(document.querySelectorAll("[data-refresh-on]")).filter((node) =>
      kinds.includes("*") || node.dataset.refreshOn.split(/\s+/).some((k) => kinds.includes(k)));
    await refreshParts(parts);
  } catch (e) { /* the next event tries again */ }
}

async function refreshHistory() {
  const box = document.getElementById("history");
  if (!box) return;
  const response = await fetch(box.dataset.src, { credentials: "same-origin" });
  if (response.ok) box.innerHTML = await response.text();
}

async function fetchDocument(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok || response.redirected) return null;
  return new DOMParser().parseFromString(await response.text(), "text/html");
}

async function refreshParts(parts) {
  if (!parts.length) return;
  const all = Array.from(document.querySelectorAll("[data-refresh-on]"));
  let page = null;
  for (const node of parts) {
    let fresh = null;
    if (node.dataset.src) {
      const doc = await fetchDocument(node.dataset.src);
      fresh = doc && doc.body.firstElementChild;
    } else {
      page = page || await fetchDocument(location.href);
      if (!page) return;
      fresh = node.id ? page.getElementById(node.id)
        : page.querySelectorAll("[data-refresh-on]")[all.indexOf(node)];
    }
    if (fresh && node.isConnected) node.replaceWith(document.importNode(fresh, true));
  }
}

function refreshPeriodically() {
  setInterval(() => {
    if (document.visibilityState !== "visible") return;
    const now = Date.now();
    const due = Array.from(document.querySelectorAll("[data-refresh-every]")).filter((node) => {
      const every = 1000 * Number(node.dataset.refreshEvery);
      const last = Number(node.dataset.refreshedAt || now);
      if (!node.dataset.refreshedAt) node.dataset.refreshedAt = String(now);
      return every > 0 && now - last >= every;
    });
    refreshParts(due).catch(() => {});
  }, 1000);
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
  const withheld = !pop.number && !client;  // a hidden caller ID: nobody to call back
  box.append(el("h2", { class: lead && !withheld ? "lead" : "" },
                withheld ? "Скрытый номер" : lead ? "Новый лид" : client.name));
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

// -- missed calls: a system notification, also when this tab is in the background ----------
// The browser asks for permission only after a click on «Включить уведомления».
function notificationButton() {
  const button = document.getElementById("notify-on");
  if (!button) return;
  const ask = window.Notification && Notification.permission === "default";
  button.hidden = !ask;
  if (ask && !button.dataset.bound) {
    button.dataset.bound = "1";
    button.addEventListener("click", async () => {
      const answer = await Notification.requestPermission();
      notificationButton();
      if (answer === "granted") toast("Уведомления о пропущенных звонках и оповещения включены.");
      else toast("Браузер не разрешил уведомления — разрешите их в настройках сайта.", true);
    });
  }
}

function notifyMissed(notice) {
  toast(notice.title, notice.notice === "escalation");
  if (!window.Notification || Notification.permission !== "granted") return;
  const shown = new Notification(notice.title, {
    body: notice.body, lang: "ru", tag: "missed-" + notice.notice + "-" + notice.call_id,
    requireInteraction: notice.notice === "escalation" });
  shown.onclick = () => { window.focus(); location.href = notice.url; shown.close(); };
}

// -- speech alerts: a phrase an alert rule watches for was said in a call -------------------
function notifyAlert(alert) {
  toast(alert.title);
  if (!window.Notification || Notification.permission !== "granted") return;
  const shown = new Notification(alert.title, {
    body: alert.body, lang: "ru", tag: "alert-" + alert.alert_id });
  shown.onclick = () => { window.focus(); location.href = alert.url; shown.close(); };
}

// -- live events ---------------------------------------------------------------------------
function connect() {
  if (!document.body.dataset.live || !window.EventSource) return;
  const dot = document.getElementById("live-dot");
  const source = new EventSource("/api/events");
  source.onopen = () => dot && dot.classList.add("on");
  source.onerror = () => {
    if (dot) dot.classList.remove("on");
    // The browser gives up on a refused stream (401, 403): signed out, or must change
    // the password. Let the server say where to go.
    if (source.readyState === EventSource.CLOSED) {
      fetch("/api/me", { credentials: "same-origin" })
        .then((r) => { if (r.status === 401 || r.status === 403) location.href = "/"; })
        .catch(() => {});
    }
  };
  source.addEventListener("screenpop", (e) => showPop(JSON.parse(e.data)));
  source.addEventListener("missed", (e) => notifyMissed(JSON.parse(e.data)));
  source.addEventListener("alert", (e) => notifyAlert(JSON.parse(e.data)));
  // a call placed from the CRM that his phone did not take (rang out, rejected)
  source.addEventListener("callfailed", (e) => toast(JSON.parse(e.data).message, true));
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
    scheduleRefresh(event.kind);
  });
  source.addEventListener("live", (e) => {
    // Live prompts: the card's «Сценарий» panel and the supervisor's live calls follow them.
    document.dispatchEvent(new CustomEvent("telecrm:live", { detail: JSON.parse(e.data) }));
  });
  source.addEventListener("presence", (e) => {
    const event = JSON.parse(e.data);
    // The header switch (presence.js) and supervisors' boards follow a change of presence.
    document.dispatchEvent(new CustomEvent("telecrm:presence", { detail: event }));
    scheduleRefresh("presence");
  });
  source.addEventListener("reload", () => { scheduleRefresh("history"); scheduleRefresh("*"); });
  source.addEventListener("signed_out", () => { source.close(); location.href = "/login"; });
}

connect();
refreshPeriodically();
if (document.body.dataset.live) notificationButton();

// A list marked data-autosubmit sends its form when changed (no inline handlers: the
// Content-Security-Policy allows scripts from files only).
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLElement && field.matches("[data-autosubmit]") && field.form) {
    field.form.submit();
  }
});
