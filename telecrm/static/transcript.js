// The transcript as a dialogue: each phrase plays the call's recording from its second.
// Drives the page's own <audio> (the call page's player) or one made per call (client card).
import { clock, el, playFrom } from "./common.js";

var WHO = {manager: "Менеджер", client: "Клиент", mixed: "Запись"};

function follow(audio, box) {
  audio.addEventListener("timeupdate", function () {
    var t = audio.currentTime;
    box.querySelectorAll("a[data-start]").forEach(function (a) {
      var on = t >= +a.dataset.start && t < +a.dataset.end + 0.3;
      a.classList.toggle("playing", on && !audio.paused);
    });
  });
}

function dialogue(turns, callId, audioFor) {
  var box = el("div", {"class": "dialogue"});
  if (!turns.length) { box.appendChild(el("p", {"class": "muted"}, "Слов не распознано.")); }
  turns.forEach(function (t) {
    var row = el("div", {"class": "turn " + t.speaker});
    row.appendChild(el("span", {"class": "who"}, (WHO[t.speaker] || t.speaker) + " " + clock(t.start)));
    var link = el("a", {href: "/api/calls/" + callId + "/recording#t=" + t.start,
                        "data-start": t.start, "data-end": t.end,
                        title: "Слушать с " + clock(t.start)}, t.text);
    if (t.conf < 0.6) link.classList.add("low");
    link.addEventListener("click", function (e) {
      e.preventDefault();
      playFrom(audioFor(), t.start);
    });
    row.appendChild(link);
    box.appendChild(row);
  });
  return box;
}

function fail(box, status) {
  box.textContent = "";
  box.appendChild(el("p", {"class": "muted"}, status === 404 ? "Расшифровки пока нет."
    : "Расшифровка недоступна."));
}

function callPage(section) {
  var slot = section.querySelector(".dialogue");
  var callId = section.dataset.call;
  var own = null;
  function audioFor() {
    var page = document.querySelector(".player audio");
    if (page) return page;
    if (!own) {
      own = el("audio", {controls: "", preload: "none", src: "/api/calls/" + callId + "/recording"});
      section.insertBefore(own, slot);
    }
    return own;
  }
  fetch(section.dataset.transcript, {credentials: "same-origin"}).then(function (r) {
    if (!r.ok) { fail(slot, r.status); return null; }
    return r.json();
  }).then(function (data) {
    if (!data) return;
    var box = dialogue(data.turns, callId, audioFor);
    slot.replaceWith(box);
    follow(audioFor(), box);
  }).catch(function () { fail(slot, 0); });
}

function clientCard(section) {
  var slot = section.querySelector(".dialogues");
  fetch(section.dataset.transcripts, {credentials: "same-origin"}).then(function (r) {
    if (!r.ok) { fail(slot, r.status); return null; }
    return r.json();
  }).then(function (calls) {
    if (!calls) return;
    slot.textContent = "";
    if (!calls.length) { fail(slot, 404); return; }
    calls.forEach(function (c) {
      var when = c.when;  // in the working day's timezone, formatted by the server
      var head = el("div", {"class": "call-head"});
      head.appendChild(el("a", {href: "/calls/" + c.call_id}, "Звонок №" + c.call_id));
      head.appendChild(document.createTextNode(", " + when));
      var audio = el("audio", {controls: "", preload: "none", src: "/api/calls/" + c.call_id + "/recording",
                               "data-call": c.call_id});
      var box = dialogue(c.turns, c.call_id, function () { return audio; });
      var wrap = el("div", {"class": "call-transcript", "data-call": c.call_id});
      wrap.appendChild(head); wrap.appendChild(audio); wrap.appendChild(box);
      follow(audio, box);
      slot.appendChild(wrap);
    });
  }).catch(function () { fail(slot, 0); });
}

function start() {
  document.querySelectorAll("section.transcript[data-transcript]").forEach(callPage);
  document.querySelectorAll("section.transcript[data-transcripts]").forEach(clientCard);
}
start();
