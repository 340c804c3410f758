#include "engine/waiter.hpp"

#include <fcntl.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

namespace pickleway {

asio::awaitable<std::error_code> waiter::wait(int fd, bool writable) {
  auto& d = fds_[fd];
  if (!d) d = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  const auto [error] = co_await d->async_wait(writable ? asio::posix::stream_descriptor::wait_write
                                                       : asio::posix::stream_descriptor::wait_read,
                                              asio::experimental::as_tuple(asio::use_awaitable));
  co_return error;
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
