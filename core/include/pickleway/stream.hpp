// A byte stream a transport opened: what the core's session reads from and
// writes to.
//
// Streams are non-blocking and expose the descriptors to wait on, so the
// core's one event loop drives every transport alike, and plugins need no
// Asio (nor share its state across library boundaries). Every call is made
// from the core's event loop thread and must not block. Every call is
// noexcept and returns its error (io_status::failed, an error_code): no
// exception crosses the plugin boundary (guarded.hpp wraps a body that can
// throw). A failure ends its instance; nothing else is harmed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>

namespace pickleway {

enum class io_status : std::uint8_t {
  done,         // `bytes` moved (> 0)
  would_block,  // wait until `wait_handle` is ready for `wait_writable`
  eof,          // read: the peer closed its writing side
  failed,       // `error` says why
};

struct io_result {
  io_status status = io_status::done;
  std::size_t bytes = 0;
  std::error_code error;
  // For would_block: what to wait on. A TLS stream may need to write in
  // order to read, hence not always the call's own direction.
  // For done, from read(): -1, or the descriptor to wait on (readable)
  // when the read drained it, so that the next read would block: a short
  // read from a pipe, FIFO or stream socket (epoll(7)). The caller may wait
  // at once and spare the read that would only say so.
  int wait_handle = -1;
  bool wait_writable = false;

  static io_result moved(std::size_t n) { return {io_status::done, n, {}, -1, false}; }
  static io_result drained(std::size_t n, int handle) {
    return {io_status::done, n, {}, handle, false};
  }
  static io_result blocked(int handle, bool writable) {
    return {io_status::would_block, 0, {}, handle, writable};
  }
  static io_result end() { return {io_status::eof, 0, {}, -1, false}; }
  static io_result failure(std::error_code e) { return {io_status::failed, 0, e, -1, false}; }
};

// A child process behind a stream (spawn): its exit is part of the
// session's outcome, and shutdown must end it.
class child_process {
 public:
  virtual ~child_process() = default;
  // Readable once the child has exited (a pidfd).
  virtual int exit_handle() const noexcept = 0;
  // After exit_handle() became readable: reaps the child; "" for a clean
  // exit (status 0), else why not ("exited with status 3", "killed by
  // SIGKILL"). Until the child has exited: nullopt.
  virtual std::optional<std::string> reap() noexcept = 0;
  virtual void terminate() noexcept = 0;  // SIGTERM
  virtual void kill() noexcept = 0;       // SIGKILL
};

class byte_stream {
 public:
  virtual ~byte_stream() = default;  // closes whatever is still open

  // Reads at most into.size() bytes.
  virtual io_result read(std::span<std::uint8_t> into) noexcept = 0;
  // Writes at most from.size() bytes.
  virtual io_result write(std::span<const std::uint8_t> from) noexcept = 0;
  // No more writes: the peer reads EOF (shutdown(SHUT_WR), or the write
  // pipe closed). Reading goes on.
  virtual std::error_code close_write() noexcept = 0;

  // Which directions exist: a FIFO endpoint may have only one.
  virtual bool can_read() const noexcept { return true; }
  virtual bool can_write() const noexcept { return true; }

  // The child behind the stream, if any; owned by the stream.
  virtual child_process* child() noexcept { return nullptr; }

  // For messages: "pid 1234", "127.0.0.1:40312", "/run/x.sock"; empty
  // when unknown (or there is no memory to say).
  virtual std::string peer() const noexcept { return {}; }

  // For a stream whose source wants to hear what became of its messages
  // (a broker's entries, acknowledged once handled):
  // `messages` read from this stream so far have been written whole to the
  // other endpoint, or dropped by a filter. Called as that count grows.
  virtual void delivered(std::uint64_t messages) noexcept { (void)messages; }
  // SIGTERM: take nothing new; a stream that then ends by itself, once
  // what it took is handled (its reads reach EOF), returns true, and the
  // instance waits for that (up to the grace period) instead of closing it.
  virtual bool drain() noexcept { return false; }
  // Before the instance closes the stream, once both directions ended:
  // done (io_status::done) when nothing the stream took is still on its
  // way (a broker's unconfirmed additions and acknowledgements), else
  // would_block with what to wait on, or failed.
  virtual io_result settle() noexcept { return io_result::moved(0); }
  // Messages this stream read that had been given out before (a broker's
  // redeliveries), for the summary line and the metrics.
  virtual std::uint64_t redeliveries() const noexcept { return 0; }
};

}  // namespace pickleway
