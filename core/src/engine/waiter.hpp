// Waits for plugin descriptors to be ready, on the engine's io_context.
//
// Plugins own their descriptors; the core only watches them. One Asio
// descriptor object per fd serves both read and write waits (epoll takes an
// fd once), and is released, never closed, when the core is done with it.
#pragma once

#include <map>
#include <memory>
#include <system_error>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

namespace pickleway {

class waiter {
 public:
  explicit waiter(asio::io_context& io) : io_(io) {}
  ~waiter() { forget_all(); }
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  // Until `fd` is readable (writable); asio::error::operation_aborted when
  // forget_all() cancels the wait. Never throws but std::bad_alloc.
  asio::awaitable<std::error_code> wait(int fd, bool writable);

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
