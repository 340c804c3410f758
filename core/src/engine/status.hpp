// What a running gateway says of itself: one snapshot of every session's
// counters, taken on the loops when scraped, and its two written forms,
// Prometheus' text format (/metrics) and JSON (/status).
#pragma once

#include <string>
#include <vector>

#include "engine/session_runner.hpp"

namespace pickleway {

struct session_status {
  std::string name;
  bool linked = false;  // an endpoint has framing: link
  std::vector<std::string> filters;  // labels, in list order; a repeated name gets "#2"
  std::size_t live = 0;              // instances running now
  session_totals totals;             // ended and live
  std::vector<instance_report> instances;  // the live ones
  std::vector<std::string> last_errors;    // oldest first
};

struct gateway_status {
  std::string version;
  double uptime_seconds = 0;
  std::vector<session_status> sessions;
};

session_status status_of(const session_runner& runner, session_snapshot now);

// The Prometheus text exposition format, version 0.0.4.
std::string render_metrics(const gateway_status& s);
std::string render_status_json(const gateway_status& s);

}  // namespace pickleway
