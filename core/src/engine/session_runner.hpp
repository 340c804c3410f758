// Runs one configured session: `instances` instances side by side, or,
// when an endpoint listens, one per accepted connection up to
// max_instances. The runner lives on the main loop; its instances, on the
// loops it places them on.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include "config.hpp"
#include "engine/event.hpp"
#include "engine/instance.hpp"
#include "engine/loops.hpp"
#include "engine/waiter.hpp"

namespace pickleway {

struct session_totals {
  std::uint64_t instances = 0;  // ended
  std::uint64_t failed = 0;
  direction_stats a_to_b, b_to_a;
  link_stats links;  // reconnects and resent: of every instance; unacked: the live ones'
  std::uint64_t redeliveries = 0;  // messages a broker gave out again
  std::map<errc, std::uint64_t> errors;  // the ended instances' failures, by cause
  std::vector<std::uint64_t> refused;    // per filter, in list order
};

// What a session has done, as of one moment: the ended instances and the
// live ones, each counted once.
struct session_snapshot {
  session_totals totals;                // ended and live
  std::vector<instance_report> live;    // in the order they started
};

class session_runner {
 public:
  session_runner(loops& loops, const session_config& session, std::chrono::milliseconds grace,
                 std::function<void()> on_end);
  ~session_runner();

  void start();
  void shutdown();  // stops listening and shuts every instance down
  bool done() const { return done_; }
  std::size_t live() const { return live_.size(); }
  // Each live instance read on its own loop; from a coroutine of the main loop.
  asio::awaitable<session_snapshot> snapshot() const;
  // The same, once no loop runs.
  session_snapshot last_snapshot() const;
  // The latest failures (at most kept_errors), oldest first.
  static constexpr std::size_t kept_errors = 10;
  const std::deque<std::string>& last_errors() const { return last_errors_; }
  const session_config& config() const { return session_; }

 private:
  // Accepts connections while there is room for instances, and every
  // connection pending at each wake-up, until the session stops.
  asio::awaitable<void> accept_loop();
  // `slot`: its place among `instances: N` (1 for a listener's).
  void launch(std::unique_ptr<opener> accepted, std::uint64_t slot = 1);
  void ended(std::uint64_t number, instance_report last);
  void remember(errc cause, const std::string& error);
  static session_snapshot summed(session_totals ended, std::vector<instance_report> live);

  loops& loops_;
  asio::io_context& io_;  // the main loop
  const session_config& session_;
  std::chrono::milliseconds grace_;
  std::function<void()> on_end_;
  waiter waiter_;
  asio::steady_timer retry_timer_;  // after a failed accept
  event changed_;                   // an instance ended, or the session stops
  std::unique_ptr<listener> listener_;
  char listening_side_ = 0;  // 'a', 'b', or 0
  // A session with framing: link keeps its instances on the main loop: a
  // connection that resumes a link may be taken by any of them.
  bool linked_ = false;
  std::unordered_map<std::uint64_t, std::shared_ptr<instance>> live_;  // by number
  link_registry links_;  // of the instances' links, for connections that resume one
  std::uint64_t next_number_ = 1;
  session_totals ended_totals_;
  std::deque<std::string> last_errors_;
  bool stopping_ = false;
  bool done_ = false;
};

}  // namespace pickleway
