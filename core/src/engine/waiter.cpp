#include "engine/waiter.hpp"

#include <fcntl.h>

namespace pickleway {

void waiter::wait(int fd, bool writable, std::function<void(std::error_code)> done) {
  auto& d = fds_[fd];
  if (!d) d = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  d->async_wait(writable ? asio::posix::stream_descriptor::wait_write
                         : asio::posix::stream_descriptor::wait_read,
                [done = std::move(done)](const std::error_code& e) { done(e); });
}

void waiter::forget_closed() {
  for (auto it = fds_.begin(); it != fds_.end();) {
    if (::fcntl(it->first, F_GETFD) < 0) {
      it->second->release();
      it = fds_.erase(it);
    } else {
      ++it;
    }
  }
}

void waiter::forget_all() {
  for (auto& [fd, d] : fds_) {
    std::error_code ignored;
    d->cancel(ignored);
    d->release();
  }
  fds_.clear();
}

}  // namespace pickleway
