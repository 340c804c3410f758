// The engine's event loops: `threads: N` of them, each run by a thread of
// its own, the first by the thread that calls run(). The engine's own work
// (signals, listeners, the metrics, the sessions' books) is on the first;
// an instance lives all its life on one loop, so its messages keep their
// order without a lock, and instances spread over the loops as they start.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

namespace pickleway {

class loops {
 public:
  explicit loops(unsigned count);
  ~loops();
  loops(const loops&) = delete;
  loops& operator=(const loops&) = delete;

  asio::io_context& main() { return *loops_.front().io; }

  // Where the next instance goes: the loop with the fewest instances. It
  // counts there until left(). Both on the main loop only.
  asio::io_context& place();
  // Counts one more instance on `loop` (a place the caller chose).
  void placed_on(asio::io_context& loop);
  void left(asio::io_context& loop);

  // Runs each visit on its loop, all at once, and returns once every one
  // has run; from a coroutine of the main loop. A visit owns what it uses,
  // and is handed to its loop before this first waits: when the loops stop
  // first, it is only destroyed, with its loop, and the waiting frame holds
  // nothing of that loop's.
  using visits = std::vector<std::pair<asio::io_context*, std::function<void()>>>;
  asio::awaitable<void> visit(visits each);

  // Runs every loop until stop(), or until the main loop is out of work;
  // the others then finish what they hold (the instances' last posts) and
  // end. The main loop's end is the sign: while it runs, a visit to any
  // loop is sure to be run.
  void run();
  void stop();

 private:
  struct loop {
    std::unique_ptr<asio::io_context> io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> kept;
    std::size_t instances = 0;
  };
  loop& of(asio::io_context& io);

  std::vector<loop> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace pickleway
