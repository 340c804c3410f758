// The `unix` transport: `listen: PATH` or `connect: PATH` on a Unix stream
// socket; `@name` is a name in Linux's abstract namespace (no file).
//
// Listening replaces a stale socket file (one nobody accepts on), refuses
// a live one or a path that is not a socket, applies `mode`, and removes
// the file again when the listener closes.
#include <sys/stat.h>

#include <pickleway/fd_stream.hpp>
#include <pickleway/plugin.hpp>

#include "../common/socket_endpoint.hpp"

namespace {

using namespace pickleway;
using sockets::address;
using sockets::error_text;

constexpr option_spec unix_options[] = {
    {"listen", option_type::string, false,
     "socket path to accept connections on (@name: abstract)"},
    {"connect", option_type::string, false, "socket path to connect to (@name: abstract)"},
    {"mode", option_type::mode, false, "listen: permissions of the socket file, e.g. \"0600\""},
    {.name = "retry",
     .type = option_type::section,
     .help = "connect: {initial_ms, max_ms, attempts}",
     .section = sockets::retry_options},
    sockets::backlog_option,
};

bool is_abstract(const std::string& path) { return !path.empty() && path.front() == '@'; }

// The socket address of PATH or @NAME; nullopt, and why, when it has none.
std::optional<address> unix_address(const std::string& path, std::string& why) {
  address a;
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (path.empty() || path == "@") {
    why = "a socket path must not be empty";
    return std::nullopt;
  }
  // A file path keeps its terminating NUL; an abstract name is its bytes
  // after a leading NUL, which takes the place of the '@'.
  const std::size_t size = is_abstract(path) ? path.size() : path.size() + 1;
  if (size > sizeof un.sun_path) {
    why = "'" + path + "' is longer than a socket path may be (" +
          std::to_string(sizeof un.sun_path - 1) + " bytes)";
    return std::nullopt;
  }
  std::memcpy(un.sun_path, path.data(), path.size());
  if (is_abstract(path)) un.sun_path[0] = '\0';
  std::memcpy(&a.storage, &un, sizeof un);
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + size);
  a.text = path;
  return a;
}

// Makes room to bind a file socket at `at`: nothing there, or a stale
// socket file, which is removed. nullopt when there is room, else why not.
//
// "Stale" means a connect is refused. A live server gets a connection that
// closes at once (the price of asking). A server that binds between the
// check and the unlink loses its file; that race is inherent to the check.
std::optional<std::string> make_room(const address& at) {
  struct stat st {};
  if (::lstat(at.text.c_str(), &st) < 0)
    return errno == ENOENT ? std::nullopt : std::optional(error_text(errno));
  if (!S_ISSOCK(st.st_mode)) return "exists and is not a socket";
  const unique_fd probe = sockets::new_socket(AF_UNIX);
  if (!probe) return error_text(errno);
  // EAGAIN: a full backlog, so a live server.
  if (::connect(probe.get(), at.get(), at.length) == 0 || errno == EAGAIN)
    return "in use by another process";
  if (errno != ECONNREFUSED)
    return "cannot tell whether the socket file in place is in use: " + error_text(errno);
  if (::unlink(at.text.c_str()) < 0 && errno != ENOENT)
    return "cannot remove the stale socket file: " + error_text(errno);
  return std::nullopt;
}

// A listener on a Unix socket. One bound to a file removes that file when
// it closes, unless someone has since put another file in its place.
class unix_listener final : public sockets::socket_listener {
 public:
  // `fd` is bound to `file` ("" for an abstract name).
  unix_listener(unique_fd fd, std::string file)
      : socket_listener(std::move(fd), "unix"), file_(std::move(file)) {
    if (!file_.empty() && ::lstat(file_.c_str(), &bound_) < 0) file_.clear();
  }

  ~unix_listener() override {
    struct stat now {};
    if (!file_.empty() && ::lstat(file_.c_str(), &now) == 0 && now.st_dev == bound_.st_dev &&
        now.st_ino == bound_.st_ino)
      ::unlink(file_.c_str());
  }

