// The call page's QC panel: the automatic check beside the reviewer's scorecard.
import { el, sendJSON } from "./common.js";

var KINDS = {missing_stage: "пропущен этап", forbidden: "запрещённые слова",
             order: "нарушен порядок", late: "этап позже срока"};
var STATES = {open: "не решено", dismissed: "отклонено", active: "штраф",
              appealed: "штраф оспорен", kept: "штраф оставлен", cancelled: "штраф отменён"};
var ANSWERS = [["yes", "да"], ["no", "нет"], ["na", "не применимо"]];
var FATAL = [["no", "не было"], ["yes", "было"]];
var box, callId;

function auto(data) {
  var node = document.getElementById("qc-call-auto");
  node.textContent = "";
  node.appendChild(el("h3", {}, "Автоматическая проверка"));
  if (!data.auto.length) { node.appendChild(el("p", {"class": "muted"}, "Звонок ещё не проверен по скрипту.")); return; }
  data.auto.forEach(function (r) {
    var head = el("p", {"class": "qc-auto-score"});
    head.appendChild(el("a", {href: "/qc#result-" + r.result_id}, "«" + r.script + "»"));
    head.appendChild(document.createTextNode(": оценка " + r.score));
    node.appendChild(head);
    var list = el("ul", {});
    r.violations.forEach(function (v) {
      list.appendChild(el("li", {}, (KINDS[v.kind] || v.kind) + ": " + (v.title || v.id) + " — " + (STATES[v.state] || v.state)));
    });
    if (!r.violations.length) list.appendChild(el("li", {}, "нарушений нет"));
    node.appendChild(list);
  });
}

function scores(data, node) {
  if (!data.scores.length) { node.appendChild(el("p", {"class": "muted"}, "Звонок ещё не оценивали.")); return; }
  var table = el("table", {"class": "qc-scores"});
  var head = el("tr", {});
  ["Проверяющий", "Оценка", "Когда", "Комментарий"].forEach(function (t) { head.appendChild(el("th", {}, t)); });
  table.appendChild(el("thead", {})).appendChild(head);
  var body = table.appendChild(el("tbody", {}));
  data.scores.forEach(function (s) {
    var row = el("tr", {});
    row.appendChild(el("td", {"data-label": "Проверяющий"}, s.reviewer));
    row.appendChild(el("td", {"data-label": "Оценка", "class": "score"}, String(s.score) + (s.instant_fail ? " (провал)" : "")));
    row.appendChild(el("td", {"data-label": "Когда"}, s.when));
    row.appendChild(el("td", {"data-label": "Комментарий"}, s.comment || ""));
    body.appendChild(row);
  });
  node.appendChild(table);
}

function form(data, node) {
  var card = data.scorecard, mine = data.mine;
  var given = mine && mine.scorecard_id === card.id ? mine.answers : {};
  var f = el("form", {"class": "sc-form"});
  f.appendChild(el("h3", {}, "Карточка «" + card.name + "»" + (mine ? ": ваша оценка " + mine.score : "")));
  card.items.forEach(function (item) {
    var row = el("div", {"class": "sc-item" + (item.instant_fail ? " fatal" : ""), "data-item": item.id});
    row.appendChild(el("span", {"class": "sc-title"}, item.title + (item.instant_fail ? " (провал сразу)" : " · вес " + item.weight)));
    var choices = el("span", {});
    (item.instant_fail ? FATAL : ANSWERS).forEach(function (pair) {
      var label = el("label", {});
      var input = el("input", {type: "radio", name: item.id, value: pair[0]});
      if (given[item.id] === pair[0]) input.checked = true;
      label.appendChild(input); label.appendChild(document.createTextNode(pair[1]));
      choices.appendChild(label);
    });
    row.appendChild(choices);
    f.appendChild(row);
  });
  var comment = el("textarea", {name: "comment", maxlength: "2000", placeholder: "Комментарий для менеджера"});
  comment.value = (mine && mine.comment) || "";
  f.appendChild(comment);
  var save = el("button", {type: "submit", "class": "primary"}, mine ? "Исправить оценку" : "Сохранить оценку");
  var err = el("span", {"class": "err error"});
  f.appendChild(save); f.appendChild(err);
  f.addEventListener("submit", function (e) {
    e.preventDefault();
    var answers = {}, missing = null;
    card.items.forEach(function (item) {
      var checked = f.querySelector("input[name='" + item.id + "']:checked");
      if (checked) answers[item.id] = checked.value; else if (!missing) missing = item.title;
    });
    if (missing) { err.textContent = "Ответьте на пункт «" + missing + "»."; return; }
    sendJSON("/api/calls/" + callId + "/scores", {scorecard_id: card.id, answers: answers,
                                                   comment: comment.value || null}).then(function (r) {
      return r.json().then(function (b) { if (!r.ok) throw new Error(b.error || "ошибка"); });
    }).then(load).catch(function (x) { err.textContent = "Не сохранено: " + x.message; });
  });
  node.appendChild(f);
}

function render(data) {
  document.getElementById("qc-call-hint").hidden = true;
  auto(data);
  var node = document.getElementById("qc-call-card");
  node.textContent = "";
  node.appendChild(el("h3", {}, "Оценки проверяющих"));
  scores(data, node);
  if (data.may_score && data.scorecard) form(data, node);
  else if (data.may_score) node.appendChild(el("p", {"class": "muted"}, "Карточки оценки для этого отдела нет: её составляют на странице «Карточки оценки»."));
}

function load() {
  return fetch("/api/calls/" + callId + "/qc", {credentials: "same-origin"}).then(function (r) {
    if (!r.ok) throw new Error(String(r.status));
    return r.json();
  }).then(render).catch(function () {
    document.getElementById("qc-call-hint").textContent = "Не удалось загрузить контроль качества.";
  });
}

box = document.getElementById("qc-call");
if (box) { callId = box.dataset.call; load(); }
