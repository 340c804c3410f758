// The `tls` option of a tcp endpoint, made into an OpenSSL context once, at
// config time (so `pickleway check` loads every file), and shared by every
// connection the endpoint makes.
//
//   connector: verify_peer (default true) checks the server's chain against
//              `ca` (a PEM file or a hashed directory; the system's default
//              CA paths when none is named) and its name against
//              `server_name` (default: the host of `connect`; an IP literal
//              is matched against the certificate's IP addresses). The name
//              is also sent as SNI, unless it is an IP literal. `cert` and
//              `key` give a client certificate, for mutual TLS.
//   listener:  `cert` and `key` are required; naming `ca` makes TLS mutual:
//              a client must present a certificate that verifies against it
//              (verify_peer, default true with a `ca`, a config error
//              without one). verify_peer false with a `ca` asks for a
//              certificate, checks one that comes, and takes a client
//              that sends none.
//
// Both: TLS 1.2 or newer, no renegotiation, no session tickets (nothing
// resumes sessions), `timeout_ms` for the whole handshake.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>

#include <pickleway/options.hpp>

namespace pickleway::tls {

// The options of the `tls` section, for the tcp plugin's schema.
extern const option_spec options[6];

class context {
 public:
  // Made from the `tls` section of a tcp endpoint; `connect_host` is the
  // host of `connect` (empty for a listener). nullptr with `error` (at
  // "tls", its message naming the option: "tls.cert: cannot load ...")
  // when a file does not load or options clash.
  static std::shared_ptr<const context> make(const option_values& tls, bool listens,
                                             const std::string& connect_host,
                                             option_error& error);

  SSL_CTX* get() const { return ctx_.get(); }
  bool listens() const { return listens_; }
  bool verifies_peer() const { return verify_peer_; }
  // The name the server must have (connector with verify_peer), and
  // whether it is an IP address.
  const std::string& server_name() const { return server_name_; }
  bool server_name_is_ip() const { return server_name_is_ip_; }
  std::chrono::milliseconds handshake_timeout() const { return timeout_; }
  // For `pickleway check`: "tls, verifying the server as localhost".
  std::string describe() const;

 private:
  struct ctx_free {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };
  std::unique_ptr<SSL_CTX, ctx_free> ctx_;
  bool listens_ = false;
  bool verify_peer_ = false;  // connector: the server; listener: a client certificate required
  std::string server_name_;
  bool server_name_is_ip_ = false;
  std::string ca_;
  std::chrono::milliseconds timeout_{};
};

// OpenSSL's error queue as one line of text, root cause first, and
// emptied; `fallback` when it held nothing.
std::string take_errors(const std::string& fallback);

// Errors of a TLS stream, for the core's messages ("read failed: ...").
enum class stream_errc {
  truncated = 1,  // a TCP FIN without close_notify
  broken,         // a call after the connection failed (an alert, an error already reported)
};
// An error_code for the first error on OpenSSL's queue (a system error as
// its errno), emptying the queue; `otherwise` when the queue is empty.
std::error_code take_error_code(std::error_code otherwise);
std::error_code make_error_code(stream_errc e);

}  // namespace pickleway::tls
