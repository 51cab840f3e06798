// volfefe pipeline page: says how old its figures are and reloads them every REFRESH_S
// seconds while the tab is visible (the page itself works without this script).
(function () {
  "use strict";
  var REFRESH_S = 30;
  var root = document.getElementById("pipeline");
  if (!root) { return; }

  function tick() {
    var at = new Date(document.getElementById("pipeline").dataset.computedAt);
    var age = Math.max(0, Math.round((Date.now() - at.getTime()) / 1000));
    document.getElementById("pipeline-age").textContent = "(" + age + " s ago)";
  }

  function reload() {
    if (document.hidden) { return; }
    var open = Array.prototype.map.call(document.querySelectorAll("#pipeline details[open]"),
      function (d) { return Array.prototype.indexOf.call(document.querySelectorAll("#pipeline details"), d); });
    fetch(location.href, { headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("pipeline");
        if (!fresh) { return; }
        var focused = document.activeElement && document.activeElement.closest("#pipeline");
        if (focused) { return; }  // never pull the page from under the keyboard
        document.getElementById("pipeline").replaceWith(fresh);
        var all = document.querySelectorAll("#pipeline details");
        open.forEach(function (i) { if (all[i]) { all[i].open = true; } });
        tick();
      })
      .catch(function () { /* the figures shown stay, with their age */ });
  }

  tick();
  setInterval(tick, 1000);
  setInterval(reload, REFRESH_S * 1000);
})();