  unix_listener(const unix_listener&) = delete;
  unix_listener& operator=(const unix_listener&) = delete;

 private:
  std::string file_;
  struct stat bound_ {};  // the file as bound, to know it again
};

class unix_transport final : public transport {
 public:
  unix_transport(bool listens, address at, std::optional<mode_t> mode, sockets::retry_policy retry,
                 int backlog)
      : listens_(listens), at_(std::move(at)), mode_(mode), retry_(retry), backlog_(backlog) {}

  bool listens() const noexcept override { return listens_; }

  std::unique_ptr<listener> listen(std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<listener>(); }, [&]() -> std::unique_ptr<listener> {
      const auto refuse = [&](const std::string& why) -> std::unique_ptr<listener> {
        error = "unix " + at_.text + ": " + why;
        return nullptr;
      };
      const bool file = !is_abstract(at_.text);
      if (file)
        if (const auto why = make_room(at_)) return refuse(*why);
      unique_fd fd = sockets::new_socket(AF_UNIX);
      if (!fd) return refuse(error_text(errno));
      if (::bind(fd.get(), at_.get(), at_.length) < 0)
        return refuse(errno == EADDRINUSE ? "in use by another process" : error_text(errno));
      // From here the listener owns the file, and removes it on failure.
      auto l = std::make_unique<unix_listener>(std::move(fd), file ? at_.text : "");
      // Before listen(): until then a connect is refused, so the umask's
      // mode is never open to anyone.
      if (mode_ && ::chmod(at_.text.c_str(), *mode_) < 0)
        return refuse("cannot set its mode: " + error_text(errno));
      if (::listen(l->handle(), backlog_) < 0) return refuse(error_text(errno));
      return l;
    });
  }

  std::unique_ptr<opener> open(const open_context& context, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<opener>(); }, [&]() -> std::unique_ptr<opener> {
      if (listens_) return sockets::refuse_open(*this);
      auto resolver = [at = at_](std::string&) { return std::vector<address>{at}; };
      return std::make_unique<sockets::connecting_opener>("unix connect", at_.text, retry_,
                                                          std::move(resolver), context.log);
    });
  }

  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&]() -> std::string {
      return std::string("unix ") + (listens_ ? "listen " : "connect ") + at_.text;
    });
  }

 private:
  bool listens_;
  address at_;
  std::optional<mode_t> mode_;
  sockets::retry_policy retry_;
  int backlog_;
};

std::unique_ptr<transport> build(const option_values& options, option_error& error) {
  auto role = sockets::read_role(options, error);
  if (!role) return nullptr;
  std::string why;
  auto at = unix_address(role->target, why);
  if (!at) {
    error = {role->listens ? "listen" : "connect", why};
    return nullptr;
  }
  std::optional<mode_t> mode;
  if (const auto m = options.get_integer("mode")) {
    if (!role->listens) {
      error = {"mode", "mode applies to 'listen' only"};
      return nullptr;
    }
    if (is_abstract(role->target)) {
      error = {"mode", "an abstract socket (@name) has no file to set a mode on"};
      return nullptr;
    }
    if (*m < 0 || *m > 07777) {
      error = {"mode", "mode must be an octal file mode from 0 to 07777"};
      return nullptr;
    }
    mode = static_cast<mode_t>(*m);
  }
  if (role->listens && options.has("retry")) {
    error = {"retry", "retry applies to 'connect' only"};
    return nullptr;
  }
  const auto retry = sockets::read_retry(options, error);
  if (!retry) return nullptr;
  const auto backlog = sockets::read_backlog(options, role->listens, error);
  if (!backlog) return nullptr;
  return std::make_unique<unix_transport>(role->listens, std::move(*at), mode, *retry, *backlog);
}

}  // namespace

PICKLEWAY_TRANSPORT_PLUGIN("unix", "1.0.0", "Unix stream sockets, by path or abstract name",
                           unix_options, guarded_factory<build>)
