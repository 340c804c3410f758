#include "engine/status.hpp"

#include <cstdio>
#include <map>

#include "pickleway/json_text.hpp"

namespace pickleway {
namespace {

// A label value: backslash, double quote and line feed escaped.
void append_label(std::string& out, std::string_view value) {
  out += '"';
  for (const char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  out += '"';
}

struct family {
  std::string& out;
  std::string name;

  family(std::string& o, std::string n, std::string_view type, std::string_view help)
      : out(o), name(std::move(n)) {
    out += "# HELP " + name + " " + std::string(help) + "\n# TYPE " + name + " " +
           std::string(type) + "\n";
  }
  // One sample: `labels` as name/value pairs.
  void sample(std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              std::uint64_t value) {
    out += name;
    out += '{';
    bool first = true;
    for (const auto& [label, text] : labels) {
      if (!first) out += ',';
      first = false;
      out += label;
      out += '=';
      append_label(out, text);
    }
    out += "} ";
    out += std::to_string(value);
    out += '\n';
  }
};

void append_number(std::string& out, double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", v);
  out += text;
}

void append_direction(std::string& out, const direction_stats& d) {
  out += "{\"messages\":" + std::to_string(d.messages) + ",\"bytes\":" + std::to_string(d.bytes) +
         ",\"dropped\":" + std::to_string(d.dropped) + ",\"stray_bytes\":" +
         std::to_string(d.stray_bytes) + "}";
}

void append_link(std::string& out, const link_stats& l) {
  out += "{\"reconnects\":" + std::to_string(l.reconnects) + ",\"resent\":" +
         std::to_string(l.resent) + ",\"unacked\":" + std::to_string(l.unacked) +
         ",\"unacked_bytes\":" + std::to_string(l.unacked_bytes) + "}";
}

}  // namespace

session_status status_of(const session_runner& runner, session_snapshot now) {
  session_status s;
  const session_config& c = runner.config();
  s.name = c.name;
  s.linked = c.a.framing.kind == framing_kind::link || c.b.framing.kind == framing_kind::link;
  std::map<std::string, int> seen;
  for (const auto& f : c.filters) {
    const int n = ++seen[f.name];
    s.filters.push_back(n == 1 ? f.name : f.name + "#" + std::to_string(n));
  }
  s.live = now.live.size();
  s.totals = std::move(now.totals);
  s.instances = std::move(now.live);
  s.last_errors.assign(runner.last_errors().begin(), runner.last_errors().end());
  return s;
}

std::string render_metrics(const gateway_status& g) {
  std::string out;
  {
    family f(out, "pickleway_messages_total", "counter", "Messages passed on, by session and direction.");
    for (const auto& s : g.sessions) {
      f.sample({{"session", s.name}, {"direction", "a>b"}}, s.totals.a_to_b.messages);
      f.sample({{"session", s.name}, {"direction", "b>a"}}, s.totals.b_to_a.messages);
    }
  }
  {
    family f(out, "pickleway_bytes_total", "counter", "Bytes of the messages passed on, by session and direction.");
    for (const auto& s : g.sessions) {
      f.sample({{"session", s.name}, {"direction", "a>b"}}, s.totals.a_to_b.bytes);
      f.sample({{"session", s.name}, {"direction", "b>a"}}, s.totals.b_to_a.bytes);
    }
  }
  {
    family f(out, "pickleway_instances", "gauge", "Instances running now, by session.");
    for (const auto& s : g.sessions) f.sample({{"session", s.name}}, s.live);
  }
  {
    family f(out, "pickleway_instances_total", "counter", "Instances ended, by session and result.");
    for (const auto& s : g.sessions) {
      f.sample({{"session", s.name}, {"result", "ok"}}, s.totals.instances - std::min(s.totals.instances, s.totals.failed));
      f.sample({{"session", s.name}, {"result", "failed"}}, s.totals.failed);
    }
  }
  {
    family f(out, "pickleway_errors_total", "counter", "Failures, by session and cause.");
    for (const auto& s : g.sessions)
      for (const auto& [cause, count] : s.totals.errors)
        f.sample({{"session", s.name}, {"cause", errc_name(cause)}}, count);
  }
  {
    family f(out, "pickleway_filter_refused_total", "counter",
             "Messages a filter dropped or failed on, by session and filter.");
    for (const auto& s : g.sessions)
      for (std::size_t i = 0; i < s.filters.size(); ++i)
        f.sample({{"session", s.name}, {"filter", s.filters[i]}}, s.totals.refused[i]);
  }
  {
    family f(out, "pickleway_link_reconnects_total", "counter", "Reconnections of links, by session.");
    for (const auto& s : g.sessions)
      if (s.linked) f.sample({{"session", s.name}}, s.totals.links.reconnects);
  }
  {
    family f(out, "pickleway_link_unacked_bytes", "gauge",
             "Bytes the links hold until the far gateway acknowledges them, by session.");
    for (const auto& s : g.sessions)
      if (s.linked) f.sample({{"session", s.name}}, s.totals.links.unacked_bytes);
  }
  {
    family f(out, "pickleway_redis_redeliveries_total", "counter",
             "Messages a broker gave out again (a Redis stream's pending entries), by session.");
    for (const auto& s : g.sessions) f.sample({{"session", s.name}}, s.totals.redeliveries);
  }
  return out;
}

std::string render_status_json(const gateway_status& g) {
  std::string out = "{\"version\":";
  append_json_string(out, g.version);
  out += ",\"uptime_seconds\":";
  append_number(out, g.uptime_seconds);
  out += ",\"sessions\":[";
  for (std::size_t k = 0; k < g.sessions.size(); ++k) {
    const session_status& s = g.sessions[k];
    if (k) out += ',';
    out += "{\"name\":";
    append_json_string(out, s.name);
    out += ",\"live\":" + std::to_string(s.live) + ",\"ended\":" + std::to_string(s.totals.instances) +
           ",\"failed\":" + std::to_string(s.totals.failed) + ",\"a>b\":";
    append_direction(out, s.totals.a_to_b);
    out += ",\"b>a\":";
    append_direction(out, s.totals.b_to_a);
    out += ",\"errors\":{";
    bool first = true;
    for (const auto& [cause, count] : s.totals.errors) {
      if (!first) out += ',';
      first = false;
      append_json_string(out, errc_name(cause));
      out += ':' + std::to_string(count);
    }
    out += "},\"filters\":[";
    for (std::size_t i = 0; i < s.filters.size(); ++i) {
      if (i) out += ',';
      out += "{\"name\":";
      append_json_string(out, s.filters[i]);
      out += ",\"refused\":" + std::to_string(s.totals.refused[i]) + "}";
    }
    out += "],\"redeliveries\":" + std::to_string(s.totals.redeliveries);
    if (s.linked) {
      out += ",\"link\":";
      append_link(out, s.totals.links);
    }
    out += ",\"last_errors\":[";
    for (std::size_t i = 0; i < s.last_errors.size(); ++i) {
      if (i) out += ',';
      append_json_string(out, s.last_errors[i]);
    }
    out += "],\"instances\":[";
    for (std::size_t i = 0; i < s.instances.size(); ++i) {
      const instance_report& n = s.instances[i];
      if (i) out += ',';
      out += "{\"name\":";
      append_json_string(out, n.name);
      out += ",\"a>b\":";
      append_direction(out, n.a_to_b);
      out += ",\"b>a\":";
      append_direction(out, n.b_to_a);
      if (s.linked) {
        out += ",\"link\":";
        append_link(out, n.links);
      }
      out += std::string(",\"failed\":") + (n.failed ? "true" : "false") + "}";
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

}  // namespace pickleway
