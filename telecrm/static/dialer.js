// «Обзвон»: the manager's dialer. The server keeps the session (GET /api/dialer draws it);
// the hang-up comes from the live call events (app.js dispatches them as "telecrm:call").
// While he talks, the «Сценарий» panel follows his call's live prompts (live_prompts.js).
import { el, number, sendJSON } from "/static/common.js";
import { endLive, resetLive } from "/static/live_prompts.js";

const $ = (id) => document.getElementById(id);
let view = null;          // the last state from the server
let countdown = null;     // { left, timer } while counting down to the next client
let reported = new Set(); // call ids whose hang-up was sent
let callingSince = null;  // when this page saw the call start
let scenarioFor = null;   // the client whose «Сценарий» is shown
const STALE_CALL_MS = 60000;
const OWN = document.body.dataset.extension || "";

const STATES = { active: "идёт обзвон", paused: "пауза", ended: "завершён" };
const PHASES = { calling: "звонок", wrap_up: "итог звонка", countdown: "следующий клиент", idle: "" };
const CALL_WORDS = { answered: "Разговор состоялся.", busy: "Занято.", no_answer: "Клиент не ответил.",
  failed: "Вызов не прошёл.", missed: "Клиент не ответил." };

// Times read in the workday's timezone, whatever the computer's.
const TZ = document.getElementById("dl-page").dataset.tz || undefined;
function hm(iso) {
  return new Date(iso).toLocaleTimeString("ru-RU", { hour: "2-digit", minute: "2-digit", timeZone: TZ });
}
function dmhm(iso) {
  const d = new Date(iso);
  return d.toLocaleDateString("ru-RU", { day: "2-digit", month: "2-digit", timeZone: TZ }) + " " + hm(iso);
}

function showError(text) {
  const box = $("dl-error");
  box.textContent = text || "";
  box.hidden = !text;
}

async function call(url, body) {
  const response = body === undefined ? await fetch(url, { credentials: "same-origin" })
    : await sendJSON(url, body);
  let data = {};
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) {
    showError(data.error || "Не удалось выполнить действие.");
    throw new Error(data.error || String(response.status));
  }
  showError("");
  return data;
}

// -- drawing the state ---------------------------------------------------------------------
function drawFigures(s) {
  const session = s.session;
  $("dl-calls").textContent = number(session.calls);
  $("dl-per-hour").textContent = number(session.calls_per_hour, 1);
  $("dl-talk").textContent = `${number(s.talk.talk_minutes, 1)} из ${number(s.talk.target_minutes)}`;
  const projection = $("dl-projection");
  projection.textContent = `${number(s.talk.projected_minutes)} мин ${s.talk.on_track ? "✓" : "✗"}`;
  projection.classList.toggle("red", !s.talk.on_track);
  $("dl-left").textContent = number(s.left);
  const phase = session.state === "active" ? PHASES[session.phase] : "";
  $("dl-state").textContent = STATES[session.state] + (phase ? " · " + phase : "");
  $("dl-pause").hidden = session.state !== "active";
  $("dl-resume").hidden = session.state !== "paused";
}

function drawCard(s) {
  const card = s.card;
  $("dl-client").textContent = card.name;
  $("dl-client").href = `/clients/${card.id}`;
  $("dl-status").textContent = card.status;
  $("dl-abc").hidden = !card.abc_group;
  $("dl-abc").textContent = card.abc_group ? `группа ${card.abc_group}` : "";
  $("dl-task-title").textContent = `${s.task.title} · до ${dmhm(s.task.due_at)}`;
  $("dl-overdue").hidden = !s.task.overdue;
  $("dl-attempt").hidden = s.attempt <= 1;
  $("dl-attempt").textContent = `попытка ${s.attempt} из ${s.rules.max_attempts}`;
  $("dl-contact").textContent = card.contact || "—";
  $("dl-phone").textContent = card.phones.length ? card.phones[0].display : "нет номера";
  $("dl-deal").textContent = card.deal
    ? [card.deal.title, card.deal.stage && `этап «${card.deal.stage}»`, card.deal.amount]
      .filter(Boolean).join(", ")
    : "нет открытой сделки";
  const notes = $("dl-notes");
  notes.replaceChildren();
  for (const n of card.last_contacts) {
    const li = el("li");
    li.append(el("span", { class: "muted" }, `${dmhm(n.at)} · ${n.what}`), el("br"),
      document.createTextNode(n.text || "—"));
    notes.append(li);
  }
  if (!card.last_contacts.length) notes.append(el("li", { class: "muted" }, "Контактов ещё не было."));
  const live = $("live-prompt");
  if (live.dataset.client !== String(card.id)) {  // another client: nothing of the last one's call
    resetLive(live);
    live.dataset.client = String(card.id);
  }
  loadScenario(card.id);
}

