// Recording players: who spoke when (stored at finalize) on a time line, click to seek.
// A player may offer several calls (the client card): picking one loads it in place.
import { el, number, playFrom } from "./common.js";

const SPEAKERS = { manager: ["manager", "caller", "mixed"], client: ["client", "callee"] };

async function drawTimeline(box) {
  const audio = box.querySelector("audio");
  const timeline = box.querySelector(".timeline");
  if (!audio || !timeline) return;
  timeline.querySelectorAll(".track i").forEach((bar) => bar.remove());
  const note = timeline.querySelector(".note");
  const say = (text) => { if (note) { note.textContent = text; note.hidden = !text; } };
  say("");
  let data;
  try {
    const response = await fetch(box.dataset.activity, { credentials: "same-origin" });
    data = response.ok ? await response.json() : null;
  } catch (err) {
    data = null;
  }
  if (!data) { say("Разметка речи недоступна."); return; }
  if (data.status !== "stored") {
    say(data.status === "failed" ? `Запись не сохранена: ${data.error || ""}`
      : data.status === "expired" ? "Запись удалена по сроку хранения."
      : "Запись обрабатывается…");
    return;
  }
  const duration = data.duration || 1;
  timeline.querySelectorAll(".lane").forEach((lane) => {
    const key = SPEAKERS[lane.dataset.speaker].find((k) => data.activity[k]);
    const track = lane.querySelector(".track") || lane;
    (data.activity[key] || []).forEach(([start, end]) => {
      const bar = document.createElement("i");
      bar.style.left = `${(100 * start) / duration}%`;
      bar.style.width = `${Math.max(0.5, (100 * (end - start)) / duration)}%`;
      bar.title = `${number(start, 1)}–${number(end, 1)} с`;
      bar.addEventListener("click", () => playFrom(audio, start));
      track.appendChild(bar);
    });
  });
  box.dataset.duration = duration;
}

function setUp(box) {
  const audio = box.querySelector("audio");
  const timeline = box.querySelector(".timeline");
  if (!audio || !timeline) return;
  const cursors = [...timeline.querySelectorAll(".track")].map((track) => {
    const cursor = document.createElement("b");
    track.appendChild(cursor);
    return cursor;
  });
  const place = (seconds) => {
    const duration = Number(box.dataset.duration) || audio.duration || 1;
    cursors.forEach((c) => { c.style.left = `${Math.min(100, (100 * seconds) / duration)}%`; });
  };
  audio.addEventListener("timeupdate", () => place(audio.currentTime));
  box.querySelectorAll("button.pick").forEach((pick) => {
    pick.addEventListener("click", () => {
      const id = pick.dataset.call;
      box.dataset.call = id;
      box.dataset.activity = `/api/calls/${id}/activity`;
      audio.src = `/api/calls/${id}/recording`;
      const link = box.querySelector("a.download");
      if (link) link.href = `/api/calls/${id}/recording?download=1`;
      const now = box.querySelector(".now");
      if (now) {
        now.replaceChildren(el("b", {}, pick.dataset.label), " · ",
                            el("a", { href: `/calls/${id}` }, `звонок №${id}`));
      }
      box.querySelectorAll("button.pick").forEach((b) => b.classList.toggle("current", b === pick));
      place(0);
      drawTimeline(box);
    });
  });
  drawTimeline(box);
}

document.querySelectorAll(".player[data-activity]").forEach(setUp);

// A link to a moment of the call (``/calls/7#t=12.5``, from search hits): play from there.
const moment = /^#t=(\d+(?:\.\d+)?)$/.exec(location.hash);
const pageAudio = document.querySelector(".player audio");
if (moment && pageAudio) playFrom(pageAudio, Number(moment[1]));
