// A one-shot timer on the core's loop: a timerfd the loop watches, so the
// redis endpoint needs neither a thread nor a timer API of the core's.
#pragma once

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include <pickleway/fd_stream.hpp>
#include <pickleway/transport.hpp>

namespace pickleway::redis {

class loop_timer {
 public:
  // `fired` runs on the loop thread each time an arming expires.
  loop_timer(watcher& loop, std::function<void()> fired) : fired_(std::move(fired)) {
    fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (fd_) watch_ = loop.watch_readable(fd_.get(), [this] {
      std::uint64_t expirations = 0;
      if (::read(fd_.get(), &expirations, sizeof expirations) > 0) fired_();
    });
  }
  ~loop_timer() { watch_.reset(); }  // the watch goes before the descriptor
  loop_timer(const loop_timer&) = delete;
  loop_timer& operator=(const loop_timer&) = delete;

  bool usable() const { return watch_ != nullptr; }

  // Fires once after `delay` (replacing an arming not yet expired).
  void arm(std::chrono::milliseconds delay) {
    itimerspec when{};
    const auto ms = std::max<std::int64_t>(delay.count(), 1);
    when.it_value.tv_sec = ms / 1000;
    when.it_value.tv_nsec = (ms % 1000) * 1'000'000;
    ::timerfd_settime(fd_.get(), 0, &when, nullptr);
  }

 private:
  std::function<void()> fired_;
  unique_fd fd_;
  std::unique_ptr<watch> watch_;
};

}  // namespace pickleway::redis
