// «Поиск по разговорам»: each hit plays its call from the phrase's second in one shared player.
import { clock, el, playFrom } from "./common.js";

const section = document.querySelector(".search-hits");
const box = section && section.querySelector(".hits-player");
const audio = box && box.querySelector("audio");

function play(hit) {
  const call = hit.dataset.call;
  const start = Number(hit.dataset.start) || 0;
  if (audio.dataset.call !== call) {
    audio.dataset.call = call;
    audio.src = `/api/calls/${call}/recording`;
  }
  box.hidden = false;
  box.querySelector(".now").replaceChildren(
    el("a", { href: `/calls/${call}#t=${start}` }, `Звонок №${call}`), ` с ${clock(start)}`);
  section.querySelectorAll(".hit.playing").forEach((h) => h.classList.remove("playing"));
  hit.classList.add("playing");
  playFrom(audio, start);
}

if (audio) {
  section.querySelectorAll(".hit button.play").forEach((button) => {
    button.addEventListener("click", () => play(button.closest(".hit")));
  });
}
