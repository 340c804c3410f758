#include "engine/loop_watcher.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/use_awaitable.hpp>

#include "pickleway/guarded.hpp"

namespace pickleway {
namespace {

// What a watch and its coroutines share: they hold it, so a callback may
// destroy its own watch. One Asio descriptor serves both ways (epoll takes
// an fd once); each way that is wanted has one coroutine waiting on it.
struct watched {
  struct way {
    std::function<void()> ready;
    bool wanted = false;
    bool waiting = false;  // its coroutine is running
  };
  watched(asio::io_context& io, int fd, std::function<void()> r, std::function<void()> w)
      : descriptor(io, fd) {
    read.ready = std::move(r);
    write.ready = std::move(w);
  }
  asio::posix::stream_descriptor descriptor;
  way read, write;
  bool stopped = false;
};

// While the way is wanted: each time the descriptor is ready that way, the
// callback (noexcept by contract), then wait again.
asio::awaitable<void> watch_loop(std::shared_ptr<watched> w, bool writing) {
  watched::way& way = writing ? w->write : w->read;
  while (!w->stopped && way.wanted) {
    const auto [error] = co_await w->descriptor.async_wait(
        writing ? asio::posix::stream_descriptor::wait_write : asio::posix::stream_descriptor::wait_read,
        asio::experimental::as_tuple(asio::use_awaitable));
    if (error || w->stopped) break;
    if (way.wanted) way.ready();
  }
  way.waiting = false;
}

class loop_watch final : public socket_watch {
 public:
  loop_watch(asio::io_context& io, std::shared_ptr<watched> w) : io_(io), w_(std::move(w)) {}
  // The plugin owns the descriptor: released, never closed. The waits in
  // progress complete with operation_aborted and call nothing.
  ~loop_watch() override {
    w_->stopped = true;
    std::error_code ignored;
    w_->descriptor.cancel(ignored);
    w_->descriptor.release();
  }
  void want_readable(bool on) noexcept override { want(w_->read, on, false); }
  void want_writable(bool on) noexcept override { want(w_->write, on, true); }

 private:
  // A way no longer wanted keeps its wait until the descriptor is ready
  // (Asio cancels both ways or neither), and then calls nothing.
  void want(watched::way& way, bool on, bool writing) noexcept {
    way.wanted = on;
    if (!on || way.waiting) return;
    guarded([](std::string_view) {},
            [&] {
              asio::co_spawn(io_, watch_loop(w_, writing), asio::detached);
              way.waiting = true;
            });
  }

  asio::io_context& io_;
  std::shared_ptr<watched> w_;
};

}  // namespace

// nullptr when there is no memory for it, or epoll refuses the descriptor.
std::unique_ptr<socket_watch> loop_watcher::watch_socket(int fd, std::function<void()> readable,
                                                         std::function<void()> writable) noexcept {
  return guarded([](std::string_view) { return std::unique_ptr<socket_watch>(); },
                 [&]() -> std::unique_ptr<socket_watch> {
                   auto w = std::make_shared<watched>(io_, fd, std::move(readable), std::move(writable));
                   return std::make_unique<loop_watch>(io_, w);
                 });
}

std::unique_ptr<watch> loop_watcher::watch_readable(int fd, std::function<void()> readable) noexcept {
  std::unique_ptr<socket_watch> w = watch_socket(fd, std::move(readable), [] {});
  if (w) w->want_readable(true);
  return w;
}

}  // namespace pickleway
