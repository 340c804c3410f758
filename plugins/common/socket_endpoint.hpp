// What the socket transports (`unix`, `tcp`) share: socket addresses and
// their text, the `listen`/`connect` choice, the `retry` option, an opener
// that connects with retry and backoff, and a listener that accepts
// connections; both hand a connected socket to an upgrade (plain by
// default; tcp's TLS handshakes there).
//
// Header-only, for plugins: it uses the public pickleway headers and POSIX
// only. Everything here runs on the core's event loop thread and never
// blocks (but a name lookup a transport does in its resolver; see tcp.cpp).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <pickleway/fd_stream.hpp>
#include <pickleway/options.hpp>
#include <pickleway/transport.hpp>

namespace pickleway::sockets {

inline std::string error_text(int error) { return std::system_category().message(error); }

// ---- Addresses

// A socket address, with the text users read: "127.0.0.1:7000",
// "[::1]:7000", "/run/x.sock", "@name" (Linux abstract namespace).
struct address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

// The text of a socket address; empty for an unnamed Unix socket (the
// usual connecting end). An IPv4 peer of a dual-stack IPv6 socket reads as
// IPv4.
inline std::string to_text(const sockaddr_storage& storage, socklen_t length) {
  char host[INET6_ADDRSTRLEN] = {};
  switch (storage.ss_family) {
    case AF_INET: {
      const auto& in = reinterpret_cast<const sockaddr_in&>(storage);
      ::inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
      return std::string(host) + ":" + std::to_string(ntohs(in.sin_port));
    }
    case AF_INET6: {
      const auto& in6 = reinterpret_cast<const sockaddr_in6&>(storage);
      const std::string port = std::to_string(ntohs(in6.sin6_port));
      static constexpr std::uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (std::memcmp(in6.sin6_addr.s6_addr, v4_mapped, sizeof v4_mapped) == 0) {
        ::inet_ntop(AF_INET, &in6.sin6_addr.s6_addr[12], host, sizeof host);
        return std::string(host) + ":" + port;
      }
      ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
      return "[" + std::string(host) + "]:" + port;
    }
    case AF_UNIX: {
      const auto& un = reinterpret_cast<const sockaddr_un&>(storage);
      const auto offset = offsetof(sockaddr_un, sun_path);
      if (length <= offset) return {};
      const std::size_t size = length - offset;
      if (un.sun_path[0] == '\0') return "@" + std::string(un.sun_path + 1, size - 1);
      return std::string(un.sun_path, ::strnlen(un.sun_path, size));
    }
    default:
      return "(address family " + std::to_string(storage.ss_family) + ")";
  }
}

// The address a socket is bound to: after binding port 0, the real port.
inline address local_address(int fd) {
  address a;
  a.length = sizeof a.storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) < 0) a.length = 0;
  a.text = to_text(a.storage, a.length);
  return a;
}

// ---- Sockets

