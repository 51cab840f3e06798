// volfefe dashboard: live rows from the server-sent event stream (no library, no CDN).
// Pages work without this script; it only adds new classifications as they are stored.
(function () {
  "use strict";
  var rows = document.getElementById("live-rows");
  var status = document.getElementById("live-status");
  if (!window.EventSource) { return; }
  var source = new EventSource("/api/v1/stream");
  source.onopen = function () { status.textContent = "live"; status.className = "on"; };
  source.onerror = function () { status.textContent = "reconnecting"; status.className = ""; };
  source.addEventListener("classified", function (message) {
    var event = JSON.parse(message.data);
    // Other page scripts (tape.js) take the same events from this one stream.
    document.dispatchEvent(new CustomEvent("volfefe:classified", { detail: event }));
    bump("total-classified", 1);
    bump("last-hour", 1);
    var count = document.querySelector('[data-count="' + event.sentiment + '"]');
    if (count) { count.textContent = String(Number(count.textContent) + 1); }
    if (rows && rows.dataset.live) { addRow(event); }
  });

  function bump(id, by) {
    var el = document.getElementById(id);
    if (el) { el.textContent = String(Number(el.textContent) + by); }
  }

  function cell(tr, child) {
    var td = document.createElement("td");
    if (typeof child === "string") { td.textContent = child; } else { td.appendChild(child); }
    tr.appendChild(td);
    return td;
  }

  function addRow(event) {
    var existing = rows.querySelector('tr[data-id="' + event.content_id + '"]');
    if (existing) { existing.remove(); }
    var tr = document.createElement("tr");
    tr.className = "fresh";
    tr.dataset.id = String(event.content_id);
    var link = document.createElement("a");
    link.href = "/posts/" + event.content_id;
    link.textContent = String(event.content_id);
    var tag = document.createElement("span");
    tag.className = "tag " + event.sentiment;
    tag.textContent = event.sentiment;
    cell(tr, link);
    if (rows.dataset.live === "posts") { cell(tr, ""); }
    cell(tr, tag);
    cell(tr, Number(event.confidence).toFixed(2));
    var text = cell(tr, "");
    text.className = "text";
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > 50) { rows.removeChild(rows.lastChild); }
    fetch("/api/v1/posts/" + event.content_id).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (post) { if (post) { text.textContent = (post.text || "").slice(0, 200); } })
      .catch(function () { /* the row stays without its text */ });
  }
})();
