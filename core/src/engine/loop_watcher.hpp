// The watcher (transport.hpp) the core gives plugins: a coroutine per
// watch on the engine's io_context waits for its descriptor to be readable
// and runs the plugin's callback there, on the loop thread.
#pragma once

#include <asio/io_context.hpp>

#include "pickleway/transport.hpp"

namespace pickleway {

class loop_watcher final : public watcher {
 public:
  explicit loop_watcher(asio::io_context& io) : io_(io) {}
  std::unique_ptr<watch> watch_readable(int fd, std::function<void()> readable) noexcept override;

 private:
  asio::io_context& io_;
};

}  // namespace pickleway
