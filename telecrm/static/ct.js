/* telecrm call tracking: shows this visitor a number of the site's pool.
   The company's number stays on the page until the answer arrives, so nothing flickers.
   Numbers are found by the configured selector, by tel: links and by their written
   forms (+7 (495) 111-00-01, 8 495 111 00 01, ...). A number is asked for only after
   real activity on the page (a move, a scroll, a touch, a key), and kept alive by a
   heartbeat while the page is visible. Site forms and the callback widget send leads
   with the visit (telecrm.sendForm, telecrm.requestCallback, data-telecrm-form). */
(function () {
  "use strict";
  var cfg = /*CONFIG*/null;
  if (!cfg || !window.fetch || !document.querySelectorAll) return;
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : "";
  var KEY = "telecrm_ct_" + cfg.site;
  var state = { session: null, number: null, asked: false, timer: null, observer: null,
                queue: Promise.resolve() };

  function store(name, value) {
    try { if (value === undefined) return localStorage.getItem(name); localStorage.setItem(name, value); }
    catch (e) { return null; }
    return null;
  }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function digits(s) { return String(s).replace(/\D/g, ""); }
  function national(d) { return d.length === 11 && (d[0] === "8" || d[0] === "7") ? d.slice(1) : d; }

  var known = (cfg.numbers || []).map(function (n) { return national(digits(n)); });
  // +7 (495) 111-00-01 | 8 495 111 00 01 | 84951110001 | (495) 111-00-01
  var patterns = known.map(function (d) {
    return new RegExp("(?:\\+?7|8)?[\\s\\-.(]{0,3}" + d.split("").join("[\\s\\-.()]{0,2}"), "g");
  });

  function rewrite(text, number) {
    // the new number in the old one's written form: digit slots are kept, digits replaced
    var nd = national(digits(number)), i = 0;
    var lead = digits(text).length - nd.length;
    return text.replace(/\d/g, function (c) {
      var k = i++ - lead;
      return k < 0 ? c : (nd[k] || c);
    });
  }

  function swapText(root, number) {
    if (!patterns.length) return;
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, null);
    var nodes = [], node;
    while ((node = walker.nextNode())) nodes.push(node);
    nodes.forEach(function (n) {
      var p = n.parentNode;
      if (!p || /^(SCRIPT|STYLE|TEXTAREA|INPUT)$/.test(p.nodeName)) return;
      var text = n.nodeValue, changed = text;
      patterns.forEach(function (re) {
        changed = changed.replace(re, function (m) { return rewrite(m, number); });
      });
      if (changed !== text) n.nodeValue = changed;
    });
  }

  function swap(number) {
    if (!number) return;
    var tel = "tel:+" + digits(number);
    document.querySelectorAll("a[href^='tel:']").forEach(function (a) {
      var d = national(digits(a.getAttribute("href")));
      if (known.indexOf(d) >= 0 || a.hasAttribute("data-ct")) { a.setAttribute("href", tel); a.setAttribute("data-ct", "1"); }
    });
    var marked = [];
    try { marked = Array.prototype.slice.call(document.querySelectorAll(cfg.selector)); } catch (e) { marked = []; }
    marked.forEach(function (el) {
      if (el.tagName === "A") { el.setAttribute("href", tel); el.setAttribute("data-ct", "1"); }
      if (digits(el.textContent).length >= 10) {
        el.textContent = rewrite(el.textContent.trim() || number, number);
      }
    });
    swapText(document.body, number);
    known = [national(digits(number))].concat(known);
    patterns = [new RegExp(known[0].split("").join("[\\s\\-.()]{0,2}"), "g")].concat(patterns);
    watch();
  }

  function watch() {
    // Numbers that appear later (a pop-up, a lazily loaded footer) get the visitor's number
    // too. Only added nodes are watched: rewriting text does not add nodes, so no loop.
    if (state.observer || !window.MutationObserver) return;
    state.observer = new MutationObserver(function (records) {
      if (!state.number) return;
      var tel = "tel:+" + digits(state.number);
      records.forEach(function (r) {
        Array.prototype.forEach.call(r.addedNodes, function (n) {
          if (n.nodeType === 3 && n.parentNode) { swapText(n.parentNode, state.number); return; }
          if (n.nodeType !== 1) return;
          swapText(n, state.number);
          var links = n.matches && n.matches("a[href^='tel:']") ? [n] : [];
          links = links.concat(Array.prototype.slice.call(n.querySelectorAll("a[href^='tel:']")));
          links.forEach(function (a) {
            if (known.indexOf(national(digits(a.getAttribute("href")))) >= 0) {
              a.setAttribute("href", tel); a.setAttribute("data-ct", "1");
            }
          });
        });
      });
    });
    state.observer.observe(document.body, { childList: true, subtree: true });
  }

  function send(activity) {
    // one request at a time, so the first answer's session is reused by the next
    state.queue = state.queue.then(function () { return post(activity); });
    return state.queue;
  }

  function post(activity) {
    var ids = {};
    var ga = cookie("_ga"), ym = cookie("_ym_uid");
    if (ga && /^[\w.:-]{1,100}$/.test(ga)) ids.ga = ga;
    if (ym && /^[\w.:-]{1,100}$/.test(ym)) ids.ym_uid = ym;
    var body = { site: cfg.site, url: location.href.slice(0, 1000),
                 referrer: document.referrer ? document.referrer.slice(0, 1000) : null,
                 session: state.session || store(KEY) || null, activity: activity, client_ids: ids };
    if (ids.ga || ids.ym_uid) body.client_id = ids.ga || ids.ym_uid;
    return fetch(base + "/api/ct/session", {
      method: "POST", body: JSON.stringify(body), credentials: "omit", keepalive: true,
      headers: { "Content-Type": "text/plain" }
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
      if (!data) return;
      state.session = data.session;
      store(KEY, data.session);
      if (data.tracked && data.number !== state.number) { state.number = data.number; swap(data.number); }
    }).catch(function () { /* the company's number stays: nothing is lost */ });
  }

  function active() {
    if (state.asked) return;
    state.asked = true;
    ACTIVITY.forEach(function (e) { window.removeEventListener(e, active, true); });
    send(true);
    var every = Math.max(10, cfg.heartbeat || 60) * 1000;
    state.timer = setInterval(function () {
      if (document.visibilityState === "visible") send(true);
    }, every);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") send(true);
    });
  }

  // -- leads: site forms and the callback widget -------------------------------------------
  // telecrm.sendForm(form) sends a form's name/phone/e-mail/message with the visit;
  // telecrm.requestCallback(phone, name) asks the CRM to call the visitor now. Forms
  // marked data-telecrm-form or data-telecrm-callback are sent by themselves on submit;
  // the answer's sentence goes into the form's [data-telecrm-result] element, and the
  // form gets a "telecrm:sent" event with the answer.
  var FIELDS = { name: /^(name|fio|имя)$/i, phone: /^(phone|tel|telephone|телефон)$/i,
                 email: /^(e-?mail|почта)$/i, message: /^(message|comment|text|вопрос)$/i };

  function fieldsOf(form) {
    var data = {};
    Array.prototype.forEach.call(form.elements || [], function (el) {
      if (!el.name || el.type === "password" || el.type === "hidden" && !el.hasAttribute("data-telecrm")) return;
      var key = el.getAttribute("data-telecrm");
      if (!key) {
        Object.keys(FIELDS).forEach(function (k) { if (!key && FIELDS[k].test(el.name)) key = k; });
        if (!key && el.type === "tel") key = "phone";
        if (!key && el.type === "email") key = "email";
      }
      if (key && FIELDS[key] && el.value && !data[key]) data[key] = String(el.value).slice(0, key === "message" ? 2000 : 254);
    });
    return data;
  }

  function sendLead(path, data) {
    return state.queue.then(function () {
      var body = { site: cfg.site, session: state.session || store(KEY) || null,
                   url: location.href.slice(0, 1000) };
      Object.keys(data).forEach(function (k) { body[k] = data[k]; });
      return fetch(base + path, {
        method: "POST", body: JSON.stringify(body), credentials: "omit", keepalive: true,
        headers: { "Content-Type": "text/plain" }
      }).then(function (r) {
        return r.json().then(function (answer) {
          return { ok: r.ok, status: r.status, message: answer.message || answer.error || "" };
        });
      });
    }).catch(function () { return { ok: false, status: 0, message: "Нет связи. Попробуйте ещё раз." }; });
  }

  function sendForm(form) { return sendLead("/api/ct/lead", fieldsOf(form)); }
  function requestCallback(phone, name) {
    var data = { phone: String(phone || "").slice(0, 40) };
    if (name) data.name = String(name).slice(0, 200);
    return sendLead("/api/ct/callback", data);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.hasAttribute) return;
    var callback = form.hasAttribute("data-telecrm-callback");
    if (!callback && !form.hasAttribute("data-telecrm-form")) return;
    event.preventDefault();
    var data = fieldsOf(form);
    var sent = callback ? requestCallback(data.phone, data.name) : sendForm(form);
    sent.then(function (answer) {
      var out = form.querySelector("[data-telecrm-result]");
      if (out) out.textContent = answer.message;
      if (answer.ok) form.setAttribute("data-telecrm-sent", "1");
      form.dispatchEvent(new CustomEvent("telecrm:sent", { detail: answer }));
    });
  }, true);

  window.telecrm = { sendForm: sendForm, requestCallback: requestCallback,
                     session: function () { return state.session; } };

  var ACTIVITY = ["mousemove", "scroll", "touchstart", "keydown", "click", "wheel"];
  ACTIVITY.forEach(function (e) { window.addEventListener(e, active, { capture: true, passive: true }); });
  send(false);  // the visit is recorded at once; a number comes with the first activity
})();
