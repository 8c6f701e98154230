// The wallboard: queues and managers for a wall screen. Drawn from /api/wallboard at once,
// again on every call event (SSE) and every few seconds (the day's figures); in between,
// waits, call durations and the clock count up each second from the server's own figures,
// so a screen whose clock is wrong still shows the right times.
import { duration, el, number, percent } from "/static/common.js";

const REFRESH_MS = 10000;
const tz = document.body.dataset.tz || "Europe/Moscow";
const queuesBox = document.getElementById("wb-queues");
const managersBox = document.getElementById("wb-managers");
let board = JSON.parse(document.getElementById("wb-data").textContent);
let received = performance.now();

const elapsed = () => (performance.now() - received) / 1000;
const serverNow = () => new Date(Date.parse(board.at) + elapsed() * 1000);

/** «1 разговор», «3 разговора», «5 разговоров». */
function conversations(n) {
  const tens = n % 100;
  const ones = n % 10;
  const word = tens >= 11 && tens <= 14 ? "разговоров"
    : ones === 1 ? "разговор" : ones >= 2 && ones <= 4 ? "разговора" : "разговоров";
  return `${number(n)} ${word}`;
}

function stat(cls, label, value, extra = "") {
  const box = el("div", { class: `wb-stat ${cls} ${extra}`.trim() });
  box.append(el("span", { class: "wb-value" }, value), el("span", { class: "wb-label" }, label));
  return box;
}

function drawQueues() {
  const cards = board.queues.map((q) => {
    const card = el("article", { class: "wb-queue", "data-queue": q.queue });
    card.classList.toggle("has-waiting", q.waiting > 0);
    card.append(el("h2", {}, q.team ? `${q.team} · очередь ${q.queue}` : `Очередь ${q.queue}`));
    const now = el("div", { class: "wb-now" });
    now.append(
      stat("wb-waiting", "ждут ответа", number(q.waiting), q.waiting ? "alert" : ""),
      stat("wb-longest", "дольше всех", q.waiting ? duration(q.longest_wait_seconds) : "—",
           q.waiting ? "alert" : ""));
    const day = el("div", { class: "wb-day" });
    day.append(
      stat("wb-answered", "отвечено сегодня", number(q.answered)),
      stat("wb-abandoned", "пропущено", number(q.abandoned), q.abandoned ? "warn" : ""),
      stat("wb-sl", `ответ за ${board.service_level_seconds} с`,
           q.service_level === null ? "—" : percent(q.service_level, 0),
           q.service_level !== null && q.service_level < 80 ? "warn" : ""),
      stat("wb-avg", "среднее ожидание",
           q.average_wait_seconds === null ? "—" : duration(q.average_wait_seconds)));
    const list = el("ol", { class: "wb-callers" });
    for (const c of q.callers) {
      const item = el("li", { "data-since": String(c.waiting_seconds) });
      item.append(el("span", { class: "wb-number", title: c.number_display }, c.client || c.number_display),
                  el("span", { class: "wb-wait" }, duration(c.waiting_seconds)));
      list.append(item);
    }
    if (q.waiting > q.callers.length) {
      list.append(el("li", { class: "wb-more" }, `и ещё ${number(q.waiting - q.callers.length)}`));
    }
    card.append(now, day, list);
    return card;
  });
  queuesBox.replaceChildren(...cards);
  queuesBox.hidden = cards.length === 0;
}

function drawManagers() {
  const cards = board.managers.map((m) => {
    const card = el("article", { class: `wb-manager state-${m.state}`, "data-ext": m.extension || "" });
    const head = el("div", { class: "wb-who" });
    head.append(el("span", { class: "wb-name" }, m.name),
                el("span", { class: "wb-ext" }, m.extension || ""));
    const state = el("div", { class: "wb-state-line" });
    state.append(el("span", { class: "wb-state" }, m.state_label),
                 el("span", { class: "wb-since" }, m.state_seconds === null ? "" : duration(m.state_seconds)));
    const talk = el("div", { class: "wb-talk-line" });
    talk.append(el("span", { class: "wb-talk" }, `${number(Math.floor(m.talk_seconds / 60))} мин`),
                el("span", { class: "wb-target" }, ` из ${number(Math.ceil(m.target_seconds / 60))}`),
                el("span", { class: "wb-calls" }, conversations(m.calls)));
    const bar = el("div", { class: "wb-bar" });
    const fill = el("div", { class: "wb-fill" });
    bar.append(fill);
    card.append(head, state, talk, bar);
    return card;
  });
  managersBox.replaceChildren(...cards);
  // Few managers fill the width; many wrap into a grid that still fits the screen.
  const n = cards.length;
  const columns = n <= 4 ? Math.max(n, 1) : Math.min(6, Math.ceil(Math.sqrt(n * 1.6)));
  managersBox.style.setProperty("--columns", String(columns));
  managersBox.style.setProperty("--rows", String(Math.max(2, Math.ceil(n / columns))));
  tick();
}

/** Count waits, states and talk up from the last figures; redraw the clock. */
function tick() {
  const dt = elapsed();
  for (const q of board.queues) {
    const card = queuesBox.querySelector(`[data-queue="${CSS.escape(q.queue)}"]`);
    if (!card) continue;
    if (q.waiting) card.querySelector(".wb-longest .wb-value").textContent = duration(q.longest_wait_seconds + dt);
    card.querySelectorAll(".wb-callers li[data-since]").forEach((item) => {
      item.querySelector(".wb-wait").textContent = duration(Number(item.dataset.since) + dt);
    });
  }
  for (const m of board.managers) {
    const card = managersBox.querySelector(`[data-ext="${CSS.escape(m.extension || "")}"]`);
    if (!card) continue;
    if (m.state_seconds !== null) card.querySelector(".wb-since").textContent = duration(m.state_seconds + dt);
    const talk = m.talk_seconds + (m.state === "talking" ? dt : 0);
    card.querySelector(".wb-talk").textContent = `${number(Math.floor(talk / 60))} мин`;
    const share = m.target_seconds ? Math.min(100, (100 * talk) / m.target_seconds) : 100;
    card.querySelector(".wb-fill").style.width = `${share}%`;
    card.classList.toggle("met", talk >= m.target_seconds);
  }
  const now = serverNow();
  document.getElementById("wb-clock").textContent = now.toLocaleTimeString("ru-RU", { timeZone: tz, hour: "2-digit", minute: "2-digit" });
  document.getElementById("wb-date").textContent = now.toLocaleDateString("ru-RU", { timeZone: tz, weekday: "long", day: "numeric", month: "long" });
}

function draw() {
  drawQueues();
  drawManagers();
  document.getElementById("wb-no-telephony").hidden = Boolean(board.telephony);
}

let busy = false;
let again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const answer = await fetch("/api/wallboard", { credentials: "same-origin" });
    if (answer.status === 401) { location.href = "/login?next=/wallboard"; return; }
    if (!answer.ok) return;
    board = await answer.json();
    received = performance.now();
    draw();
  } catch (error) {
    // the server restarts or the network blinks: the next event or interval tries again
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}

function follow() {
  const dot = document.getElementById("wb-live");
  if (!window.EventSource) return;
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => { dot.classList.add("on"); refresh(); });
  source.addEventListener("error", () => dot.classList.remove("on"));
  source.addEventListener("call", refresh);
  source.addEventListener("reload", refresh);
  source.addEventListener("signed_out", () => { source.close(); location.href = "/login"; });
}

draw();
follow();
setInterval(tick, 1000);
setInterval(refresh, REFRESH_MS);
