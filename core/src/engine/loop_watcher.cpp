#include "engine/loop_watcher.hpp"

#include <asio/posix/stream_descriptor.hpp>

#include "pickleway/guarded.hpp"

namespace pickleway {
namespace {

// What a watch and its pending wait share: the wait's handler holds it,
// so a callback may destroy its own watch.
struct watched {
  watched(asio::io_context& io, int fd, std::function<void()> r)
      : descriptor(io, fd), readable(std::move(r)) {}
  asio::posix::stream_descriptor descriptor;
  std::function<void()> readable;
  bool stopped = false;
};

// Waits again after each callback. A wait the loop has no memory for
// leaves the watch stopped: the plugin's destructor still reads what is left.
void arm(const std::shared_ptr<watched>& w) noexcept {
  guarded([&](std::string_view) { w->stopped = true; },
          [&] {
            w->descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                                     [w](const std::error_code& error) {
                                       if (error || w->stopped) return;
                                       w->readable();  // noexcept by contract
                                       if (!w->stopped) arm(w);
                                     });
          });
}

class loop_watch final : public watch {
 public:
  explicit loop_watch(std::shared_ptr<watched> w) : w_(std::move(w)) {}
  // The plugin owns the descriptor: released, never closed. A wait still
  // pending completes with operation_aborted and calls nothing.
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
                   arm(w);
                   return handle;
                 });
}

}  // namespace pickleway
