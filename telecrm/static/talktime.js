// The supervisor's live talk-time board: refreshed on every call event (SSE) and
// every few seconds, since talk grows between events while managers are on calls.
import { number } from "./common.js";

const EXCLUDED = { weekend: "выходной", holiday: "праздник", day_off: "отгул",
                   sick: "больничный", vacation: "отпуск" };

// The manager's own bar: minutes left and the projection at his current pace.
function followToday(today) {
  const ext = document.body.dataset.extension;
  const update = async () => {
    const answer = await fetch(today.dataset.liveToday, { credentials: "same-origin" });
    if (!answer.ok) return;
    const mine = (await answer.json()).managers.find((m) => m.extension === ext);
    if (!mine) return;
    if (!mine.working) {
      const why = EXCLUDED[mine.excluded] || "нерабочий день";
      today.textContent = `Сейчас ${mine.talk_minutes} мин · сегодня норма не учитывается (${why})`;
      return;
    }
    const verdict = mine.on_track ? "успеваете" : "не успеваете";
    today.textContent = `Сейчас ${mine.talk_minutes} мин · осталось ${mine.left_minutes} мин · ` +
      `при нынешнем темпе к концу дня (${mine.day_end}) ${mine.projected_minutes} мин — ${verdict}`;
  };
  update();
  setInterval(update, 10000);
}

function text(row, cls, value) {
  const cell = row.querySelector(cls);
  if (cell && cell.textContent !== value) cell.textContent = value;
}

function followBoard(board) {
  const url = board.dataset.liveBoard;
  let busy = false;

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const answer = await fetch(url, { credentials: "same-origin" });
      if (!answer.ok) return;
      const data = await answer.json();
      for (const m of data.managers) {
        const row = board.querySelector(`tr[data-ext="${m.extension}"]`);
        if (!row) continue;
        text(row, ".tt-now", m.on_call ? `☎ ${m.on_call.with}` : "—");
        text(row, ".tt-min", String(m.talk_minutes));
        text(row, ".tt-calls", String(m.calls));
        text(row, ".tt-avg", number(m.avg_call_seconds));
        text(row, ".tt-proj", m.working ? `${m.projected_minutes} мин ${m.on_track ? "✓" : "✗"}` : "—");
        row.classList.toggle("on-call", Boolean(m.on_call));
      }
      const stamp = document.getElementById("tt-updated");
      if (stamp) stamp.textContent = "обновлено " + new Date().toLocaleTimeString("ru-RU");
    } finally {
      busy = false;
    }
  }

  if (window.EventSource) {
    const source = new EventSource("/api/events");
    source.addEventListener("call", refresh);
  }
  setInterval(refresh, 5000);
}

const today = document.querySelector("[data-live-today]");
if (today) followToday(today);
const board = document.querySelector("[data-live-board]");
if (board) followBoard(board);
