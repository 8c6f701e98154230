// The supervisor's live talk-time board: refreshed on every call event (SSE) and
// every few seconds, since talk grows between events while managers are on calls.
// (A manager's own bar on Today is server-rendered and refreshed by app.js.)
import { number } from "./common.js";

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
        text(row, ".tt-min", number(m.talk_minutes, 1));
        text(row, ".tt-calls", String(m.calls));
        text(row, ".tt-avg", number(m.avg_call_seconds));
        text(row, ".tt-proj", m.working ? `${number(m.projected_minutes)} мин ${m.on_track ? "✓" : "✗"}` : "—");
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

const board = document.querySelector("[data-live-board]");
if (board) followBoard(board);
