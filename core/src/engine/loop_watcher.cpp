#include "engine/loop_watcher.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/use_awaitable.hpp>

#include "pickleway/guarded.hpp"

namespace pickleway {
namespace {

// What a watch and its coroutine share: the coroutine holds it, so a
// callback may destroy its own watch.
struct watched {
  watched(asio::io_context& io, int fd, std::function<void()> r)
      : descriptor(io, fd), readable(std::move(r)) {}
  asio::posix::stream_descriptor descriptor;
  std::function<void()> readable;
  bool stopped = false;
};

// Until the watch ends: each time the descriptor is readable, the callback
// (noexcept by contract), then wait again.
asio::awaitable<void> watch_loop(std::shared_ptr<watched> w) {
  while (!w->stopped) {
    const auto [error] = co_await w->descriptor.async_wait(
        asio::posix::stream_descriptor::wait_read, asio::experimental::as_tuple(asio::use_awaitable));
    if (error || w->stopped) co_return;
    w->readable();
  }
}

class loop_watch final : public watch {
 public:
  explicit loop_watch(std::shared_ptr<watched> w) : w_(std::move(w)) {}
  // The plugin owns the descriptor: released, never closed. The wait in
  // progress completes with operation_aborted and calls nothing.
  ~loop_watch() override {
    w_->stopped = true;
    std::error_code ignored;
    w_->descriptor.cancel(ignored);
    w_->descriptor.release();
  }

 private:
  std::shared_ptr<watched> w_;
};

}  // namespace

// nullptr when there is no memory for it, or epoll refuses the descriptor.
std::unique_ptr<watch> loop_watcher::watch_readable(int fd, std::function<void()> readable) noexcept {
  return guarded([](std::string_view) { return std::unique_ptr<watch>(); },
                 [&]() -> std::unique_ptr<watch> {
                   auto w = std::make_shared<watched>(io_, fd, std::move(readable));
                   auto handle = std::make_unique<loop_watch>(w);
                   asio::co_spawn(io_, watch_loop(w), asio::detached);
                   return handle;
                 });
}

}  // namespace pickleway
