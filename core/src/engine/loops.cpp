#include "engine/loops.hpp"

#include <algorithm>
#include <chrono>
#include <string>

#include <pthread.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

namespace pickleway {

loops::loops(unsigned count) : loops_(std::max(1u, count)) {
  for (loop& l : loops_) {
    // Each is run by one thread: what a loop posts to itself then goes on
    // that thread's own queue, without the lock.
    l.io = std::make_unique<asio::io_context>(1);
    if (&l != &loops_.front()) l.kept.emplace(l.io->get_executor());
  }
}

loops::~loops() {
  stop();
  for (std::thread& t : threads_) t.join();
  // The main loop goes last: what the others drop as they go (an instance
  // a visit held, say) may still be posted there or hold its timers.
  for (auto l = loops_.rbegin(); l != loops_.rend(); ++l) {
    l->kept.reset();
    l->io.reset();
  }
}

loops::loop& loops::of(asio::io_context& io) {
  return *std::find_if(loops_.begin(), loops_.end(), [&](const loop& l) { return l.io.get() == &io; });
}

asio::io_context& loops::place() {
  loop& least = *std::min_element(loops_.begin(), loops_.end(), [](const loop& x, const loop& y) {
    return x.instances < y.instances;
  });
  ++least.instances;
  return *least.io;
}

void loops::placed_on(asio::io_context& io) { ++of(io).instances; }

void loops::left(asio::io_context& io) { --of(io).instances; }

asio::awaitable<void> loops::visit(visits each) {
  // The main loop waits on a timer that the last visit done cancels there.
  auto done = std::make_shared<asio::steady_timer>(main(), std::chrono::steady_clock::time_point::max());
  auto left = std::make_shared<std::size_t>(each.size());
  for (auto& [io, visit] : each) {
    if (io == &main()) {
      visit();
      --*left;
      continue;
    }
    asio::post(*io, [visit = std::move(visit), done, left, &home = main()] {
      visit();
      asio::post(home, [done, left] {
        if (--*left == 0) done->cancel();
      });
    });
  }
  if (*left) co_await done->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
}

void loops::run() {
  for (std::size_t k = 1; k < loops_.size(); ++k) {
    threads_.emplace_back([&io = *loops_[k].io] { io.run(); });
    // As `top -H` and /proc/PID/task show it; the main thread runs loop 0.
    ::pthread_setname_np(threads_.back().native_handle(), ("loop-" + std::to_string(k)).c_str());
  }
  main().run();
  for (loop& l : loops_) l.kept.reset();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void loops::stop() {
  for (loop& l : loops_) l.io->stop();
}

}  // namespace pickleway
