// The client card: the timeline's filters and pages, the forms that add to it (note, e-mail, meeting),
// planning the next contact, taking an entry back, and the call outcome form, which opens by
// itself when a call of this user with the client ends while the card is open.
import { sendJSON } from "./common.js";

const history = document.getElementById("history");
const clientId = history ? history.dataset.client : null;
const myExtension = document.body.dataset.extension || "";
const dialog = document.getElementById("call-outcome");

// -- refreshing -------------------------------------------------------------------------------
/** The timeline as the card shows it now: the filter's group and how many entries. */
function historyUrl() {
  const params = new URLSearchParams();
  const filter = history.dataset.filter || "all";
  if (filter !== "all") params.set("group", filter);
  if (history.dataset.shown) params.set("shown", history.dataset.shown);
  const query = params.toString();
  return query ? `${history.dataset.src}?${query}` : history.dataset.src;
}

let asked = 0; // the newest refresh asked for: an older answer arriving late is dropped

async function refreshTimeline() {
  if (!history) return;
  const mine = ++asked;
  history.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(historyUrl(), { credentials: "same-origin" });
    const html = response.ok ? await response.text() : null;
    if (mine === asked && html !== null) history.innerHTML = html;
  } finally {
    if (mine === asked) {
      history.removeAttribute("aria-busy");
      showEmpty();
    }
  }
}

/** Fetch the card again and swap the [data-card-part] blocks (next contact, deals, tasks). */
async function refreshParts() {
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  document.querySelectorAll("[data-card-part]").forEach((node) => {
    const twin = fresh.querySelector(`[data-card-part="${node.dataset.cardPart}"]`);
    if (twin) node.replaceWith(twin);
  });
}

// -- filters ------------------------------------------------------------------------------------
function showEmpty() {
  if (!history) return;
  const filter = history.dataset.filter || "all";
  const items = [...history.querySelectorAll(".tl-item")];
  const visible = items.filter((li) => filter === "all" || li.dataset.group === filter);
  const empty = history.querySelector(".tl-empty");
  // while a filter's own entries are on their way, "nothing here" would not be true yet
  if (empty) empty.hidden = visible.length > 0 || history.hasAttribute("aria-busy");
}

document.querySelectorAll(".tl-filters button[data-filter]").forEach((button) => {
  button.addEventListener("click", () => {
    history.dataset.filter = button.dataset.filter;
    delete history.dataset.shown;
    document.querySelectorAll(".tl-filters button").forEach((b) =>
      b.setAttribute("aria-pressed", String(b === button)));
    showEmpty();
    refreshTimeline(); // the filter's own newest entries, not only those among the first page
  });
});
if (history) {
  history.addEventListener("click", (event) => {
    const more = event.target.closest("button.tl-more");
    if (!more) return;
    more.disabled = true;
    history.dataset.shown = more.dataset.shown;
    refreshTimeline();
  });
}
if (history) new MutationObserver(showEmpty).observe(history, { childList: true });

// -- forms --------------------------------------------------------------------------------------
function fail(form, text) {
  const box = form.querySelector(".form-error");
  if (box) { box.textContent = text; box.hidden = false; }
}

function clearError(form) {
  const box = form.querySelector(".form-error");
  if (box) box.hidden = true;
}

/** POST ``body`` as JSON; on refusal show the server's sentence in the form, else resolve. */
async function submit(form, url, body) {
  clearError(form);
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const response = await sendJSON(url, body);
    if (response.ok) return true;
    let text = "Не удалось сохранить.";
    try { text = (await response.json()).error || text; } catch (e) { /* not JSON */ }
    fail(form, response.status === 401 ? "Сессия истекла — войдите снова." : text);
  } catch (e) {
    fail(form, "Нет связи с сервером.");
  } finally {
    if (button) button.disabled = false;
  }
  return false;
}

function openForm(name) {
  document.querySelectorAll("form[data-form]").forEach((form) => {
    form.hidden = form.dataset.form !== name || !form.hidden;
  });
  document.querySelectorAll("[data-open-form]").forEach((b) => {
    const form = document.querySelector(`form[data-form="${b.dataset.openForm}"]`);
    b.setAttribute("aria-expanded", String(!!form && !form.hidden));
  });
  const open = document.querySelector(`form[data-form="${name}"]:not([hidden])`);
  if (open) open.querySelector("textarea, input:not([type=hidden]):not([type=radio])").focus();
}

