// The presence switch in the header: «На месте», «Перерыв», «Обед»... for the signed-in user.
// Changing it pauses (or unpauses) his queue calls; another tab of his follows by the live
// event app.js passes on as "telecrm:presence".
import { el, sendJSON } from "./common.js";

const box = document.getElementById("presence-switch");
const select = document.getElementById("presence-select");
const note = document.getElementById("presence-note");
let current = null;

function show(state) {
  current = state;
  select.value = state;
  select.classList.toggle("here", state === "present");
  select.classList.toggle("away", state !== "present");
}

function say(text) {
  note.textContent = text;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { note.textContent = ""; }, 6000);
}

// The switch keeps its place in the header while it loads (invisible), so the page does
// not move under the user's pointer when it appears.
async function load() {
  const response = await fetch("/api/presence", { credentials: "same-origin" });
  const data = response.ok ? await response.json() : {};
  if (!data.me) {
    box.hidden = true;
    return;
  }
  select.replaceChildren(...data.reasons.map((r) => el("option", { value: r.state }, r.name)));
  show(data.me.state);
  box.classList.remove("loading");
}

select.addEventListener("change", async () => {
  const wanted = select.value;
  select.disabled = true;
  try {
    const response = await sendJSON("/api/presence", { state: wanted });
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      show(body.state);
      say(body.queue_text || "");
    } else {
      show(current);
      say(body.error || "Не удалось сменить статус.");
    }
  } catch (e) {
    show(current);
    say("Нет связи с сервером.");
  } finally {
    select.disabled = false;
  }
});

document.addEventListener("telecrm:presence", (e) => {
  const event = e.detail;
  if (event.extension === document.body.dataset.extension && event.state !== current) {
    show(event.state);
  }
});

if (box && select) load().catch(() => {});