/** The «Сценарий» panel for the client on the card: the server renders it, once per client
 * (the same panel as on the client card and the task list). */
async function loadScenario(clientId) {
  if (scenarioFor === clientId) return;
  scenarioFor = clientId;
  const box = $("dl-scenario");
  try {
    const response = await fetch(`/clients/${clientId}/scenario`, { credentials: "same-origin" });
    if (scenarioFor !== clientId) return;
    if (response.ok) box.innerHTML = await response.text();
    else box.replaceChildren(el("p", { class: "muted" }, "Сценарий недоступен."));
  } catch (e) {
    scenarioFor = null;  // try again with the next state
    box.replaceChildren(el("p", { class: "muted" }, "Нет связи с сервером."));
  }
}

function draw(s) {
  view = s;
  const session = s.session;
  $("dl-start").hidden = !!session;
  $("dl-session").hidden = !session;
  if (!session) {
    $("dl-start-left").textContent = s.left
      ? `К звонку сегодня: ${number(s.left)}. Сначала просроченные, затем клиенты группы A, B, C.`
      : "На сегодня звонков в списке нет.";
    return;
  }
  drawFigures(s);
  const working = !!s.card;
  $("dl-work").hidden = !working;
  $("dl-done").hidden = working;
  if (!working) {
    $("dl-done-title").textContent = s.next_retry_at ? "Пока звонить некому"
      : "Список на сегодня пройден";
    $("dl-done-text").textContent = s.next_retry_at
      ? `Повторных звонков ждут: ${s.waiting_retries}; ближайший в ${hm(s.next_retry_at)}.`
      : "Все звонки на сегодня сделаны.";
    $("dl-wrapup").hidden = true;
    return;
  }
  drawCard(s);
  if (session.phase === "countdown" && !countdown) startCountdown("Следующий клиент через");
  const calling = session.phase === "calling";
  if (!calling) callingSince = null;
  else if (callingSince === null) callingSince = Date.now();
  // His own phone may never have been picked up: after a while he may call again or skip.
  const stale = calling && Date.now() - callingSince > STALE_CALL_MS;
  $("dl-call").disabled = (calling && !stale) || session.state !== "active" ||
    session.phase === "countdown";
  $("dl-skip").disabled = calling && !stale;
  $("dl-call-state").textContent = !calling ? ""
    : stale ? "Звонок не состоялся? Позвоните ещё раз или пропустите клиента."
      : "Звоним на ваш телефон — снимите трубку, затем пойдёт вызов клиенту.";
  $("dl-wrapup").hidden = session.phase !== "wrap_up";
  if (session.phase === "wrap_up" && s.last_call && !$("dl-result").dataset.call) {
    openForm(s.last_call.call_id, CALL_WORDS[s.last_call.status] || "", "");
  }
}

async function refresh() {
  draw(await call("/api/dialer"));
}

// -- the call and its hang-up -------------------------------------------------------------
async function placeCall() {
  stopCountdown();
  resetLive($("live-prompt"));  // each call starts with a clean script
  $("dl-call").disabled = true;
  try {
    const s = await call("/api/dialer/call", {});
    draw(s);
    if (s.placed && s.placed.status === "failed") showError("Звонок не состоялся.");
  } catch (e) {
    await refresh().catch(() => {});
  }
}

async function hungUp(callId) {
  if (reported.has(callId)) return;
  reported.add(callId);
  endLive($("live-prompt"));  // the marks stay; the panel says the call is over
  try {
    const s = await call("/api/dialer/hangup", { call_id: callId });
    const h = s.hangup;
    draw(s);
    if (h.form) {
      openForm(h.call_id, CALL_WORDS[h.status] || "", h.note);
    } else {
      const due = h.retry ? ` Повторный звонок в ${hm(h.retry.due_at)}.` : "";
      startCountdown(`${CALL_WORDS[h.status] || ""}${due} Следующий клиент через`);
    }
  } catch (err) { /* the error is shown */ }
}

function isThisCall(event) {
  return event.client_id === view.card.id || event.client_number === view.session.number;
}

// The hang-up comes by the live events at once...
document.addEventListener("telecrm:call", (e) => {
  const event = e.detail;
  if (!view || !view.session || view.session.phase !== "calling" || !view.card) return;
  // The call placed from his phone: the live prompts follow it (whichever client it is stored with).
  const live = $("live-prompt");
  if (event.kind !== "call_ended" && !live.dataset.call && isThisCall(event) &&
      (event.extension === OWN || (event.rang || []).includes(OWN) ||
       (event.managers || []).includes(OWN))) {
    live.dataset.call = event.linkedid;
  }
  if (event.kind !== "call_ended" || event.direction !== "outbound" || !event.call_id) return;
  if (isThisCall(event)) {
    hungUp(event.call_id);
  }
});