inline unique_fd new_socket(int family) {
  return unique_fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

// Every message goes out when written: a pickle is often one small write,
// and Nagle's algorithm would hold it back waiting for an ACK.
inline void set_no_delay(int fd, int family) {
  if (family != AF_INET && family != AF_INET6) return;
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// ---- Options

// Exactly one of `listen` and `connect`, and its value.
struct endpoint_role {
  bool listens = false;
  std::string target;  // the address as written
};

inline std::optional<endpoint_role> read_role(const option_values& options, option_error& error) {
  const auto listen = options.get_string("listen");
  const auto connect = options.get_string("connect");
  if (listen && connect) {
    error = {"connect", "give 'listen' or 'connect', not both"};
    return std::nullopt;
  }
  if (!listen && !connect) {
    error = {"", "one of 'listen' or 'connect' is required"};
    return std::nullopt;
  }
  return endpoint_role{listen.has_value(), listen ? *listen : *connect};
}

// `retry: {initial_ms, max_ms, attempts}` of a connecting endpoint: wait
// `initial_ms` after the first failed attempt, double the wait after each
// further one up to `max_ms`; give up after `attempts` (0: never).
struct retry_policy {
  std::chrono::milliseconds initial{};
  std::chrono::milliseconds max{};
  std::int64_t attempts = 0;
};

inline constexpr option_spec retry_options[] = {
    {.name = "initial_ms",
     .type = option_type::integer,
     .help = "wait after the first failed attempt",
     .default_value = "100"},
    {.name = "max_ms",
     .type = option_type::integer,
     .help = "longest wait between attempts",
     .default_value = "5000"},
    {.name = "attempts",
     .type = option_type::integer,
     .help = "attempts before giving up; 0 = forever",
     .default_value = "0"},
};

// From the `retry` section, or its defaults when it is not written.
inline std::optional<retry_policy> read_retry(const option_values& options, option_error& error) {
  const option_values& section = *options.get_section("retry");
  const auto refuse = [&](std::string message) -> std::optional<retry_policy> {
    error = {"retry", std::move(message)};
    return std::nullopt;
  };
  const std::int64_t initial = *section.get_integer("initial_ms");
  const std::int64_t max = *section.get_integer("max_ms");
  const std::int64_t attempts = *section.get_integer("attempts");
  if (initial < 1 || initial > 3'600'000) return refuse("initial_ms must be from 1 to 3600000");
  if (max < 1 || max > 3'600'000) return refuse("max_ms must be from 1 to 3600000");
  if (attempts < 0) return refuse("attempts must be 0 (forever) or more");
  if (section.has("max_ms") && max < initial)
    return refuse("max_ms must not be less than initial_ms");
  // initial_ms alone may pass the default max_ms, which then gives way.
  return retry_policy{std::chrono::milliseconds(initial),
                      std::chrono::milliseconds(std::max(max, initial)), attempts};
}

// ---- Opening

// The opener of a connection that already exists (accepted by a listener).
class ready_opener final : public opener {
 public:
  explicit ready_opener(std::unique_ptr<byte_stream> stream) : stream_(std::move(stream)) {}
  open_step step(bool) noexcept override {
    return guarded([](std::string_view why) { return open_step::fail(std::string(why)); }, [&]() -> open_step {
      if (!stream_) return open_step::fail("the connection was already opened");
      return open_step::ready(std::move(stream_));
    });
  }

 private:
  std::unique_ptr<byte_stream> stream_;
};

// What open() gives on a listening endpoint, whose instances the core
// opens through listen() and accept(): a clear failure rather than a
// connect to the listening address.
class refusing_opener final : public opener {
 public:
  explicit refusing_opener(std::string why) : why_(std::move(why)) {}
  open_step step(bool) noexcept override {
    return guarded([](std::string_view why) { return open_step::fail(std::string(why)); },
                   [&] { return open_step::fail(why_); });
  }

 private:
  std::string why_;
};

// What a connected socket becomes, given the socket and its peer's text:
// an opener that ends with the stream the core uses. The plain upgrade is
// ready at once; tcp's TLS upgrade does its handshake first. A failure of
// the upgrade is final: a connector retries only the connect.
using socket_upgrade = std::function<std::unique_ptr<opener>(unique_fd fd, std::string peer)>;

inline std::unique_ptr<opener> plain_socket(unique_fd fd, std::string peer) {
  return std::make_unique<ready_opener>(fd_stream::socket(std::move(fd), std::move(peer)));
}

inline std::unique_ptr<opener> refuse_open(const transport& listening) {
  return std::make_unique<refusing_opener>(
      listening.describe() + ": a listening endpoint opens by accepting, not by open()");
}

// Connects to the first address that answers; when none does, waits the
// backoff and tries again, up to the policy's attempts. Failures read
// "tcp connect 127.0.0.1:7000: Connection refused (attempt 3 of 5)".
// A connect has no timeout of its own: to an address that never answers,
// an attempt lasts until the kernel gives up (ETIMEDOUT, about 2 minutes).
class connecting_opener final : public opener {
 public:
  // The addresses to try, in order; none, and why in `error`, when the
  // target cannot be resolved (now: it is retried like a refusal).
  using resolver = std::function<std::vector<address>(std::string& error)>;

  // `what` starts every message ("tcp connect"), `target` is the address as
  // written; `log` (may be null) hears of failed attempts that are retried.
  connecting_opener(std::string what, std::string target, retry_policy retry, resolver resolve,
                    log_sink* log, socket_upgrade upgrade = plain_socket)
      : what_(std::move(what)),
        target_(std::move(target)),
        retry_(retry),
        resolve_(std::move(resolve)),
        log_(log),
        upgrade_(std::move(upgrade)),
        backoff_(retry.initial) {}

  // Called first, after each backoff, when a connect in progress has
  // become writable, and for the upgrade's own waits once connected.
  open_step step(bool timed_out) noexcept override {
    return guarded([](std::string_view why) { return open_step::fail(std::string(why)); }, [&]() -> open_step {
      if (upgrading_) return upgrade_step(timed_out);
      if (connecting_) return finish_connect();
      failures_.clear();
      std::string error;
      addresses_ = resolve_(error);
      next_ = 0;
      if (addresses_.empty()) {
        failures_.push_back(error);
        return attempt_failed();
      }
      return try_next();
    });
  }

 private:
  open_step try_next() {
    while (next_ < addresses_.size()) {
      const address& to = addresses_[next_++];
      unique_fd fd = new_socket(to.family());
      if (!fd) {
        note(to, errno);
        continue;
      }
      set_no_delay(fd.get(), to.family());
      if (::connect(fd.get(), to.get(), to.length) == 0) return connected(std::move(fd), to);
      if (errno == EINPROGRESS || errno == EINTR) {  // either way it goes on by itself
        connecting_ = std::move(fd);
        return open_step::wait_for(connecting_.get(), true, std::chrono::milliseconds(-1));
      }
      note(to, errno);  // a Unix socket's full backlog (EAGAIN) included: retried
    }
    return attempt_failed();
  }

  open_step finish_connect() {
    // SO_ERROR is 0 while the connect is still in progress too, so make
    // sure it has ended before reading it.
    pollfd p{connecting_.get(), POLLOUT, 0};
    if (::poll(&p, 1, 0) <= 0)
      return open_step::wait_for(connecting_.get(), true, std::chrono::milliseconds(-1));
    unique_fd fd = std::move(connecting_);
    const address& to = addresses_[next_ - 1];
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) < 0) error = errno;
    if (error == 0) return connected(std::move(fd), to);
    note(to, error);
    return try_next();
  }

  open_step connected(unique_fd fd, const address& to) {
    if (log_ && !last_logged_.empty())  // the failures were logged: so is the end of them
      log_->line(what_ + " " + target_ + ": connected to " + to.text + " at attempt " +
                 std::to_string(attempt_ + 1));
    upgrading_ = upgrade_(std::move(fd), to.text);
    return upgrade_step(false);
  }

  // The upgrade's failure names the target, as a connect failure does.
  open_step upgrade_step(bool timed_out) {
    open_step s = upgrading_->step(timed_out);
    if (s.what == open_step::kind::failed) s.error = what_ + " " + target_ + ": " + s.error;
    return s;
  }

  // A name may resolve to several addresses: each failure names its own.
  void note(const address& to, int error) {
    failures_.push_back(to.text == target_ ? error_text(error)
                                           : to.text + ": " + error_text(error));
  }

  open_step attempt_failed() {
    ++attempt_;
    std::string why;
    for (const auto& f : failures_) why += (why.empty() ? "" : "; ") + f;
    const std::string message =
        what_ + " " + target_ + ": " + why + " (attempt " + std::to_string(attempt_) +
        (retry_.attempts > 0 ? " of " + std::to_string(retry_.attempts) : "") + ")";
    if (retry_.attempts > 0 && attempt_ >= retry_.attempts) return open_step::fail(message);
    // One line per change of cause, not per attempt: a server that is down
    // for an hour is one line, not seven hundred.
    if (log_ && why != last_logged_) {
      log_->line(message + "; retrying (backoff from " + std::to_string(retry_.initial.count()) +
                 " ms, doubling up to " + std::to_string(retry_.max.count()) + " ms)");
      last_logged_ = why;
    }
    const auto wait = backoff_;
    backoff_ = std::min(backoff_ * 2, retry_.max);
    return open_step::wait_for(-1, false, wait);
  }

  std::string what_;
  std::string target_;
  retry_policy retry_;
  resolver resolve_;
  log_sink* log_;
  socket_upgrade upgrade_;

  std::vector<address> addresses_;  // of this attempt
  std::size_t next_ = 0;            // the next of them to try
  unique_fd connecting_;            // a connect in progress
  std::vector<std::string> failures_;
  std::int64_t attempt_ = 0;
  std::chrono::milliseconds backoff_;
  std::string last_logged_;
  std::unique_ptr<opener> upgrading_;  // once connected
};

