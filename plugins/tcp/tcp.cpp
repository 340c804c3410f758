// The `tcp` transport: `listen: HOST:PORT` or `connect: HOST:PORT`, over
// IPv4 or IPv6 ("[::1]:7000"), the connector retrying with backoff; with
// `tls`, each connection is TLS 1.2+ (tls_context.hpp says what the options
// mean, tls_stream.hpp how it runs).
#include <netdb.h>

#include <pickleway/fd_stream.hpp>
#include <pickleway/plugin.hpp>

#include "../common/socket_endpoint.hpp"
#include "tls_context.hpp"
#include "tls_stream.hpp"

namespace {

using namespace pickleway;
using sockets::address;

constexpr option_spec tcp_options[] = {
    {"listen", option_type::address, false, "HOST:PORT to accept connections on"},
    {"connect", option_type::address, false, "HOST:PORT to connect to"},
    {.name = "retry",
     .type = option_type::section,
     .help = "connect: {initial_ms, max_ms, attempts}",
     .section = sockets::retry_options},
    {.name = "tls",
     .type = option_type::section,
     .help = "TLS: {cert, key, ca, verify_peer, server_name, timeout_ms}",
     .section = tls::options},
    sockets::backlog_option,
};

// "HOST:PORT" or "[V6]:PORT", as the core has checked it.
struct host_port {
  std::string host;  // without brackets
  std::string port;
};

std::optional<host_port> split(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return std::nullopt;  // an IPv6 address needs its brackets
  }
  const std::string port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535)
    return std::nullopt;
  return host_port{host, port};
}

// The addresses of `to`. A numeric host is read without any lookup; a name
// goes through getaddrinfo, which blocks the event loop while it waits for
// DNS. That is brief and accepted for now: only names pay it, and a user
// who cannot have it writes the address.
std::vector<address> resolve(const host_port& to, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int status = ::getaddrinfo(to.host.c_str(), to.port.c_str(), &hints, &found);
  if (status == EAI_NONAME) {
    hints.ai_flags &= ~AI_NUMERICHOST;
    status = ::getaddrinfo(to.host.c_str(), to.port.c_str(), &hints, &found);
  }
  if (status != 0) {
    error = status == EAI_SYSTEM ? sockets::error_text(errno) : ::gai_strerror(status);
    return {};
  }
  std::vector<address> addresses;
  for (const addrinfo* a = found; a; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    address out;
    std::memcpy(&out.storage, a->ai_addr, a->ai_addrlen);
    out.length = a->ai_addrlen;
    out.text = sockets::to_text(out.storage, out.length);
    addresses.push_back(std::move(out));
  }
  ::freeaddrinfo(found);
  return addresses;
}

// Binds and listens on `at`; "" on success, else why not.
std::string listen_on(const address& at, int backlog, unique_fd& fd) {
  fd = sockets::new_socket(at.family());
  if (!fd) return sockets::error_text(errno);
  // A restarted pickleway rebinds at once, despite connections of the
  // previous one in TIME_WAIT.
  const int on = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
      ::bind(fd.get(), at.get(), at.length) < 0 || ::listen(fd.get(), backlog) < 0)
    return sockets::error_text(errno);
  return {};
}

class tcp_transport final : public transport {
 public:
  tcp_transport(sockets::endpoint_role role, host_port target, sockets::retry_policy retry,
                std::shared_ptr<const tls::context> tls, int backlog)
      : role_(std::move(role)),
        target_(std::move(target)),
        retry_(retry),
        tls_(std::move(tls)),
        backlog_(backlog) {}

  bool listens() const noexcept override { return role_.listens; }

  // Connections beyond what the core takes wait in the backlog: the core
  // stops accepting at max_instances.
  std::unique_ptr<listener> listen(std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<listener>(); }, [&]() -> std::unique_ptr<listener> {
      const std::string what = "tcp " + role_.target;
      const auto addresses = resolve(target_, error);
      if (addresses.empty()) {
        error = what + ": " + error;
        return nullptr;
      }
      // A name may have several addresses; the listener has one socket, so
      // it takes the first that binds.
      std::string why;
      for (const auto& at : addresses) {
        unique_fd fd;
        const std::string failure = listen_on(at, backlog_, fd);
        if (failure.empty())
          return std::make_unique<sockets::socket_listener>(std::move(fd), "tcp", upgrade());
        why += (why.empty() ? "" : "; ") + (at.text == role_.target ? "" : at.text + ": ") + failure;
      }
      error = what + ": " + why;
      return nullptr;
    });
  }

  std::unique_ptr<opener> open(const open_context& context, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<opener>(); }, [&]() -> std::unique_ptr<opener> {
      if (role_.listens) return sockets::refuse_open(*this);
      // Resolved again on each attempt: a name may come to resolve, or move.
      auto resolver = [target = target_](std::string& why) { return resolve(target, why); };
      return std::make_unique<sockets::connecting_opener>("tcp connect", role_.target, retry_,
                                                          std::move(resolver), context.log,
                                                          upgrade());
    });
  }

  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&]() -> std::string {
      return std::string("tcp ") + (role_.listens ? "listen " : "connect ") + role_.target +
             (tls_ ? ", " + tls_->describe() : "");
    });
  }

 private:
  // What a connected socket becomes: plain, or TLS after its handshake.
  // The listening side's handshake runs in the opener accept() returns,
  // which the core completes before it opens the other endpoint: a
  // stranger who fails it never makes the session start anything.
  sockets::socket_upgrade upgrade() const {
    if (!tls_) return sockets::plain_socket;
    return [tls = tls_](unique_fd fd, std::string peer) -> std::unique_ptr<opener> {
      return std::make_unique<tls::handshake>(tls, std::move(fd), std::move(peer));
    };
  }

  sockets::endpoint_role role_;
  host_port target_;
  sockets::retry_policy retry_;
  std::shared_ptr<const tls::context> tls_;  // null without `tls`
  int backlog_;
};

std::unique_ptr<transport> build(const option_values& options, option_error& error) {
  auto role = sockets::read_role(options, error);
  if (!role) return nullptr;
  const char* option = role->listens ? "listen" : "connect";
  const auto target = split(role->target);
  if (!target) {
    error = {option, "'" + role->target + "' is not an address HOST:PORT ([HOST]:PORT for IPv6)"};
    return nullptr;
  }
  if (!role->listens && std::stoi(target->port) == 0) {
    error = {option, "connect needs a port other than 0"};
    return nullptr;
  }
  if (role->listens && options.has("retry")) {
    error = {"retry", "retry applies to 'connect' only"};
    return nullptr;
  }
  const auto retry = sockets::read_retry(options, error);
  if (!retry) return nullptr;
  std::shared_ptr<const tls::context> tls;
  if (options.has("tls")) {
    tls = tls::context::make(*options.get_section("tls"), role->listens, target->host, error);
    if (!tls) return nullptr;
  }
  const auto backlog = sockets::read_backlog(options, role->listens, error);
  if (!backlog) return nullptr;
  return std::make_unique<tcp_transport>(std::move(*role), *target, *retry, std::move(tls), *backlog);
}

}  // namespace

PICKLEWAY_TRANSPORT_PLUGIN("tcp", "1.1.0", "TCP over IPv4 and IPv6, connect with retry, TLS",
                           tcp_options, guarded_factory<build>)
