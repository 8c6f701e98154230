// Live prompts: while the manager talks, a «Сценарий» panel ticks the stages he has done, and
// a box shows the next stage's prompt or the answer to the objection the client just raised
// (events "live", telecrm/live_prompts.py). Any page may have them: the client card, «Обзвон»,
// the task list. A page marks up
//   - a scope, [data-live-scope] (the card's and «Обзвон»'s #scenario), holding the panel's
//     stages (li.sc-step[data-stage], from _scenario.html) and
//   - its box, .sc-live (the card's and «Обзвон»'s #live-prompt), which says what it follows:
//     data-client: the client the page shows; data-call: the call it shows (a linkedid: then
//     only that call's events count); data-live-own: only calls on this user's own phone.
// Boxes inside closed <details> (the task list): the first opens, once per call. The marks stay when the call ends
// (the box says so); resetLive() starts a box clean for the next call.
import { el } from "./common.js";

const OWN = document.body.dataset.extension || "";
const states = new WeakMap();  // box -> { last, ended: Set of linkedids }
const opened = new Set();  // calls whose panel was opened for them

function stateOf(box) {
  let state = states.get(box);
  if (!state) {
    state = { last: null, ended: new Set() };
    states.set(box, state);
  }
  return state;
}

function scopeOf(box) {
  return box.closest("[data-live-scope]") || document;
}

function onOwnPhone(event) {
  return Boolean(OWN) && (event.extension === OWN || (event.managers || []).includes(OWN));
}

/** Whether this box follows the event's call. */
function follows(box, event) {
  if ("liveOwn" in box.dataset && !onOwnPhone(event)) return false;
  if (box.dataset.call) return event.linkedid === box.dataset.call;
  return Boolean(event.client_id) && String(event.client_id) === box.dataset.client;
}

function steps(box) {
  return scopeOf(box).querySelectorAll("li.sc-step[data-stage]");
}

function mark(box, event) {
  const progress = event.progress;
  const stages = new Map(((progress && progress.stages) || []).map((s) => [s.id, s]));
  for (const item of steps(box)) {
    const stage = stages.get(item.dataset.stage);
    if (!stage) continue;
    // When the phrase was said (the manager's audio clock): the delay of the prompt is measurable.
    if (stage.said_at) item.dataset.saidAt = stage.said_at;
    if (stage.recognised_at) item.dataset.recognisedAt = stage.recognised_at;
    item.classList.toggle("sc-done", stage.done);
    item.classList.toggle("sc-todo", !stage.done);
    item.classList.toggle("sc-next", Boolean(progress.next && progress.next.id === stage.id));
  }
}

function unmark(box) {
  for (const item of steps(box)) {
    item.classList.remove("sc-done", "sc-todo", "sc-next");
    delete item.dataset.saidAt;
    delete item.dataset.recognisedAt;
  }
}

function said(event) {
  const progress = event.progress;
  if (!progress) return [el("p", { class: "muted lp-head" }, "Идёт разговор: сценарий для клиента не загружен.")];
  const parts = [];
  const done = progress.stages.filter((s) => s.done).length;
  parts.push(el("p", { class: "lp-head" }, `Идёт разговор: пройдено этапов ${done} из ${progress.stages.length}`));
  if (progress.objection) {
    const obj = el("div", { class: "lp-objection" });
    obj.append(el("b", {}, `Возражение «${progress.objection.title}»`));
    for (const line of progress.objection.say) obj.append(el("p", {}, line));
    parts.push(obj);
  }
  if (progress.next) {
    const next = el("div", { class: "lp-next", "data-stage": progress.next.id });
    next.append(el("b", {}, `Дальше: ${progress.next.title}`));
    for (const line of progress.next.say) next.append(el("p", {}, line));
    parts.push(next);
  } else {
    parts.push(el("p", { class: "lp-all" }, "Все этапы сценария пройдены."));
  }
  return parts;
}

function ended(box) {
  box.replaceChildren(el("p", { class: "muted lp-ended" }, "Разговор закончился."));
  box.hidden = false;
}

/** Draw the event in the box; true when it shows a call going on. */
function show(box, event) {
  const state = stateOf(box);
  if (state.ended.has(event.linkedid)) return false;  // a late event of a call that is over
  if (event.ended) {
    state.ended.add(event.linkedid);
    if (state.last && state.last.linkedid === event.linkedid) ended(box);  // the marks stay
    return false;
  }
  state.last = event;
  box.replaceChildren(...said(event));
  box.hidden = false;
  mark(box, event);
  return true;
}

/** None of the call's panels is open (tasks of the client he calls): open the first, once. */
function reveal(shown, linkedid) {
  if (!shown.length || opened.has(linkedid)) return;
  opened.add(linkedid);
  const panels = shown.map((box) => box.closest("details"));
  if (panels.every((details) => details && !details.open)) panels[0].open = true;
}

/** Start the box clean for the next call: no marks, no prompt, no call followed. */
export function resetLive(box) {
  const state = stateOf(box);
  state.last = null;
  delete box.dataset.call;
  box.replaceChildren();
  box.hidden = true;
  unmark(box);
}

/** The page learnt that the call it followed is over (its own hang-up), whether or not the
 * last live event said so: the box says it ended, the marks stay. */
export function endLive(box) {
  const state = stateOf(box);
  if (box.dataset.call) state.ended.add(box.dataset.call);
  if (!state.last) return;
  state.ended.add(state.last.linkedid);
  ended(box);
}

function follow(box) {
  if (states.has(box)) return;
  stateOf(box);
  // A panel drawn again (the card refreshes itself, a task's panel is fetched): keep the marks.
  const scope = scopeOf(box);
  if (scope !== document) {
    new MutationObserver((changes) => {
      const last = stateOf(box).last;
      if (last && changes.some((c) => !box.contains(c.target))) mark(box, last);
    }).observe(scope, { childList: true, subtree: true });
  }
}

const boxes = () => document.querySelectorAll(".sc-live");
boxes().forEach(follow);
document.addEventListener("telecrm:live", (e) => {
  const event = e.detail;
  const shown = [];
  for (const box of boxes()) {
    follow(box);
    if (follows(box, event) && show(box, event)) shown.push(box);
  }
  reveal(shown, event.linkedid);  // the task's «Сценарий» is fetched, then marked by follow()
});
