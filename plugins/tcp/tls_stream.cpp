#include "tls_stream.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <memory>

namespace pickleway::tls {
namespace {

// ---- The socket under OpenSSL
//
// OpenSSL's own socket BIO writes with write(2), and a peer that went away
// would raise SIGPIPE in whatever process loaded the plugin. This BIO sends
// with MSG_NOSIGNAL instead (as fd_stream does), so that is an error on the
// stream, never a signal. The descriptor stays owned by the stream.

int socket_of(BIO* b) { return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(b))); }

int bio_write(BIO* b, const char* data, std::size_t size, std::size_t* written) {
  BIO_clear_retry_flags(b);
  for (;;) {
    const ssize_t n = ::send(socket_of(b), data, size, MSG_NOSIGNAL);
    if (n >= 0) {
      *written = static_cast<std::size_t>(n);
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
    return 0;
  }
}

int bio_read(BIO* b, char* data, std::size_t size, std::size_t* read) {
  BIO_clear_retry_flags(b);
  for (;;) {
    const ssize_t n = ::recv(socket_of(b), data, size, 0);
    if (n > 0) {
      *read = static_cast<std::size_t>(n);
      return 1;
    }
    if (n == 0) {
      BIO_set_flags(b, BIO_FLAGS_IN_EOF);  // OpenSSL tells a FIN from an error by this
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
    return 0;
  }
}

long bio_ctrl(BIO* b, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is held here
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
      return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

// Made once; freed when the library is unloaded at exit (the core unloads
// plugins only then, after every stream is gone).
const BIO_METHOD* socket_method() {
  struct method_free {
    void operator()(BIO_METHOD* m) const { BIO_meth_free(m); }
  };
  static const std::unique_ptr<BIO_METHOD, method_free> method = [] {
    BIO_METHOD* m =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pickleway tls socket");
    if (!m) return std::unique_ptr<BIO_METHOD, method_free>();
    BIO_meth_set_write_ex(m, bio_write);
    BIO_meth_set_read_ex(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return std::unique_ptr<BIO_METHOD, method_free>(m);
  }();
  return method.get();
}

// A BIO on `fd`, not owning it; nullptr if OpenSSL cannot make one.
BIO* socket_bio(int fd) {
  const BIO_METHOD* method = socket_method();
  BIO* b = method ? BIO_new(method) : nullptr;
  if (b) BIO_set_data(b, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
  return b;
}

// What a failed SSL call (SSL_get_error's `code`) means for a read or a
// write; `otherwise` when OpenSSL says nothing more.
std::error_code failure_of(int code, stream_errc otherwise) {
  if (code == SSL_ERROR_SYSCALL) {
    // OpenSSL 3 reports an EOF that came without close_notify as
    // SSL_ERROR_SSL (below); SYSCALL with errno is the socket's own error.
    const int error = errno;
    return take_error_code(error != 0 ? std::error_code(error, std::system_category())
                                      : make_error_code(otherwise));
  }
  if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    ERR_clear_error();
    return make_error_code(stream_errc::truncated);
  }
  return take_error_code(make_error_code(otherwise));
}

}  // namespace

// ---- The stream

stream::stream(ssl_ptr ssl, unique_fd fd, std::string peer)
    : ssl_(std::move(ssl)), fd_(std::move(fd)), peer_(std::move(peer)) {}

stream::~stream() {
  // A close_notify that was waiting for room gets a last chance; no other.
  if (closing_) {
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
}

io_result stream::read(std::span<std::uint8_t> into) noexcept {
  if (closing_) {
    std::error_code error;
    if (!finish_shutdown(error)) {
      if (error) return io_result::failure(error);
      // The close_notify goes out first: the peer may wait for it before
      // it sends what this read is for.
      return io_result::blocked(fd_.get(), true);
    }
  }
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  if (SSL_read_ex(ssl_.get(), into.data(), into.size(), &n) == 1) return io_result::moved(n);
  const int code = SSL_get_error(ssl_.get(), 0);
  switch (code) {
    case SSL_ERROR_WANT_READ:
      return io_result::blocked(fd_.get(), false);
    case SSL_ERROR_WANT_WRITE:
      return io_result::blocked(fd_.get(), true);
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      return io_result::end();
    default:
      return io_result::failure(failure_of(code, stream_errc::truncated));
  }
}

io_result stream::write(std::span<const std::uint8_t> from) noexcept {
  if (from.empty()) return io_result::moved(0);
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  if (SSL_write_ex(ssl_.get(), from.data(), from.size(), &n) == 1) return io_result::moved(n);
  const int code = SSL_get_error(ssl_.get(), 0);
  switch (code) {
    case SSL_ERROR_WANT_READ:
      return io_result::blocked(fd_.get(), false);
    case SSL_ERROR_WANT_WRITE:
      return io_result::blocked(fd_.get(), true);
    default:
      return io_result::failure(failure_of(code, stream_errc::broken));
  }
}

std::error_code stream::close_write() noexcept {
  if (closing_) return {};
  closing_ = true;
  std::error_code error;
  finish_shutdown(error);
  return error;
}

bool stream::finish_shutdown(std::error_code& error) {
  ERR_clear_error();
  errno = 0;
  // Once: 0 when close_notify went out (the peer's is yet to come), 1 when
  // the peer's had come already. Called again only while it is pending,
  // which sends it and reads nothing.
  const int r = SSL_shutdown(ssl_.get());
  if (r < 0) {
    const int code = SSL_get_error(ssl_.get(), r);
    if (code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_WANT_READ) return false;
    closing_ = false;
    error = failure_of(code, stream_errc::broken);
    return false;
  }
  closing_ = false;
  if (::shutdown(fd_.get(), SHUT_WR) < 0 && errno != ENOTCONN) error = last_error();
  return true;
}

// ---- The handshake

handshake::handshake(std::shared_ptr<const context> ctx, unique_fd fd, std::string peer)
    : ctx_(std::move(ctx)), fd_(std::move(fd)), peer_(std::move(peer)) {}

open_step handshake::fail(const std::string& why) {
  return open_step::fail("TLS handshake with " + peer_ + " failed: " + why);
}

open_step handshake::step(bool timed_out) noexcept {
  return guarded([](std::string_view why) { return open_step::fail(std::string(why)); },
                 [&] { return step_on(timed_out); });
}

open_step handshake::step_on(bool timed_out) {
  const auto now = std::chrono::steady_clock::now();
  if (!ssl_) {
    ERR_clear_error();
    ssl_.reset(SSL_new(ctx_->get()));
    BIO* bio = ssl_ ? socket_bio(fd_.get()) : nullptr;
    if (!bio) return fail(take_errors("cannot start TLS"));
    SSL_set_bio(ssl_.get(), bio, bio);
    if (ctx_->listens()) {
      SSL_set_accept_state(ssl_.get());
    } else {
      SSL_set_connect_state(ssl_.get());
      const std::string& name = ctx_->server_name();
      // SNI carries a host name, never an address (RFC 6066). This is
      // SSL_set_tlsext_host_name, a macro with a C cast.
      if (!ctx_->server_name_is_ip() &&
          SSL_ctrl(ssl_.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                   const_cast<char*>(name.c_str())) != 1)
        return fail("cannot send the server name " + name + ": " + take_errors("refused"));
      if (ctx_->verifies_peer()) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
        const int set = ctx_->server_name_is_ip()
                            ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                            : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
        if (set != 1)
          return fail("cannot verify the server as " + name + ": " + take_errors("refused"));
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      }
    }
    deadline_ = now + ctx_->handshake_timeout();
  }
  if (timed_out || now >= deadline_)
    return fail("timed out after " + std::to_string(ctx_->handshake_timeout().count()) +
                " ms (tls.timeout_ms)");

  ERR_clear_error();
  errno = 0;
  const int r = SSL_do_handshake(ssl_.get());
  if (r == 1)
    return open_step::ready(std::make_unique<stream>(std::move(ssl_), std::move(fd_), peer_));
  const int code = SSL_get_error(ssl_.get(), r);
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - now);
  switch (code) {
    case SSL_ERROR_WANT_READ:
      return open_step::wait_for(fd_.get(), false, left);
    case SSL_ERROR_WANT_WRITE:
      return open_step::wait_for(fd_.get(), true, left);
    case SSL_ERROR_ZERO_RETURN:
      return fail("the peer closed TLS during the handshake");
    case SSL_ERROR_SYSCALL:
      if (errno != 0) return fail(std::system_category().message(errno));
      return fail(take_errors("the peer closed the connection"));
    default:
      break;
  }
  // The peer's certificate, when this side checks one, is the likeliest
  // cause: say what was wrong with it.
  const long verified = SSL_get_verify_result(ssl_.get());
  if (verified != X509_V_OK) {
    ERR_clear_error();
    return fail(std::string("certificate verify failed: ") +
                X509_verify_cert_error_string(verified));
  }
  if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    ERR_clear_error();
    return fail("the peer closed the connection");
  }
  return fail(take_errors("unknown error"));
}

}  // namespace pickleway::tls
