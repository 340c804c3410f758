#include "tls_context.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace pickleway::tls {

const option_spec options[6] = {
    {"cert", option_type::string, false, "certificate chain file (PEM), this side's"},
    {"key", option_type::string, false, "private key file (PEM) of `cert`"},
    {"ca", option_type::string, false,
     "CA file or directory to verify the peer with (connect: default the system's; listen: "
     "naming it asks clients for certificates)"},
    {"verify_peer", option_type::boolean, false,
     "connect: verify the server's certificate and name (default true); listen: require a "
     "client certificate that verifies against `ca` (default true with a `ca`; false takes "
     "clients without one too)"},
    {"server_name", option_type::string, false,
     "connect: name to verify the server as, and to send as SNI (default: the host of connect)"},
    {.name = "timeout_ms",
     .type = option_type::integer,
     .help = "longest TLS handshake, in milliseconds",
     .default_value = "10000"},
};

std::string take_errors(const std::string& fallback) {
  // The queue holds the root cause first, then the calls that met it; the
  // generic ones ("system lib", "PEM lib") say only that a cause is there.
  std::vector<std::string> reasons;
  while (const unsigned long e = ERR_get_error()) {
    std::string reason;
    if (ERR_SYSTEM_ERROR(e)) {
      reason = std::system_category().message(static_cast<int>(ERR_GET_REASON(e)));
    } else if (const char* r = ERR_reason_error_string(e)) {
      reason = r;
    } else {
      char buffer[256];
      ERR_error_string_n(e, buffer, sizeof buffer);
      reason = buffer;
    }
    if (reason == "system lib" || reason == "PEM lib") continue;
    bool seen = false;
    for (const auto& r : reasons) seen = seen || r == reason;
    if (!seen) reasons.push_back(std::move(reason));
  }
  if (reasons.empty()) return fallback;
  std::string out;
  for (const auto& r : reasons) out += (out.empty() ? "" : "; ") + r;
  return out;
}

namespace {

class stream_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int code) const override {
    if (code == static_cast<int>(stream_errc::truncated))
      return "the peer closed without TLS close_notify (the stream may be cut short)";
    if (code == static_cast<int>(stream_errc::broken))
      return "the TLS connection has already failed";
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(code));
    return std::string("TLS: ") + (reason ? reason : "error " + std::to_string(code));
  }
};

const stream_category& category() {
  static const stream_category c;
  return c;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

// "" when `path` is a file (or, for a CA, a directory) that can be read;
// else why not, as the system says it.
std::string unreadable(const std::string& path, bool directory_ok) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec) return ec.message();
  if (std::filesystem::is_directory(status) && !directory_ok) return "it is a directory";
  if (!std::filesystem::exists(status)) return std::strerror(ENOENT);
  return {};
}

}  // namespace

std::error_code make_error_code(stream_errc e) { return {static_cast<int>(e), category()}; }

std::error_code take_error_code(std::error_code otherwise) {
  const unsigned long first = ERR_peek_error();
  std::error_code out = otherwise;
  if (first != 0) {
    out = ERR_SYSTEM_ERROR(first)
              ? std::error_code(static_cast<int>(ERR_GET_REASON(first)), std::system_category())
              : std::error_code(static_cast<int>(ERR_PACK(ERR_GET_LIB(first), 0,
                                                          ERR_GET_REASON(first))),
                                category());
  }
  ERR_clear_error();
  return out;
}

