// The QC queue: open a result's evidence, play it from its second, confirm or dismiss.
import { clock, el, money, percent, playFrom, sendJSON } from "./common.js";

var KINDS = {missing_stage: "Пропущен этап", forbidden: "Запрещённые слова",
             order: "Нарушен порядок этапов", late: "Этап позже срока"};
var panel, detail, audio, hint, current = null;

function evidence(list) {
  var box = el("div", {"class": "evidence"});
  (list || []).forEach(function (ev) {
    var q = el("blockquote", {}, "«" + ev.text + "»");
    var play = el("button", {type: "button", "class": "link play", "data-start": ev.start},
                  "▶ слушать с " + clock(ev.start));
    play.addEventListener("click", function () { playFrom(audio, ev.start); });
    var conf = el("span", {"class": "muted"}, " уверенность " + percent((ev.conf || 0) * 100, 0));
    q.appendChild(el("br")); q.appendChild(play); q.appendChild(conf);
    box.appendChild(q);
  });
  if (!box.childNodes.length) box.appendChild(el("p", {"class": "muted"}, "Фраза не найдена в речи менеджера."));
  return box;
}

function decide(resultId, v, decision, reason, node) {
  return sendJSON("/api/kkp/results/" + resultId + "/violations/" + v.index,
                  {decision: decision, reason: reason || null}).then(function (r) {
    return r.json().then(function (body) {
      if (!r.ok) throw new Error(body.error || "ошибка");
      return body;
    });
  }).then(function () { open(current); }).catch(function (err) {
    node.querySelector(".err").textContent = "Не сохранено: " + err.message;
  });
}

function violation(data, v) {
  var item = el("div", {"class": "qc-item violation", "data-index": v.index});
  var title = el("div", {}, "");
  title.appendChild(el("b", {}, (KINDS[v.kind] || v.kind) + ": " + v.title));
  title.appendChild(el("code", {"class": "muted"}, " " + v.id));
  if (v.needs_review) title.appendChild(el("span", {"class": "badge red"}, " требует проверки"));
  item.appendChild(title);
  item.appendChild(evidence(v.evidence));
  if (v.review) {
    var r = v.review;
    var text = r.decision === "confirmed"
      ? "Подтверждено: штраф " + money(r.amount)
      : "Отклонено: " + (r.reason || "");
    item.appendChild(el("div", {"class": "decided"}, text + " · " + (r.reviewer || "") + ", " +
      (r.when || r.decided_at)));
    if (r.decision === "confirmed") item.appendChild(appealBox(r, item));
  } else if (data.may_decide && panel.dataset.mayDecide) {
    var actions = el("div", {"class": "actions"});
    var ok = el("button", {type: "button", "class": "primary confirm"}, "Подтвердить (штраф)");
    var reason = el("input", {type: "text", name: "reason", placeholder: "Причина отклонения", maxlength: "2000"});
    var no = el("button", {type: "button", "class": "dismiss"}, "Отклонить");
    var err = el("span", {"class": "err error"});
    ok.addEventListener("click", function () { decide(data.id, v, "confirmed", null, item); });
    no.addEventListener("click", function () {
      if (!reason.value.trim()) { err.textContent = "Укажите причину."; reason.focus(); return; }
      decide(data.id, v, "dismissed", reason.value, item);
    });
    actions.appendChild(ok); actions.appendChild(reason); actions.appendChild(no); actions.appendChild(err);
    item.appendChild(actions);
  }
  return item;
}

var STATES = {active: "Штраф действует", appealed: "Штраф оспорен, ждёт решения",
              kept: "Апелляция отклонена: штраф оставлен", cancelled: "Штраф отменён по апелляции"};

function post(url, body, node) {
  return sendJSON(url, body).then(function (r) {
    return r.json().then(function (b) { if (!r.ok) throw new Error(b.error || "ошибка"); });
  }).then(function () { open(current); }).catch(function (err) {
    node.querySelector(".err").textContent = "Не сохранено: " + err.message;
  });
}

