// What the page scripts share: the CSRF token and JSON requests with it, building elements,
// clock times and durations, playing a recording from a second, Russian number formatting.
// An ES module: page scripts load with <script type="module"> and import what they use.
// (ct.js, the snippet on customers' sites, stays self-contained and does not use it.)

/** The session's CSRF token from <meta name="csrf-token">. */
export function csrf() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** POST (or another method) ``body`` as JSON with the CSRF token; resolves to the Response. */
export function sendJSON(url, body, method = "POST") {
  return fetch(url, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(body),
  });
}

/** A new element with attributes and, unless null/undefined, its text. */
export function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** A position in a recording, ``m:ss`` (whole seconds, rounded down): "listen from 1:05". */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

/** A talk or ring time, ``1:05`` / ``1:02:03``, as the server's ``duration`` filter writes it. */
export function duration(seconds) {
  const total = Math.max(0, Math.round(seconds || 0));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

/** Play ``audio`` from second ``start``, loading it first when it has not been yet. */
export function playFrom(audio, start) {
  const go = () => {
    audio.currentTime = start;
    const playing = audio.play();
    if (playing && playing.catch) playing.catch(() => {});
  };
  if (audio.readyState >= 1) { go(); return; }
  audio.addEventListener("loadedmetadata", go, { once: true });
  audio.preload = "auto";
  audio.load();
}

// -- Russian numbers: «1 250 000», «45 000,50 ₽», «50,0 %» (non-breaking spaces) ---------------

const NBSP = "\u00a0";
const formats = new Map();

function format(digits) {
  if (!formats.has(digits)) {
    formats.set(digits, new Intl.NumberFormat("ru-RU", {
      minimumFractionDigits: digits, maximumFractionDigits: digits }));
  }
  return formats.get(digits);
}

/** A number with ``digits`` decimals: 1234.5 → «1 235», number(1234.5, 1) → «1 234,5». */
export function number(value, digits = 0) {
  const n = Number(value);
  if (value === null || value === undefined || value === "" || !Number.isFinite(n)) return "—";
  return format(digits).format(n).replace(/^-(?=0(,0*)?$)/, "");  // no "-0"
}

/** Money in roubles: «45 000,50 ₽»; kopecks left out when whole: «1 250 000 ₽».
 *  ``{whole: true}`` rounds to roubles; ``{sign: false}`` leaves the ₽ out (a column says it). */
export function money(value, { whole = false, sign = true } = {}) {
  const n = Number(value);
  if (value === null || value === undefined || value === "" || !Number.isFinite(n)) return "—";
  const kopecks = !whole && Math.round(n * 100) % 100 !== 0;
  const text = number(n, kopecks ? 2 : 0);
  return sign ? text + NBSP + "₽" : text;
}

/** Percentage points with one decimal by default: 50 → «50,0 %». */
export function percent(value, digits = 1) {
  const text = number(value, digits);
  return text === "—" ? text : text + NBSP + "%";
}