// ---- Listening

// A listener's backlog: `backlog` as written, else the system's largest
// (net.core.somaxconn), so that a burst of clients waits in the kernel
// rather than being refused while the core accepts them all.
inline int system_backlog() {
  int value = 4096;  // the kernel's default since Linux 5.4
  if (std::FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "r")) {
    if (std::fscanf(f, "%d", &value) != 1 || value < 1) value = 4096;
    std::fclose(f);
  }
  return value;
}

inline constexpr option_spec backlog_option = {
    .name = "backlog",
    .type = option_type::integer,
    .help = "listen: connections the kernel holds until they are accepted (default: the "
            "system's largest, net.core.somaxconn)"};

// `backlog`: from 1, or the system's when not written.
inline std::optional<int> read_backlog(const option_values& options, bool listens,
                                       option_error& error) {
  const auto backlog = options.get_integer("backlog");
  if (!backlog) return system_backlog();
  if (!listens) {
    error = {"backlog", "backlog applies to 'listen' only"};
    return std::nullopt;
  }
  if (*backlog < 1 || *backlog > 1'000'000) {
    error = {"backlog", "backlog must be from 1 to 1000000"};
    return std::nullopt;
  }
  return static_cast<int>(*backlog);
}

// A listening socket whose accepted connections go through `upgrade`
// (plain: ready at once). Named by the address it is bound to:
// "tcp 127.0.0.1:43125", "unix /x.sock".
class socket_listener : public listener {
 public:
  // `fd` is bound (not necessarily listening yet).
  socket_listener(unique_fd fd, const std::string& kind, socket_upgrade upgrade = plain_socket)
      : fd_(std::move(fd)),
        local_(local_address(fd_.get())),
        description_(kind + " " + local_.text),
        upgrade_(std::move(upgrade)) {}

