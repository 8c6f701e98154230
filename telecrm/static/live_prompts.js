// Live prompts on the client card: while the manager talks to this client, the «Сценарий»
// panel ticks the stages he has done, and a box shows the next stage's prompt or the
// answer to the objection the client just raised (events "live", telecrm/live_prompts.py).
import { el } from "./common.js";

const box = document.getElementById("live-prompt");
let last = null;

function mark(event) {
  const stages = (event.progress && event.progress.stages) || [];
  for (const stage of stages) {
    const item = document.querySelector(`#scenario li.sc-step[data-stage="${CSS.escape(stage.id)}"]`);
    if (!item) continue;
    // When the phrase was said (the manager's audio clock): the delay of the prompt is measurable.
    if (stage.said_at) item.dataset.saidAt = stage.said_at;
    if (stage.recognised_at) item.dataset.recognisedAt = stage.recognised_at;
    item.classList.toggle("sc-done", stage.done);
    item.classList.toggle("sc-todo", !stage.done);
    item.classList.toggle("sc-next", Boolean(event.progress.next && event.progress.next.id === stage.id));
  }
}

function show(event) {
  last = event;
  const progress = event.progress;
  if (event.ended) {
    box.replaceChildren(el("p", { class: "muted lp-ended" }, "Разговор закончился."));
    box.hidden = false;
    return;
  }
  const parts = [];
  if (progress) {
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
  } else {
    parts.push(el("p", { class: "muted lp-head" }, "Идёт разговор: сценарий для клиента не загружен."));
  }
  box.replaceChildren(...parts);
  box.hidden = false;
  mark(event);
}

if (box) {
  document.addEventListener("telecrm:live", (e) => {
    const event = e.detail;
    if (event.client_id && String(event.client_id) === box.dataset.client) show(event);
  });
  // The panel's body is redrawn when the card refreshes itself: keep the marks.
  const panel = document.querySelector('#scenario [data-card-part="scenario"]');
  if (panel) new MutationObserver(() => { if (last) mark(last); }).observe(panel, { childList: true });
}
