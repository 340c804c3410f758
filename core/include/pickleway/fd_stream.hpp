// A byte_stream over POSIX file descriptors: pipes, FIFOs and sockets.
//
// Header-only so that transport plugins, bundled or out of tree, share it
// without linking the core. A stream has a descriptor to read and one to
// write; they are the same for a socket.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>

#include "pickleway/guarded.hpp"
#include "pickleway/stream.hpp"

namespace pickleway {

// An owned file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

inline std::error_code last_error() { return {errno, std::system_category()}; }

inline std::error_code set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return last_error();
  return {};
}

class fd_stream : public byte_stream {
 public:
  // A socket: one descriptor both ways; close_write() shuts down its
  // writing side.
  static std::unique_ptr<fd_stream> socket(unique_fd fd, std::string peer) {
    auto s = std::make_unique<fd_stream>();
    s->read_ = std::move(fd);
    s->socket_ = true;
    s->short_read_drains_ = true;
    s->peer_ = std::move(peer);
    return s;
  }
  // Pipes or FIFOs: either may be absent (-1) for a one-way endpoint;
  // close_write() closes the write descriptor.
  static std::unique_ptr<fd_stream> pipes(unique_fd read, unique_fd write, std::string peer) {
    auto s = std::make_unique<fd_stream>();
    s->read_ = std::move(read);
    s->write_ = std::move(write);
    s->peer_ = std::move(peer);
    // Not for a regular file (stdin redirected from one), which is never
    // waited on: its reads do not block, and epoll refuses it.
    struct stat st {};
    s->short_read_drains_ = s->read_ && ::fstat(s->read_.get(), &st) == 0 &&
                            (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
    return s;
  }

  io_result read(std::span<std::uint8_t> into) noexcept override {
    for (;;) {
      const ssize_t n = ::read(read_.get(), into.data(), into.size());
      if (n > 0) {
        const auto got = static_cast<std::size_t>(n);
        if (got < into.size() && short_read_drains_) return io_result::drained(got, read_.get());
        return io_result::moved(got);
      }
      if (n == 0) return io_result::end();
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return io_result::blocked(read_.get(), false);
      return io_result::failure(last_error());
    }
  }

  io_result write(std::span<const std::uint8_t> from) noexcept override {
    const int fd = write_fd();
    for (;;) {
      // MSG_NOSIGNAL: a peer that went away is an error, not SIGPIPE.
      const ssize_t n = socket_ ? ::send(fd, from.data(), from.size(), MSG_NOSIGNAL)
                                : ::write(fd, from.data(), from.size());
      if (n >= 0) return io_result::moved(static_cast<std::size_t>(n));
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return io_result::blocked(fd, true);
      return io_result::failure(last_error());
    }
  }

  std::error_code close_write() noexcept override {
    if (socket_) {
      if (::shutdown(read_.get(), SHUT_WR) < 0 && errno != ENOTCONN) return last_error();
      return {};
    }
    write_.reset();
    return {};
  }

  bool can_read() const noexcept override { return static_cast<bool>(read_); }
  bool can_write() const noexcept override { return socket_ || static_cast<bool>(write_); }
  std::string peer() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&] { return peer_; });
  }

 private:
  int write_fd() const { return socket_ ? read_.get() : write_.get(); }

  unique_fd read_;
  unique_fd write_;
  bool socket_ = false;
  bool short_read_drains_ = false;  // a pipe, FIFO or stream socket
  std::string peer_;
};

}  // namespace pickleway
