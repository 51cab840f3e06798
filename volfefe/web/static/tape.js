// volfefe signal tape: the filters act in the browser, on the rows shown and on those that
// arrive (live.js hands over each stream event); the form still works without this script.
(function () {
  "use strict";
  var form = document.getElementById("tape-filters");
  var rows = document.getElementById("tape-rows");
  if (!form || !rows) { return; }
  var count = document.getElementById("tape-count");
  var empty = document.getElementById("tape-empty");
  var MAX_ROWS = 500;
  var refill = null;

  function filters() {
    var f = {};
    ["sentiment", "min_confidence", "source", "author", "q"].forEach(function (name) {
      f[name] = form.elements[name].value.trim();
    });
    return f;
  }

  function matches(tr, f) {
    var d = tr.dataset;
    var text = tr.querySelector(".full") ? tr.querySelector(".full").textContent : "";
    if (f.sentiment && d.sentiment !== f.sentiment) { return false; }
    if (f.min_confidence && Number(d.confidence) < Number(f.min_confidence)) { return false; }
    if (f.source && d.source !== f.source) { return false; }
    if (f.author && d.author.toLowerCase().indexOf(f.author.toLowerCase()) < 0) { return false; }
    if (f.q && text.toLowerCase().indexOf(f.q.toLowerCase()) < 0) { return false; }
    return true;
  }

  function query(f) {
    var q = new URLSearchParams();
    Object.keys(f).forEach(function (k) { if (f[k]) { q.set(k, f[k]); } });
    return q.toString();
  }

  function apply(updateUrl) {
    var f = filters();
    var shown = 0;
    Array.prototype.forEach.call(rows.children, function (tr) {
      tr.hidden = !matches(tr, f);
      if (!tr.hidden) { shown += 1; }
    });
    count.textContent = shown + " shown";
    empty.hidden = shown > 0;
    if (updateUrl) {  // a reload or a shared link shows the same rows
      var qs = query(f);
      history.replaceState(null, "", "/tape" + (qs ? "?" + qs : ""));
    }
  }

  function fmtDuration(s) {
    if (s < 1) { return (s * 1000).toFixed(0) + " ms"; }
    if (s < 120) { return s.toFixed(1) + " s"; }
    if (s < 7200) { return (s / 60).toFixed(1) + " min"; }
    if (s < 172800) { return (s / 3600).toFixed(1) + " h"; }
    return (s / 86400).toFixed(1) + " d";
  }

  function time(iso, long) {
    var t = document.createElement("time");
    t.dateTime = iso;
    t.title = iso;
    var utc = new Date(iso).toISOString();
    t.textContent = long ? utc.slice(0, 16).replace("T", " ") : utc.slice(11, 19);
    return t;
  }

  function cell(tr, child, cls) {
    var td = document.createElement("td");
    if (typeof child === "string") { td.textContent = child; } else { td.appendChild(child); }
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function build(s) {
    var tr = document.createElement("tr");
    tr.className = "fresh";
    tr.dataset.id = String(s.id);
    tr.dataset.sentiment = s.sentiment;
    tr.dataset.confidence = String(s.confidence);
    tr.dataset.source = s.source;
    tr.dataset.author = s.author || "";
    cell(tr, time(s.classified_at, false));
    cell(tr, fmtDuration(s.latency_s), "num").title = "arrived " + s.arrived_at;
    var tag = document.createElement("span");
    tag.className = "tag " + s.sentiment;
    tag.textContent = s.sentiment;
    cell(tr, tag);
    cell(tr, Number(s.confidence).toFixed(2), "num");
    cell(tr, s.source);
    cell(tr, s.author || "–");
    cell(tr, s.published_at ? time(s.published_at, true) : "–");
    var td = cell(tr, "", "text");
    var full = document.createElement(s.text.length > 120 ? "p" : "span");
    full.className = "full";
    full.textContent = s.text;
    if (s.text.length > 120) {
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      summary.textContent = s.text.slice(0, 120) + "…";
      details.appendChild(summary);
      details.appendChild(full);
      td.appendChild(details);
    } else {
      td.appendChild(full);
    }
    var link = document.createElement("a");
    link.href = "/posts/" + s.content_id;
    link.textContent = "#" + s.content_id;
    link.setAttribute("aria-label", "post " + s.content_id);
    td.appendChild(document.createTextNode(" "));
    td.appendChild(link);
    return tr;
  }

  // Newest first: a row goes before the first one with a smaller id; one already shown
  // (a reclassified post keeps its id) is replaced.
  function place(s) {
    var tr = build(s);
    var old = rows.querySelector('tr[data-id="' + s.id + '"]');
    if (old) { rows.replaceChild(tr, old); return tr; }
    var next = Array.prototype.find.call(rows.children, function (r) {
      return Number(r.dataset.id) < s.id;
    });
    rows.insertBefore(tr, next || null);
    while (rows.children.length > MAX_ROWS) { rows.removeChild(rows.lastChild); }
    return tr;
  }

  function fetchRows(qs) {
    return fetch("/api/v1/tape?" + qs, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { signals: [] }; })
      .then(function (body) { body.signals.forEach(place); apply(false); })
      .catch(function () { /* the rows shown stay */ });
  }

  // Loosening a filter shows rows the server did not send: fetch the newest that match.
  function changed() {
    apply(true);
    if (!rows.dataset.live) { return; }
    clearTimeout(refill);
    refill = setTimeout(function () { fetchRows(query(filters())); }, 300);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", function (e) { e.preventDefault(); changed(); });
  document.addEventListener("volfefe:classified", function (e) {
    if (!rows.dataset.live) { return; }
    var id = Number(e.detail.id);
    fetchRows("after=" + (id - 1) + "&before=" + (id + 1) + "&limit=1");
  });
  apply(false);
})();
