// The supervisor's live calls: Listen / Whisper / Barge ring his phone (ChanSpy on the PBX).
import { duration, el, sendJSON } from "./common.js";

const MODES = [["listen", "Слушать"], ["whisper", "Подсказать"], ["barge", "Вмешаться"]];
const DIRECTIONS = { inbound: "Входящий", outbound: "Исходящий", internal: "Внутренний" };

function since(iso) {
  return iso ? duration(Math.max(0, (Date.now() - Date.parse(iso)) / 1000)) : "—";
}

function phone(number) {
  const d = String(number || "").replace(/\D/g, "");
  if (d.length === 11 && (d[0] === "7" || d[0] === "8")) {
    return `+7 ${d.slice(1, 4)} ${d.slice(4, 7)}-${d.slice(7, 9)}-${d.slice(9)}`;
  }
  return number || "—";
}

function start(box) {
  const body = box.querySelector("tbody");
  const empty = box.querySelector(".empty");
  const result = box.querySelector(".result");
  const phoneNote = box.querySelector(".phone-note");
  let busy = false;

  async function spy(linkedid, mode, button) {
    button.disabled = true;
    result.className = "result";
    result.textContent = "Звоним на ваш телефон…";
    try {
      const answer = await sendJSON(`/api/calls/${encodeURIComponent(linkedid)}/listen`, { mode });
      const data = await answer.json().catch(() => ({}));
      if (answer.ok) {
        result.textContent = "Вы подключены к разговору.";
      } else {
        result.className = "result error";
        result.textContent = data.error || "Не удалось подключиться к разговору.";
      }
    } finally {
      button.disabled = false;
    }
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const answer = await fetch(box.dataset.live, { credentials: "same-origin" });
      if (!answer.ok) return;
      const data = await answer.json();
      phoneNote.hidden = Boolean(data.phone);
      phoneNote.textContent = data.phone ? "" : "У вас нет внутреннего номера: прослушка недоступна.";
      const seen = new Set();
      for (const call of data.calls) {
        seen.add(call.linkedid);
        let row = body.querySelector(`tr[data-linkedid="${CSS.escape(call.linkedid)}"]`);
        if (!row) {
          row = document.createElement("tr");
          row.dataset.linkedid = call.linkedid;
          for (const label of ["Менеджер", "Клиент", "Направление", "Идёт", ""]) {
            const cell = document.createElement("td");
            cell.dataset.label = label;
            row.appendChild(cell);
          }
          const actions = document.createElement("div");
          actions.className = "spy";
          for (const [mode, label] of MODES) {
            const button = document.createElement("button");
            button.type = "button";
            button.className = mode;
            button.textContent = label;
            button.disabled = !data.phone;
            button.addEventListener("click", () => spy(call.linkedid, mode, button));
            actions.appendChild(button);
          }
          row.cells[4].appendChild(actions);
          body.appendChild(row);
        }
        row.cells[0].textContent = `${call.manager} (${call.extension})`;
        // A known client by his name (the number beside it); an unknown caller by his number.
        row.cells[1].replaceChildren();
        if (call.client_name) {
          row.cells[1].append(el("a", { href: `/clients/${call.client_id}` }, call.client_name));
          if (call.client_number) row.cells[1].append(" ", el("span", { class: "muted" }, phone(call.client_number)));
        } else {
          row.cells[1].textContent = call.client_number || call.direction === "internal"
            ? phone(call.client_number) : "номер скрыт";
        }
        row.cells[2].textContent = DIRECTIONS[call.direction] || call.direction;
        row.cells[3].textContent = since(call.answered_at);
      }
      body.querySelectorAll("tr[data-linkedid]").forEach((row) => {
        if (!seen.has(row.dataset.linkedid)) row.remove();
      });
      body.querySelectorAll("tr[data-live-of]").forEach((row) => {
        if (!seen.has(row.dataset.liveOf)) row.remove();
      });
      empty.hidden = data.calls.length > 0;
      if (!data.telephony) empty.textContent = "Нет связи с АТС.";
    } finally {
      busy = false;
    }
  }

  // Live prompts: under each call, the stages reached and the running transcript.
  function live(event) {
    const row = body.querySelector(`tr[data-linkedid="${CSS.escape(event.linkedid)}"]`);
    if (!row) return;
    let extra = row.nextElementSibling;
    if (!extra || extra.dataset.liveOf !== event.linkedid) {
      extra = document.createElement("tr");
      extra.dataset.liveOf = event.linkedid;
      extra.className = "live-row";
      const cell = document.createElement("td");
      cell.colSpan = 5;
      extra.appendChild(cell);
      row.after(extra);
    }
    const cell = extra.cells[0];
    const parts = [];
    if (event.progress) {
      const stages = el("p", { class: "live-stages" });
      stages.append(el("b", {}, "Этапы: "));
      for (const stage of event.progress.stages) {
        stages.append(el("span", { class: stage.done ? "stage done" : "stage", "data-stage": stage.id },
          `${stage.done ? "✓" : "○"} ${stage.title}`), " ");
      }
      parts.push(stages);
    }
    const lines = el("div", { class: "live-transcript" });
    for (const [side, label] of [["manager", "Менеджер"], ["client", "Клиент"]]) {
      const said = [...((event.transcript || {})[side] || []).slice(-3)];
      if ((event.partial || {})[side]) said.push(`${event.partial[side]}…`);
      if (said.length) lines.append(el("p", { "data-side": side }, `${label}: ${said.join(" / ")}`));
    }
    parts.push(lines);
    cell.replaceChildren(...parts);
  }
  document.addEventListener("telecrm:live", (e) => live(e.detail));

  if (window.EventSource) new EventSource("/api/events").addEventListener("call", refresh);
  setInterval(refresh, 2000);
  refresh();
}

const box = document.querySelector("#live-calls[data-live]");
if (box) start(box);
