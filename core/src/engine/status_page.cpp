#include "engine/status_page.hpp"

namespace pickleway {

std::string_view status_page() {
  // Rates are the page's own: the difference between two readings of
  // /status over the time between them.
  static constexpr std::string_view page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pickleway</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  #meta { color: #666; margin-bottom: 1em; }
  section.session { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .8em 1em; margin-bottom: 1em; }
  section.session h2 { font-size: 1.1em; margin: 0 0 .5em; }
  table { border-collapse: collapse; margin: .3em 0; }
  th, td { text-align: right; padding: .15em .8em; border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child { text-align: left; }
  .errors li { color: #a00; font-family: monospace; white-space: pre-wrap; }
  .failed { color: #a00; }
  #stale { color: #a00; display: none; }
</style>
</head>
<body>
<h1>pickleway</h1>
<div id="meta">loading&hellip;</div>
<div id="stale">the gateway does not answer</div>
<div id="sessions"></div>
<script>
"use strict";
let before = null;  // the previous reading and when it was taken

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function rate(now, then, key, dir, seconds) {
  if (!then || seconds <= 0) return "";
  return Math.max(0, (now[dir][key] - then[dir][key]) / seconds).toFixed(0);
}

function directionRow(label, dir, now, then, seconds) {
  const tr = el("tr", {"class": "direction", "data-direction": dir});
  tr.append(el("td", {}, label),
            el("td", {"class": "messages"}, String(now[dir].messages)),
            el("td", {"class": "bytes"}, String(now[dir].bytes)),
            el("td", {"class": "message-rate"}, rate(now, then, "messages", dir, seconds)),
            el("td", {"class": "byte-rate"}, rate(now, then, "bytes", dir, seconds)),
            el("td", {"class": "dropped"}, String(now[dir].dropped)));
  return tr;
}

function render(status, seconds) {
  const old = before ? new Map(before.status.sessions.map(s => [s.name, s])) : new Map();
  document.getElementById("meta").textContent =
    "version " + status.version + ", up " + Math.round(status.uptime_seconds) + " s";
  const all = el("div", {"id": "sessions"});
  for (const s of status.sessions) {
    const then = old.get(s.name);
    const sec = el("section", {"class": "session", "data-session": s.name});
    sec.append(el("h2", {}, "session " + s.name));
    sec.append(el("div", {"class": "instances"},
      s.live + " running, " + s.ended + " ended, ",
      el("span", {"class": s.failed ? "failed" : ""}, s.failed + " failed")));
    const t = el("table", {"class": "counts"},
      el("tr", {}, el("th", {}, "direction"), el("th", {}, "messages"), el("th", {}, "bytes"),
                   el("th", {}, "msg/s"), el("th", {}, "bytes/s"), el("th", {}, "dropped")));
    t.append(directionRow("a>b", "a>b", s, then, seconds), directionRow("b>a", "b>a", s, then, seconds));
    sec.append(t);
    if (s.link)
      sec.append(el("div", {"class": "link"}, "link: " + s.link.reconnects + " reconnects, " +
        s.link.resent + " resent, " + s.link.unacked_bytes + " bytes unacknowledged"));
    if (s.redeliveries)  // a broker gave messages out again (redis)
      sec.append(el("div", {"class": "redeliveries"},
        el("span", {"class": "redelivered"}, String(s.redeliveries)), " messages redelivered"));
    if (s.filters.length)
      sec.append(el("div", {"class": "filters"}, "filters: " +
        s.filters.map(f => f.name + " (" + f.refused + " refused)").join(", ")));
    if (s.instances.length) {
      const it = el("table", {"class": "instance-list"},
        el("tr", {}, el("th", {}, "instance"), el("th", {}, "a>b messages"), el("th", {}, "b>a messages")));
      for (const i of s.instances)
        it.append(el("tr", {"class": i.failed ? "failed" : ""}, el("td", {}, i.name),
          el("td", {}, String(i["a>b"].messages)), el("td", {}, String(i["b>a"].messages))));
      sec.append(it);
    }
    if (s.last_errors.length) {
      const ul = el("ul", {"class": "errors"});
      for (const e of s.last_errors) ul.append(el("li", {}, e));
      sec.append(el("div", {}, "last errors:"), ul);
    }
    all.append(sec);
  }
  document.getElementById("sessions").replaceWith(all);
}

async function update() {
  try {
    const response = await fetch("/status", {cache: "no-store"});
    const status = await response.json();
    const now = performance.now();
    render(status, before ? (now - before.at) / 1000 : 0);
    before = {status, at: now};
    document.getElementById("stale").style.display = "none";
  } catch (e) {
    document.getElementById("stale").style.display = "block";
  }
  setTimeout(update, 1000);
}
update();
</script>
</body>
</html>
)html";
  return page;
}

}  // namespace pickleway