std::shared_ptr<const context> context::make(const option_values& tls, bool listens,
                                             const std::string& connect_host,
                                             option_error& error) {
  // Each message starts with the option it is about ("tls.cert: ..."), or
  // with "tls" for the map as a whole; the core locates "tls.cert" at its
  // key inside the map.
  const auto refuse = [&](std::string message) {
    const bool inner = message.starts_with("tls.");
    std::string option = inner ? message.substr(0, message.find_first_of(" :")) : "tls";
    error = {std::move(option), std::move(message)};
    return nullptr;
  };
  const auto cert = tls.get_string("cert");
  const auto key = tls.get_string("key");
  const auto ca = tls.get_string("ca");
  const auto verify_peer = tls.get_boolean("verify_peer");
  const auto server_name = tls.get_string("server_name");
  const std::int64_t timeout = *tls.get_integer("timeout_ms");

  if (listens) {
    if (!cert) return refuse("tls on a listener needs `cert` and `key`: its certificate");
    if (verify_peer == true && !ca)
      return refuse("tls.verify_peer: a listener verifies client certificates against its `ca`, "
                    "and names none");
    if (server_name) return refuse("tls.server_name applies to 'connect' only");
  } else if (verify_peer == false && ca) {
    return refuse("tls.ca is not used when verify_peer is false; remove one of them");
  }
  if (cert && !key) return refuse("tls: `cert` needs its `key`");
  if (key && !cert) return refuse("tls.key needs its `cert`");
  if (server_name && server_name->empty())
    return refuse("tls.server_name is empty");
  if (timeout < 1 || timeout > 3'600'000)
    return refuse("tls.timeout_ms must be from 1 to 3600000");

  ERR_clear_error();
  auto made = std::make_shared<context>();
  made->ctx_.reset(SSL_CTX_new(listens ? TLS_server_method() : TLS_client_method()));
  SSL_CTX* const ctx = made->ctx_.get();
  if (!ctx) return refuse("tls: cannot make a TLS context: " + take_errors("out of memory"));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
  // Nothing resumes sessions: no cache either (a server's cache without a
  // session id context would fail a client that offers an old session id).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // The core may retry a write with the same bytes at another address (its
  // buffer moved), and takes partial writes like a socket's.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  if (cert) {
    if (const auto why = unreadable(*cert, false); !why.empty())
      return refuse("tls.cert: cannot load " + *cert + ": " + why);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert->c_str()) != 1)
      return refuse("tls.cert: cannot load " + *cert + ": " +
                                take_errors("not a PEM certificate"));
    if (const auto why = unreadable(*key, false); !why.empty())
      return refuse("tls.key: cannot load " + *key + ": " + why);
    const bool loaded = SSL_CTX_use_PrivateKey_file(ctx, key->c_str(), SSL_FILETYPE_PEM) == 1;
    const int why_not = ERR_GET_REASON(ERR_peek_last_error());
    if (!loaded && why_not != X509_R_KEY_VALUES_MISMATCH && why_not != X509_R_KEY_TYPE_MISMATCH)
      return refuse("tls.key: cannot load " + *key + ": " + take_errors("not a PEM private key"));
    if (!loaded || SSL_CTX_check_private_key(ctx) != 1)
      return refuse("tls.key: " + *key + " is not the key of the certificate in " + *cert + ": " +
                    take_errors("they do not match"));
  }
  if (ca) {
    if (const auto why = unreadable(*ca, true); !why.empty())
      return refuse("tls.ca: cannot load " + *ca + ": " + why);
    const bool directory = std::filesystem::is_directory(*ca);
    if (SSL_CTX_load_verify_locations(ctx, directory ? nullptr : ca->c_str(),
                                      directory ? ca->c_str() : nullptr) != 1)
      return refuse("tls.ca: cannot load " + *ca + ": " +
                              take_errors("no PEM certificate in it"));
    made->ca_ = *ca;
  }

  made->listens_ = listens;
  made->timeout_ = std::chrono::milliseconds(timeout);
  if (listens) {
    made->verify_peer_ = ca && verify_peer.value_or(true);
    if (ca) {
      // Clients are asked for a certificate, and the CAs accepted are named
      // to them (a file's; a directory's are not listed). One that sends a
      // certificate must send one that verifies; with verify_peer false a
      // client may also send none.
      SSL_CTX_set_verify(ctx,
                         made->verify_peer_ ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                            : SSL_VERIFY_PEER,
                         nullptr);
      if (!std::filesystem::is_directory(*ca))
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca->c_str()))
          SSL_CTX_set_client_CA_list(ctx, names);
    } else {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
  } else {
    made->verify_peer_ = verify_peer.value_or(true);
    SSL_CTX_set_verify(ctx, made->verify_peer_ ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (made->verify_peer_ && !ca && SSL_CTX_set_default_verify_paths(ctx) != 1)
      return refuse("tls: cannot load the system's CA certificates: " +
                            take_errors("unknown reason") + " (name a `ca`)");
    made->server_name_ = server_name.value_or(connect_host);
    made->server_name_is_ip_ = is_ip_literal(made->server_name_);
  }
  ERR_clear_error();
  return made;
}

std::string context::describe() const {
  if (listens_) {
    if (ca_.empty()) return "tls";
    return verify_peer_ ? "mutual tls, client certificates from " + ca_
                        : "tls, client certificates from " + ca_ + " asked for, not required";
  }
  if (!verify_peer_) return "tls without verifying the server";
  return "tls, verifying the server as " + server_name_ +
         (ca_.empty() ? " against the system's CAs" : " against " + ca_);
}

}  // namespace pickleway::tls