  int handle() const noexcept override { return fd_.get(); }
  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&] { return description_; });
  }
  const address& local() const { return local_; }

  std::unique_ptr<opener> accept(std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<opener>(); }, [&]() -> std::unique_ptr<opener> {
      for (;;) {
        sockaddr_storage from{};
        socklen_t length = sizeof from;
        unique_fd fd(::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&from), &length,
                               SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (fd) {
          set_no_delay(fd.get(), from.ss_family);
          std::string peer = to_text(from, length);
          if (peer.empty()) peer = local_.text;  // an unnamed Unix peer: name the socket path
          return upgrade_(std::move(fd), std::move(peer));
        }
        switch (errno) {
          case EAGAIN:
            return nullptr;  // nothing waiting
          case EINTR:
          case ECONNABORTED:  // gone before we took it
          // Linux hands pending network errors of the new connection to
          // accept(); accept(2) says to treat them as "try again".
          case EPROTO:
          case ENOPROTOOPT:
          case EHOSTDOWN:
          case ENONET:
          case EHOSTUNREACH:
          case ENETDOWN:
          case ENETUNREACH:
          case EOPNOTSUPP:
            continue;
          default:  // out of descriptors or memory: the core decides
            error = description_ + ": accept: " + error_text(errno);
            return nullptr;
        }
      }
    });
  }

 private:
  unique_fd fd_;
  address local_;
  std::string description_;
  socket_upgrade upgrade_;
};

}  // namespace pickleway::sockets
