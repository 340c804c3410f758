// One instance of a session: two opened endpoints, the filters, and a pump
// each way. It ends when both directions have ended and every child has
// exited; it has failed if anything went wrong before a shutdown began.
//
// Its life is one coroutine (run()): open the endpoints one after the
// other, each with its handshakes; make the filters; start the pumps and
// the children's watchers; wait until they are done or a shutdown ends
// them; close everything. Ending early is closing things: finish() cancels
// every wait the instance's coroutines are in, and each returns at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "config.hpp"
#include "engine/event.hpp"
#include "engine/link.hpp"
#include "engine/link_registry.hpp"
#include "engine/loop_watcher.hpp"
#include "engine/pump.hpp"
#include "engine/waiter.hpp"

namespace pickleway {

// What an instance has done so far, read on its own loop.
struct instance_report {
  std::string name;
  direction_stats a_to_b, b_to_a;
  link_stats links;
  std::uint64_t redeliveries = 0;  // its streams' (a broker's)
  // For each filter of the session, in list order: the messages it
  // dropped or failed on, both ways.
  std::vector<std::uint64_t> refused;
  // It has failed if anything went wrong before a shutdown began; then
  // `cause` and `error` say why (its first failure), in the error table's
  // terms and as logged.
  bool failed = false;
  errc cause = errc::ok;
  std::string error;
  // It only carried a connection to the instance whose link it resumes (or
  // refused one): not an instance of its own, nor counted as one.
  bool absorbed = false;
};

class instance : public std::enable_shared_from_this<instance> {
 public:
  // `name` is "bridge" or "bridge#3" (instances of a listening session).
  // `links`: the listening session's, where a link's instance registers
  // it, and a resumed connection finds it. `io`: the loop it runs on, and
  // calls `on_end` on, with its last report, once it is done.
  instance(asio::io_context& io, const session_config& session, std::string name,
           std::uint64_t number, std::chrono::milliseconds grace, link_registry* links,
           std::function<void(instance_report)> on_end, std::uint64_t slot = 1,
           std::uint64_t slots = 1);
  ~instance();

  // Opens the endpoints, `accepted` first (the connection a listener took,
  // for endpoint `accepted_side`), then the others, then runs.
  void start(std::unique_ptr<opener> accepted, char accepted_side);
  // SIGINT/SIGTERM: an endpoint that drains (a broker's reader finishing
  // what it took) gets the grace period to end by itself; then, or at
  // once, children get SIGTERM, SIGKILL after the grace period; an
  // instance without children ends at once.
  void shutdown();

  // Only on the instance's own loop, or once no loop runs.
  instance_report report() const;
  asio::io_context& loop() const { return io_; }

 private:
  class sink;

  // Runs `coroutine(*this)` on the instance's loop, keeping it alive.
  template <typename Coroutine>
  void spawn(Coroutine coroutine);
  asio::awaitable<void> run(std::unique_ptr<opener> accepted, char accepted_side);
  // Each false when the instance failed (or ended) on the way. `accepted`:
  // the connection a listener took (its auth challenges first).
  asio::awaitable<bool> open(endpoint_runtime& e, std::unique_ptr<opener> o, bool accepted);
  // The transport's opener for `e`; nullptr when it gave none (the
  // instance has failed).
  std::unique_ptr<opener> open_endpoint(endpoint_runtime& e);
  asio::awaitable<bool> authenticate(endpoint_runtime& e, bool accepted);
  // framing: link, once the endpoint's stream is open: the hello, and the
  // link that takes the stream (or, resuming, the link of another instance).
  asio::awaitable<bool> open_link(endpoint_runtime& e, bool accepted);
  asio::awaitable<link::reconnection> reconnect(endpoint_runtime& e);
  asio::awaitable<bool> resume_hello(endpoint_runtime& e, link_wire::welcome& w,
                                     std::vector<std::uint8_t>& early);
  std::shared_ptr<link> make_link(endpoint_runtime& e, const link_wire::link_id& id, bool connector);
  // The hello exchange's I/O on e.stream; false when it failed or timed
  // out. A connection that breaks fails the instance, unless `resuming`: a
  // reconnect that breaks is tried again until resume_ms.
  asio::awaitable<bool> send_bytes(endpoint_runtime& e, std::vector<std::uint8_t> bytes,
                                   bool resuming = false);
  template <typename Message>
  asio::awaitable<bool> receive_message(endpoint_runtime& e, Message& m, std::vector<std::uint8_t>& early,
                                        bool resuming = false);
  open_context context();  // what the plugins are told of the instance
  bool make_filters();
  asio::awaitable<void> watch_child(endpoint_runtime& e);
  void fail(errc cause, const std::string& error);
  void check_done();  // finishes once the pumps and children are done
  // Waits until the streams have nothing still on its way, then finishes.
  asio::awaitable<void> settle();
  void stop_children();  // SIGTERM, SIGKILL after the grace period
  void finish();
  direction_stats stats(direction d) const;
  std::uint64_t redeliveries() const;

  asio::io_context& io_;
  const session_config& session_;
  std::string name_;
  std::uint64_t number_;
  std::uint64_t slot_, slots_;  // its place among a session's `instances: N`
  std::chrono::milliseconds grace_;
  link_registry* links_;
  std::function<void(instance_report)> on_end_;
  std::unique_ptr<sink> log_;  // declared before what uses them: destroyed after
  loop_watcher watcher_;       // the plugins' own descriptors (spawn's log pipes)
  waiter waiter_;       // the streams' and children's descriptors
  waiter open_waiter_;  // the openers' (they may close and reuse them)
  asio::steady_timer timeout_;      // an opener's, a handshake's
  asio::steady_timer grace_timer_;  // after a failure, until the shutdown
  asio::steady_timer kill_timer_;   // after the shutdown's SIGTERM, until SIGKILL
  event changed_;  // a pump or child ended, a shutdown began

  endpoint_runtime a_, b_;
  std::vector<std::unique_ptr<filter>> filters_;
  std::unique_ptr<pump> ab_, ba_;

  int children_running_ = 0;
  bool failed_ = false;
  errc cause_ = errc::ok;
  std::string error_;
  bool absorbed_ = false;
  bool shutting_down_ = false;
  bool grace_started_ = false;
  bool settling_ = false;
  std::uint64_t redelivered_before_close_ = 0;  // of the streams finish() closed
  bool done_ = false;
};

}  // namespace pickleway
