// Waits for plugin descriptors to be ready, on the engine's io_context.
//
// Plugins own their descriptors; the core only watches them. One Asio
// descriptor object per fd serves both read and write waits (epoll takes an
// fd once), and is released, never closed, when the core is done with it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <system_error>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

namespace pickleway {

class waiter {
 public:
  explicit waiter(asio::io_context& io) : io_(io) {}
  ~waiter() { forget_all(); }
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  // Calls `done` once `fd` is readable (writable), or with an error when
  // the wait is cancelled.
  void wait(int fd, bool writable, std::function<void(std::error_code)> done);

  // Drops the descriptors a plugin has closed meanwhile (a pipe's write end
  // after close_write), before their numbers can be reused.
  void forget_closed();
  // Cancels every wait and drops every descriptor.
  void forget_all();

 private:
  asio::io_context& io_;
  std::map<int, std::unique_ptr<asio::posix::stream_descriptor>> fds_;
};

}  // namespace pickleway