function appealBox(r, item) {
  var box = el("div", {"class": "appeal appeal-" + r.state});
  box.appendChild(el("div", {"class": "fine-state"}, STATES[r.state] || r.state));
  var a = r.appeal;
  if (a) {
    box.appendChild(el("div", {"class": "appeal-reason"},
      "Апелляция (" + (a.filed_by || "") + ", " + a.filed_when + "): " + a.reason));
    if (a.state !== "open") {
      box.appendChild(el("div", {"class": "appeal-decision"},
        (a.state === "cancelled" ? "Отменил" : "Оставил") + " " + (a.decided_by || "") + ", " +
        a.decided_when + ": " + a.comment));
    }
  }
  var err = el("span", {"class": "err error"});
  var url = "/api/kkp/fines/" + r.id + "/appeal";
  if (r.may_appeal) {
    var form = el("div", {"class": "actions"});
    var reason = el("input", {type: "text", name: "appeal_reason", maxlength: "2000",
                              placeholder: "Почему вы не согласны"});
    var send = el("button", {type: "button", "class": "appeal-send"}, "Оспорить штраф");
    send.addEventListener("click", function () {
      if (!reason.value.trim()) { err.textContent = "Напишите причину."; reason.focus(); return; }
      post(url, {reason: reason.value}, box);
    });
    form.appendChild(reason); form.appendChild(send); form.appendChild(err);
    box.appendChild(form);
  } else if (r.may_decide_appeal) {
    var judge = el("div", {"class": "actions"});
    var comment = el("input", {type: "text", name: "appeal_comment", maxlength: "2000",
                               placeholder: "Комментарий к решению"});
    var cancel = el("button", {type: "button", "class": "primary appeal-cancel"}, "Отменить штраф");
    var keep = el("button", {type: "button", "class": "appeal-keep"}, "Оставить штраф");
    [[cancel, "cancelled"], [keep, "kept"]].forEach(function (pair) {
      pair[0].addEventListener("click", function () {
        if (!comment.value.trim()) { err.textContent = "Напишите комментарий."; comment.focus(); return; }
        post(url + "/decision", {decision: pair[1], comment: comment.value}, box);
      });
    });
    judge.appendChild(comment); judge.appendChild(cancel); judge.appendChild(keep); judge.appendChild(err);
    box.appendChild(judge);
  } else if (a && a.state === "open") {
    box.appendChild(el("div", {"class": "muted"}, "Решение примет другой руководитель или администратор."));
  }
  return box;
}

function render(data) {
  detail.textContent = "";
  hint.textContent = "Звонок №" + data.call_id + " · скрипт «" + data.script + "» · оценка " + data.score;
  if (audio.dataset.call !== String(data.call_id)) {
    audio.src = "/api/calls/" + data.call_id + "/recording";
    audio.dataset.call = String(data.call_id);
  }
  audio.hidden = false;
  if (data.violations.length) {
    detail.appendChild(el("h3", {}, "Нарушения"));
    data.violations.forEach(function (v) { detail.appendChild(violation(data, v)); });
  } else {
    detail.appendChild(el("p", {}, "Нарушений нет."));
  }
  detail.appendChild(el("h3", {}, "Этапы"));
  data.stages.forEach(function (s) {
    var item = el("div", {"class": "qc-item stage"});
    item.appendChild(el("b", {}, (s.found ? "✓ " : "✗ ") + s.title));
    if (s.found) item.appendChild(evidence(s.evidence));
    detail.appendChild(item);
  });
}

function open(resultId) {
  current = resultId;
  document.querySelectorAll(".qc-row").forEach(function (row) {
    row.setAttribute("aria-selected", row.dataset.result === String(resultId) ? "true" : "false");
  });
  return fetch("/api/kkp/results/" + resultId, {credentials: "same-origin"}).then(function (r) {
    if (!r.ok) throw new Error(String(r.status));
    return r.json();
  }).then(render).catch(function () { hint.textContent = "Не удалось загрузить результат."; });
}

function start() {
  panel = document.getElementById("qc-evidence");
  if (!panel) return;
  detail = document.getElementById("qc-detail");
  audio = document.getElementById("qc-audio");
  hint = document.getElementById("qc-hint");
  var rows = document.querySelectorAll(".qc-row");
  rows.forEach(function (row) {
    row.addEventListener("click", function (e) {
      if (e.target.closest("a")) return;
      open(row.dataset.result);
    });
    row.addEventListener("keydown", function (e) { if (e.key === "Enter") open(row.dataset.result); });
  });
  var wanted = /^#result-(\d+)$/.exec(location.hash);
  if (wanted) open(wanted[1]);
  else if (rows.length) open(rows[0].dataset.result);
}
start();
