// volfefe overview: refresh every count marked data-stat from /api/v1/stats (no library).
// Without this script the page says when its counts were computed; with it they stay current.
(function () {
  "use strict";
  var script = document.currentScript;
  var every = Number(script && script.dataset.refresh) || 10;
  var stamp = document.getElementById("stats-as-of");
  var live = document.getElementById("stats-live");
  if (!window.fetch || !stamp) { return; }

  function pick(data, path) {
    return path.split(".").reduce(function (v, k) { return v == null ? v : v[k]; }, data);
  }

  function age(s) {  // the same steps as the template's age()
    if (s == null) { return "–"; }
    if (s < 120) { return Math.round(s) + " s"; }
    if (s < 7200) { return Math.round(s / 60) + " min"; }
    if (s < 172800) { return (s / 3600).toFixed(1) + " h"; }
    return (s / 86400).toFixed(1) + " d";
  }

  function refresh() {
    if (document.hidden) { return; }
    fetch("/api/v1/stats", { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        document.querySelectorAll("[data-stat]").forEach(function (el) {
          var value = pick(data, el.dataset.stat);
          el.textContent = el.dataset.format === "age" ? age(value) : String(value);
        });
        var now = new Date();
        stamp.dateTime = now.toISOString();
        stamp.textContent = now.toISOString().slice(11, 19) + " UTC";
        if (live) { live.hidden = false; }
      })
      .catch(function () { /* the counts keep their time stamp */ });
  }

  refresh();
  setInterval(refresh, every * 1000);
  document.addEventListener("visibilitychange", refresh);
})();
