// The watcher (transport.hpp) the core gives plugins: a coroutine per
// watched way of a descriptor, on the engine's io_context, waits for it to
// be ready and runs the plugin's callback there, on the loop thread.
#pragma once

#include <asio/io_context.hpp>

#include "pickleway/transport.hpp"

namespace pickleway {

class loop_watcher final : public watcher {
 public:
  explicit loop_watcher(asio::io_context& io) : io_(io) {}
  std::unique_ptr<watch> watch_readable(int fd, std::function<void()> readable) noexcept override;
  std::unique_ptr<socket_watch> watch_socket(int fd, std::function<void()> readable,
                                             std::function<void()> writable) noexcept override;

 private:
  asio::io_context& io_;
};

}  // namespace pickleway