// ...or, when the stream did not bring it, the server finds the ended call itself.
setInterval(async () => {
  if (!view || !view.session || view.session.phase !== "calling" || document.hidden) return;
  try {
    const s = await call("/api/dialer");
    if (s.session && s.session.phase === "calling" && s.session.ended_call_id) {
      hungUp(s.session.ended_call_id);
    } else if (Date.now() - (callingSince || Date.now()) > STALE_CALL_MS) {
      draw(s);
    }
  } catch (e) { /* next time */ }
}, 2000);

// -- the outcome-and-next-task form ---------------------------------------------------------
function openForm(callId, said, note) {
  const form = $("dl-form");
  form.reset();
  $("dl-result").dataset.call = callId || "";
  $("dl-result").textContent = said + (note ? " " + note : "");
  $("dl-note").value = note || "";
  $("dl-wrapup").hidden = false;
  $("dl-wrapup").scrollIntoView({ block: "nearest" });
}

$("dl-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const callId = Number($("dl-result").dataset.call);
  const picked = form.querySelector("input[name=outcome_id]:checked");
  const note = form.elements.note.value.trim();
  try {
    if (callId && picked) {
      await call(`/api/calls/${callId}/outcome`, { outcome_id: Number(picked.value), note: note });
    }
    const next = { kind: form.elements.kind.value, due_at: form.elements.due_at.value };
    if (form.elements.title.value.trim()) next.title = form.elements.title.value.trim();
    if (view.task.status === "open") {
      await call(`/api/tasks/${view.task.id}/complete`, { note: note || null, next: next });
    } else {
      // A callback is closed by the call that reached the client: only the next task is left.
      await call(`/api/clients/${view.card.id}/tasks`, next);
    }
    view = await call("/api/dialer/saved", {});
  } catch (err) { return; }
  $("dl-result").dataset.call = "";
  stopCountdown();
  startCountdown("Сохранено. Следующий клиент через");
  draw(view);
});

// -- the countdown to the next client -------------------------------------------------------
function stopCountdown() {
  if (countdown) clearInterval(countdown.timer);
  countdown = null;
  $("dl-countdown").hidden = true;
}

function tick() {
  if (view.session.state !== "active") return; // paused: the countdown waits
  if (countdown.left <= 0) { nextClient(); return; }
  $("dl-seconds").textContent = `${countdown.left} с`;
  countdown.left -= 1;
}

function startCountdown(text) {
  stopCountdown();
  countdown = { left: view.countdown_seconds, timer: null };
  $("dl-countdown-text").textContent = text;
  $("dl-countdown").hidden = false;
  tick();
  countdown.timer = setInterval(tick, 1000);
}

async function nextClient() {
  stopCountdown();
  try {
    const s = await call("/api/dialer/next", {});
    draw(s);
    if (s.session && s.session.state === "active" && s.card) await placeCall();
  } catch (e) { /* shown */ }
}

// -- controls -------------------------------------------------------------------------------
$("dl-start-button").addEventListener("click", async () => {
  try { draw(await call("/api/dialer/start", {})); } catch (e) { /* shown */ }
});
$("dl-call").addEventListener("click", placeCall);
$("dl-recheck").addEventListener("click", nextClient);
// While he waits for a retry's time, the list is looked at again every half minute.
setInterval(() => {
  if (view && view.session && view.session.state === "active" && !view.card && view.next_retry_at &&
      new Date(view.next_retry_at) <= new Date()) nextClient();
}, 30000);
$("dl-now").addEventListener("click", nextClient);
$("dl-skip").addEventListener("click", async () => {
  stopCountdown();
  try { draw(await call("/api/dialer/next", { skip: true })); } catch (e) { /* shown */ }
});
$("dl-pause").addEventListener("click", async () => {
  try {
    draw(await call("/api/dialer/pause", {}));
    if (countdown) $("dl-countdown-text").textContent = "Пауза. Следующий клиент через";
  } catch (e) { /* shown */ }
});
$("dl-resume").addEventListener("click", async () => {
  try {
    draw(await call("/api/dialer/resume", {}));
    if (countdown) $("dl-countdown-text").textContent = "Следующий клиент через";
  } catch (e) { /* shown */ }
});
$("dl-end").addEventListener("click", async () => {
  stopCountdown();
  try { draw(await call("/api/dialer/end", {})); } catch (e) { /* shown */ }
});

refresh().catch(() => {});