function closeForms() {
  document.querySelectorAll("form[data-form]").forEach((form) => { form.hidden = true; });
  document.querySelectorAll("[data-open-form]").forEach((b) => b.setAttribute("aria-expanded", "false"));
}

document.querySelectorAll("[data-open-form]").forEach((button) => {
  button.setAttribute("aria-expanded", "false");
  button.addEventListener("click", () => openForm(button.dataset.openForm));
});
document.querySelectorAll("[data-close-form]").forEach((button) => {
  button.addEventListener("click", closeForms);
});

const noteForm = document.getElementById("note-form");
if (noteForm) {
  noteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = noteForm.elements.text.value;
    if (await submit(noteForm, `/api/clients/${clientId}/notes`, { text })) {
      noteForm.reset();
      closeForms();
      await refreshTimeline();
    }
  });
}

for (const form of [document.getElementById("email-form"), document.getElementById("meeting-form")]) {
  if (!form) continue;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const body = { kind: f.kind.value, at: f.at.value, people: f.people.value, text: f.text.value };
    if (await submit(form, `/api/clients/${clientId}/activities`, body)) {
      const at = f.at.value;
      form.reset();
      f.at.value = at;
      closeForms();
      await refreshTimeline();
    }
  });
}

const planForm = document.getElementById("plan-form");
if (planForm) {
  planForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = planForm.elements;
    const body = { kind: f.kind.value, due_at: f.due_at.value, title: f.title.value };
    if (f.assignee_id && f.assignee_id.value) body.assignee_id = Number(f.assignee_id.value);
    if (await submit(planForm, `/api/clients/${clientId}/tasks`, body)) {
      f.title.value = "";
      planForm.closest("details").open = false;
      await refreshParts();
    }
  });
}

// -- taking a note or a logged contact back (a second click confirms) ---------------------------
if (history) {
  history.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-archive]");
    if (!button) return;
    if (!button.classList.contains("confirm")) {
      button.classList.add("confirm");
      button.textContent = "точно убрать?";
      return;
    }
    button.disabled = true;
    const response = await sendJSON(`/api/activities/${button.dataset.archive}/archive`, {});
    if (response.ok) await refreshTimeline();
    else button.textContent = "не удалось";
  });
}

// -- the call outcome form --------------------------------------------------------------------
function openOutcome(callId, summary) {
  if (!dialog) return;
  const form = dialog.querySelector("form");
  if (dialog.open && dialog.dataset.call === String(callId)) return;
  form.reset();
  clearError(form);
  dialog.dataset.call = String(callId);
  dialog.querySelector(".outcome-call").textContent = summary || `Звонок №${callId}`;
  if (dialog.open) dialog.close();
  dialog.showModal();
}

if (dialog) {
  const form = dialog.querySelector("form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const picked = form.querySelector("input[name=outcome_id]:checked");
    if (!picked) { fail(form, "Выберите итог звонка."); return; }
    const body = { outcome_id: Number(picked.value), note: form.elements.note.value };
    if (await submit(form, `/api/calls/${dialog.dataset.call}/outcome`, body)) {
      dialog.close();
      await refreshTimeline();
    }
  });
  dialog.querySelector("[data-close-outcome]").addEventListener("click", () => dialog.close());
}

if (history) {
  history.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-outcome-call]");
    if (button) openOutcome(button.dataset.outcomeCall, button.dataset.summary);
  });
}

function mine(event) {
  if (!myExtension) return false;
  return [event.extension, ...(event.managers || []), ...(event.rang || [])].includes(myExtension);
}

// app.js re-dispatches every live call event: a call of mine with this client just ended. The
// call is stored before its event is published, so the fresh timeline has it; its "Указать
// итог" button exists only when the call needs an outcome (not a missed one) and has none.
document.addEventListener("telecrm:call", async (e) => {
  const event = e.detail || {};
  if (event.kind !== "call_ended" || !event.call_id || !clientId) return;
  if (String(event.client_id) !== clientId) return;
  if (!mine(event)) { await refreshParts(); return; }  // a colleague's call may close a callback
  await Promise.all([refreshTimeline(), refreshParts()]);
  const button = history.querySelector(`button.small-button[data-outcome-call="${event.call_id}"]`);
  if (button) openOutcome(event.call_id, button.dataset.summary);
});

showEmpty();
