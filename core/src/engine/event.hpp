// A change one coroutine waits for and others announce: the instance waits
// on one until its pumps, children and shutdown say it may end.
#pragma once

#include <chrono>

#include <asio/awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

namespace pickleway {

class event {
 public:
  explicit event(asio::io_context& io) : timer_(io) {}

  // Wakes the coroutine waiting, if any; it then looks again at what it
  // waits for.
  void notify() { timer_.cancel(); }

  // Until the next notify() (a timer that never expires by itself).
  asio::awaitable<void> changed() {
    timer_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await timer_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }

 private:
  asio::steady_timer timer_;
};

}  // namespace pickleway
