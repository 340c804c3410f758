// One instance of a session: two opened endpoints, the filters, and a pump
// each way. It ends when both directions have ended and every child has
// exited; it has failed if anything went wrong before a shutdown began.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "config.hpp"
#include "engine/auth_driver.hpp"
#include "engine/pump.hpp"
#include "engine/waiter.hpp"

namespace pickleway {

class instance : public std::enable_shared_from_this<instance> {
 public:
  // `name` is "bridge" or "bridge#3" (instances of a listening session).
  instance(asio::io_context& io, const session_config& session, std::string name,
           std::uint64_t number, std::chrono::milliseconds grace,
           std::function<void(instance&)> on_end);
  ~instance();

  // Opens the endpoints, `accepted` first (the connection a listener took,
  // for endpoint `accepted_side`), then the others, then runs.
  void start(std::unique_ptr<opener> accepted, char accepted_side);
  // SIGINT/SIGTERM: children get SIGTERM, SIGKILL after the grace period;
  // an instance without children ends at once.
  void shutdown();

  bool failed() const { return failed_; }
  bool done() const { return done_; }
  direction_stats stats(direction d) const;
  const std::string& name() const { return name_; }

 private:
  class sink;

  void open_next();
  void step_opener(bool timed_out);
  // The endpoint's `auth` handshake, after it opened and before the next
  // endpoint is opened.
  void start_auth(endpoint_runtime& e);
  void step_auth();
  void run();
  void wait_for(pump& p, int fd, bool writable);
  void watch_child(endpoint_runtime& e);
  void await_exit(endpoint_runtime& e);
  void fail(const std::string& error);
  void check_done();
  void abort();
  void finish();

  asio::io_context& io_;
  const session_config& session_;
  std::string name_;
  std::uint64_t number_;
  std::chrono::milliseconds grace_;
  std::function<void(instance&)> on_end_;
  std::unique_ptr<sink> log_;  // declared before what uses it: destroyed after
  waiter waiter_;       // the streams' and children's descriptors
  waiter open_waiter_;  // the openers' (they may close and reuse them)

  endpoint_runtime a_, b_;
  std::vector<std::unique_ptr<filter>> filters_;
  std::unique_ptr<pump> ab_, ba_;

  // Opening, one endpoint at a time.
  std::vector<std::pair<endpoint_runtime*, std::unique_ptr<opener>>> to_open_;
  asio::steady_timer open_timer_;
  std::uint64_t open_generation_ = 0;
  endpoint_runtime* accepted_ = nullptr;  // the listening side's connection
  std::unique_ptr<auth_driver> auth_;     // the handshake under way
  endpoint_runtime* authenticating_ = nullptr;
  asio::steady_timer auth_timer_;         // timeout_ms, for the whole handshake
  std::uint64_t auth_generation_ = 0;

  int children_running_ = 0;
  asio::steady_timer grace_timer_;
  bool failed_ = false;
  bool shutting_down_ = false;
  bool done_ = false;
};

}  // namespace pickleway
