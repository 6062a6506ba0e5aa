// Gridwhistle console: count-downs on the real clock, and the live board (server-sent events).
// No libraries; everything this page loads comes from this app.
(function () {
  "use strict";
  var body = document.body;
  var lang = body.dataset.lang || "zh";
  // count on the engine's clock: the server's "now" at render, kept with the browser's
  // own ticking (the real clock in production; a replay's virtual clock in demos)
  var offset = body.dataset.now ? Date.parse(body.dataset.now) - Date.now() : 0;
  function nowMs() { return Date.now() + offset; }

  function span(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var parts = [];
    if (lang === "zh") {
      if (d) parts.push(d + "天");
      if (h) parts.push(h + "小时");
      if (m || !parts.length) parts.push(m + "分钟");
      return parts.join("");
    }
    if (d) parts.push(d + " d");
    if (h) parts.push(h + " h");
    if (m || !parts.length) parts.push(m + " min");
    return parts.join(" ");
  }

  function setRisk(el, risk) {
    if (el.dataset.risk === risk) return;
    el.classList.remove("risk-ok", "risk-yellow", "risk-red");
    el.classList.add("risk-" + risk);
    el.dataset.risk = risk;
  }

  function tick(el) {
    var now = nowMs();
    var over = el.dataset.over ? Date.parse(el.dataset.over) : NaN;
    var due = el.dataset.due ? Date.parse(el.dataset.due) : NaN;
    var warn = el.dataset.warn ? Date.parse(el.dataset.warn) : NaN;
    if (isNaN(over) && !isNaN(due) && now > due) {  // the deadline passed on this clock
      el.dataset.over = el.dataset.due;
      over = due;
    }
    var clock = el.querySelector(".clock");
    if (!isNaN(over)) {
      setRisk(el, "red");
      if (clock) clock.textContent = body.dataset.over + (lang === "zh" ? "" : " ") + span(now - over);
      return;
    }
    if (!isNaN(warn) && now >= warn) setRisk(el, "yellow");
    if (clock) {
      clock.textContent = isNaN(due) ? body.dataset.none
        : body.dataset.left + (lang === "zh" ? "" : " ") + span(due - now);
    }
  }

  function tickAll() {
    var els = document.querySelectorAll(".card, #ticket-risk");
    for (var i = 0; i < els.length; i++) tick(els[i]);
  }

  function counts() {
    ["ticket", "work_order"].forEach(function (kind) {
      var box = document.querySelector('.cards[data-kind="' + kind + '"]');
      var badge = document.querySelector('[data-count="' + kind + '"]');
      if (!box) return;
      var n = box.querySelectorAll(".card").length;
      if (badge) badge.textContent = n;
      var empty = box.parentNode.querySelector(".empty");
      if (empty) empty.hidden = n > 0;
    });
  }

  function live() {
    if (!body.dataset.board || !window.EventSource) return;
    var status = document.getElementById("live");
    var es = new EventSource("/console/events?after=" + encodeURIComponent(body.dataset.cursor || ""));
    es.addEventListener("open", function () {
      if (status) { status.textContent = status.dataset.live; status.classList.remove("offline"); }
    });
    es.addEventListener("error", function () {
      if (status) { status.textContent = status.dataset.offline; status.classList.add("offline"); }
    });
    es.addEventListener("card", function (e) {
      var d = JSON.parse(e.data);
      var old = document.getElementById("card-" + d.id);
      if (d.remove) {
        if (old) old.remove();
      } else {
        var holder = document.createElement("div");
        holder.innerHTML = d.html.trim();
        var card = holder.firstElementChild;
        card.classList.add("fresh");
        var box = document.querySelector('.cards[data-kind="' + d.kind + '"]');
        if (old) old.replaceWith(card);
        else if (box) box.insertBefore(card, box.firstChild);
        tick(card);
        setTimeout(function () { card.classList.remove("fresh"); }, 2000);
      }
      counts();
      body.dataset.lastEvent = e.lastEventId || "";
    });
  }

  tickAll();
  setInterval(tickAll, 1000);
  live();
})();
