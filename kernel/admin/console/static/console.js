// The scheduler console's progressive script: the pages work without it.
// 1. Relative times ("in 3 h") stay current, counted from the server's clock.
// 2. Parts marked data-live are refreshed every data-refresh seconds (0: never), unless
//    the page is hidden or the keyboard focus is inside them.
"use strict";
(function () {
  var body = document.body;
  var serverNow = Date.parse(body.getAttribute("data-now") || "");
  var offset = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function relative(seconds) {
    var size = Math.abs(seconds), amount;
    if (size < 1) return "now";
    if (size < 90) amount = Math.round(size) + " s";
    else if (size < 90 * 60) amount = Math.round(size / 60) + " min";
    else if (size < 48 * 3600) amount = Math.round(size / 3600) + " h";
    else amount = Math.round(size / 86400) + " d";
    return seconds > 0 ? "in " + amount : amount + " ago";
  }

  function tick(root) {
    var now = Date.now() + offset;
    root.querySelectorAll("time[datetime] .rel").forEach(function (span) {
      var at = Date.parse(span.parentNode.getAttribute("datetime"));
      if (!isNaN(at)) span.textContent = "(" + relative((at - now) / 1000) + ")";
    });
  }

  function refresh() {
    if (document.hidden) return;
    var live = document.querySelectorAll("[data-live]");
    if (!live.length) return;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        var freshNow = Date.parse(fresh.body.getAttribute("data-now") || "");
        if (!isNaN(freshNow)) offset = freshNow - Date.now();
        live.forEach(function (old) {
          if (old.contains(document.activeElement)) return;
          var key = old.getAttribute("data-live");
          var next = fresh.querySelector('[data-live="' + key + '"]');
          if (next) { old.replaceWith(document.importNode(next, true)); }
        });
        tick(document);
      })
      .catch(function () { /* the next round tries again */ });
  }

  tick(document);
  setInterval(function () { tick(document); }, 15000);
  var every = parseFloat(body.getAttribute("data-refresh") || "0");
  if (every > 0) setInterval(refresh, every * 1000);
})();
