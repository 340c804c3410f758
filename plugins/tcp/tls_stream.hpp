// TLS over a connected non-blocking socket, with OpenSSL driven directly:
// SSL_set_fd, then SSL_do_handshake / SSL_read_ex / SSL_write_ex, each
// SSL_ERROR_WANT_READ or WANT_WRITE becoming a wait the core's event loop
// does (an open_step::wait_for, an io_result::blocked on the socket).
//
// Why not Asio's ssl::stream: plugins hand the core plain non-blocking
// streams that its one event loop waits on, and must not share Asio state
// (an io_context, its services) across the library boundary. OpenSSL on
// the descriptor needs neither.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>

#include <pickleway/fd_stream.hpp>
#include <pickleway/transport.hpp>

#include "tls_context.hpp"

namespace pickleway::tls {

struct ssl_free {
  void operator()(SSL* s) const { SSL_free(s); }
};
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;

// The stream of an established TLS connection.
//
// Reads: SSL_read_ex returns decrypted bytes a record at a time; what a
// record holds beyond the read's buffer stays in OpenSSL (SSL_pending), and
// the core reads again before it waits (it waits only after would_block,
// which OpenSSL gives only once it has nothing decrypted left), so no byte
// is stranded while the core waits on the socket. Without read-ahead
// OpenSSL takes from the socket no more than the record it decrypts.
// The peer's close_notify reads as EOF; a FIN without it as an error
// (stream_errc::truncated): the stream may have been cut by an attacker.
//
// Writes: partial writes are on, and a retried write may come from another
// address (the core's buffer may move), so OpenSSL holds at most one record
// of ours, besides the socket's own buffer.
//
// Half-close: close_write() sends close_notify (SSL_shutdown, once), then
// shuts the socket's writing side; reading goes on, in TLS 1.3 and 1.2
// alike (OpenSSL reads a peer's data after its own close_notify).
class stream final : public byte_stream {
 public:
  stream(ssl_ptr ssl, unique_fd fd, std::string peer);
  ~stream() override;  // no close_notify: an instance that did not end cleanly reads as cut short

  io_result read(std::span<std::uint8_t> into) noexcept override;
  io_result write(std::span<const std::uint8_t> from) noexcept override;
  std::error_code close_write() noexcept override;
  std::string peer() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&] { return peer_; });
  }

 private:
  // Sends close_notify; true once it is out and the socket is shut for
  // writing.
  bool finish_shutdown(std::error_code& error);

  ssl_ptr ssl_;
  unique_fd fd_;
  std::string peer_;
  bool closing_ = false;  // close_write() was called, close_notify still to go out
};

// The opener of one TLS connection on a connected socket: the handshake,
// as client (connect) or server (accepted), within the context's timeout.
// A failure is final and says why: the certificate's verify error
// ("certificate verify failed: hostname mismatch"), an alert, the peer's
// close, the timeout.
class handshake final : public opener {
 public:
  handshake(std::shared_ptr<const context> ctx, unique_fd fd, std::string peer);
  open_step step(bool timed_out) noexcept override;

 private:
  open_step step_on(bool timed_out);
  open_step fail(const std::string& why);

  std::shared_ptr<const context> ctx_;
  unique_fd fd_;
  std::string peer_;
  ssl_ptr ssl_;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace pickleway::tls
