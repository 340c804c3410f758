#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <pickleway/fd_stream.hpp>

#include "log_pump.hpp"

extern char** environ;

namespace pickleway::spawn {

namespace {

std::string errno_text(int code) { return std::system_category().message(code); }

// "exited with status 3", "killed by signal SIGKILL"; "" for a clean exit.
std::string describe_status(int status) {
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    return code == 0 ? std::string() : "exited with status " + std::to_string(code);
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    std::string text =
        "killed by signal " + (abbrev ? "SIG" + std::string(abbrev) : std::to_string(sig));
    if (WCOREDUMP(status)) text += " (core dumped)";
    return text;
  }
  return "ended with wait status " + std::to_string(status);
}

// The child, leader of a process group of its own: signals go to the
// group, so that a shell wrapper's children end with it, and a Ctrl-C on
// pickleway's terminal reaches pickleway alone, which then ends its
// children in order. Until it is reaped its pid (and so its group's id)
// cannot be reused, so signalling by pid is safe; after, nothing is sent.
class spawned_child final : public child_process {
 public:
  spawned_child(pid_t pid, unique_fd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}

  // Never leaves a zombie nor a running child behind.
  ~spawned_child() override {
    if (status_) return;
    send(SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }

  int exit_handle() const noexcept override { return pidfd_.get(); }

  std::optional<std::string> reap() noexcept override {
    return guarded([](std::string_view why) { return std::optional<std::string>(std::string(why)); },
                   [&] { return reap_now(); });
  }

  void terminate() noexcept override { send(SIGTERM); }
  void kill() noexcept override { send(SIGKILL); }

  pid_t pid() const { return pid_; }

 private:
  std::optional<std::string> reap_now() {
    if (status_) return status_;
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return std::nullopt;
    // ECHILD: something else reaped it (SIGCHLD ignored); its status is lost.
    status_ = r < 0 ? "could not be waited for: " + errno_text(errno) : describe_status(status);
    return status_;
  }

  void send(int sig) noexcept {
    if (status_) return;
    // ESRCH from the group: the child left it (setsid); it is still ours.
    if (::kill(-pid_, sig) < 0) ::kill(pid_, sig);
  }

  pid_t pid_;
  unique_fd pidfd_;
  std::optional<std::string> status_;  // once reaped
};

class spawn_stream final : public byte_stream {
 public:
  spawn_stream(std::unique_ptr<fd_stream> channel, std::unique_ptr<log_pump> pump,
               std::unique_ptr<spawned_child> child, std::string peer)
      : channel_(std::move(channel)),
        pump_(std::move(pump)),
        child_(std::move(child)),
        peer_(std::move(peer)) {}

  // Members end in reverse order: the child first (killed and reaped if it
  // still runs), then the log pump, which can then drain its pipes and
  // stop watching them, then the channel's pipes.
  ~spawn_stream() override = default;

  io_result read(std::span<std::uint8_t> into) noexcept override { return channel_->read(into); }
  io_result write(std::span<const std::uint8_t> from) noexcept override { return channel_->write(from); }
  std::error_code close_write() noexcept override { return channel_->close_write(); }
  child_process* child() noexcept override { return child_.get(); }
  std::string peer() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&] { return peer_; });
  }

 private:
  std::unique_ptr<fd_stream> channel_;
  std::unique_ptr<log_pump> pump_;
  std::unique_ptr<spawned_child> child_;
  std::string peer_;
};

// A pipe whose both ends are close-on-exec and numbered above the fds the
// child's are moved to (0-4), so that no dup2 onto 0-4 clobbers another
// source, nor is a no-op that leaves close-on-exec set.
struct pipe_ends {
  unique_fd read;
  unique_fd write;
};

std::optional<pipe_ends> make_pipe(std::error_code& error) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    error = last_error();
    return std::nullopt;
  }
  unique_fd ends[2] = {unique_fd(fds[0]), unique_fd(fds[1])};
  for (auto& end : ends) {
    if (end.get() > 4) continue;
    unique_fd moved(::fcntl(end.get(), F_DUPFD_CLOEXEC, 5));
    if (!moved) {
      error = last_error();
      return std::nullopt;
    }
    end = std::move(moved);
  }
  return pipe_ends{std::move(ends[0]), std::move(ends[1])};
}

// Grows a pickle channel's pipe from Linux's 64 KiB to 1 MiB (the default
// most an unprivileged process may ask): a 1 MiB message then crosses in a
// few system calls instead of sixteen, and the writer can run that far ahead
// while the reader is busy. A refusal only leaves the default.
void widen(const pipe_ends& pipe) {
  constexpr int wide = 1 << 20;
  ::fcntl(pipe.write.get(), F_SETPIPE_SZ, wide);
}

// The child's environment: pickleway's, then `env`, then what the channel
// needs.
std::vector<std::string> child_environment(const child_options& o) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    vars.insert_or_assign(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  // Inherited from a pickleway (or other parent) that gave *us* fds 3 and
  // 4: a stdio child must not believe its channel is there.
  vars.erase("PICKLEWAY_FDS");
  // So that a Python child that forgets to flush does not stall the stream.
  vars.insert_or_assign("PYTHONUNBUFFERED", std::string("1"));
  for (const auto& [name, value] : o.env) vars.insert_or_assign(name, value);
  if (o.channel == channel_mode::fds) vars.insert_or_assign("PICKLEWAY_FDS", "3,4");
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [name, value] : vars) out.push_back(name + "=" + value);
  return out;
}

// With `env` setting PATH, the program is looked up in that PATH, as
// Python's subprocess does (posix_spawnp would search pickleway's own).
// Returns the path to run, or "" and `error`.
std::string find_program(const std::string& name, const std::string& path, int& error) {
  error = ENOENT;
  std::string_view dirs(path);
  for (;;) {
    const auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (dir.empty()) dir.push_back('.');
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      error = EACCES;
    }
    if (colon == std::string_view::npos) return {};
    dirs.remove_prefix(colon + 1);
  }
}

std::string basename_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// posix_spawn's attribute and file action objects, destroyed on scope exit.
struct spawn_setup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  spawn_setup() {
    ::posix_spawnattr_init(&attr);
    ::posix_spawn_file_actions_init(&actions);
  }
  ~spawn_setup() {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }
  spawn_setup(const spawn_setup&) = delete;
  spawn_setup& operator=(const spawn_setup&) = delete;
};

}  // namespace

std::string command_line(const std::vector<std::string>& command) {
  std::string out;
  for (const auto& word : command) {
    if (!out.empty()) out += ' ';
    const bool plain = !word.empty() && word.find_first_not_of(
                                            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789_@%+=:,./-") == std::string::npos;
    if (plain) {
      out += word;
      continue;
    }
    out += '\'';
    for (const char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

std::unique_ptr<byte_stream> start_child(const child_options& o, log_sink* log, watcher* loop,
                                         std::string& error) {
  const std::string& program = o.command.front();
  auto fail = [&](const std::string& why) -> std::unique_ptr<byte_stream> {
    error = "spawn: " + why;
    return nullptr;
  };
  auto fail_errno = [&](const std::string& what, int code) {
    return fail(what + ": " + errno_text(code));
  };

  const bool logs = o.channel == channel_mode::fds || o.stderr_to == stderr_mode::log;
  if (logs && !loop) return fail("no loop to read the child's output for the log on");

  // posix_spawn reports a failed chdir like a failed exec; say which.
  if (!o.cwd.empty()) {
    struct stat st {};
    if (::stat(o.cwd.c_str(), &st) < 0) return fail_errno("cannot use cwd '" + o.cwd + "'", errno);
    if (!S_ISDIR(st.st_mode)) return fail("cannot use cwd '" + o.cwd + "': not a directory");
  }

  std::error_code ec;
  auto to_child = make_pipe(ec);
  auto from_child = to_child ? make_pipe(ec) : std::nullopt;
  if (to_child && from_child) {
    widen(*to_child);
    widen(*from_child);
  }
  std::optional<pipe_ends> stdout_log;
  std::optional<pipe_ends> stderr_log;
  if (!ec && o.channel == channel_mode::fds) stdout_log = make_pipe(ec);
  if (!ec && o.stderr_to == stderr_mode::log) stderr_log = make_pipe(ec);
  if (ec) return fail("cannot make a pipe: " + ec.message());

  spawn_setup setup;
  auto& actions = setup.actions;
  // Dup2 clears close-on-exec on the target; every other descriptor of
  // ours is close-on-exec, and closefrom catches those of others.
  if (o.channel == channel_mode::stdio) {
    ::posix_spawn_file_actions_adddup2(&actions, to_child->read.get(), STDIN_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, from_child->write.get(), STDOUT_FILENO);
  } else {
    // Standard input is pickleway's, perhaps a pickle stream of its own
    // (stdio transport): the child must not read from it.
    ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, stdout_log->write.get(), STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, to_child->read.get(), 3);
    ::posix_spawn_file_actions_adddup2(&actions, from_child->write.get(), 4);
  }
  if (o.stderr_to == stderr_mode::discard)
    ::posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  else if (o.stderr_to == stderr_mode::log)
    ::posix_spawn_file_actions_adddup2(&actions, stderr_log->write.get(), STDERR_FILENO);
  ::posix_spawn_file_actions_addclosefrom_np(&actions, o.channel == channel_mode::fds ? 5 : 3);
  if (!o.cwd.empty()) ::posix_spawn_file_actions_addchdir_np(&actions, o.cwd.c_str());

  // A child starts with no signal blocked (the core may block some for a
  // signalfd) and SIGPIPE at its default (the core ignores it), in its own
  // process group.
  sigset_t none;
  sigset_t defaults;
  ::sigemptyset(&none);
  ::sigemptyset(&defaults);
  ::sigaddset(&defaults, SIGPIPE);
  ::sigaddset(&defaults, SIGXFSZ);
  ::posix_spawnattr_setsigmask(&setup.attr, &none);
  ::posix_spawnattr_setsigdefault(&setup.attr, &defaults);
  ::posix_spawnattr_setpgroup(&setup.attr, 0);
  ::posix_spawnattr_setflags(
      &setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<std::string> env = child_environment(o);
  std::vector<char*> envp;
  for (auto& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = o.command;
  std::vector<char*> argv;
  for (auto& word : args) argv.push_back(word.data());
  argv.push_back(nullptr);

  // glibc's posix_spawn returns once the child has exec'd, or with the
  // exec's errno: a program that cannot run fails the open here.
  pid_t pid = -1;
  int rc;
  const auto path_override = o.env.find("PATH");
  if (path_override != o.env.end() && program.find('/') == std::string::npos) {
    const std::string found = find_program(program, path_override->second, rc);
    if (!found.empty())
      rc = ::posix_spawn(&pid, found.c_str(), &actions, &setup.attr, argv.data(), envp.data());
  } else {
    rc = ::posix_spawnp(&pid, program.c_str(), &actions, &setup.attr, argv.data(), envp.data());
  }
  if (rc != 0) return fail_errno("cannot run '" + program + "'", rc);

  // The child's ends are its own now; holding them would hide its EOFs.
  to_child->read.reset();
  from_child->write.reset();
  if (stdout_log) stdout_log->write.reset();
  if (stderr_log) stderr_log->write.reset();

  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // close-on-exec
  const int pidfd_errno = errno;
  auto child = std::make_unique<spawned_child>(pid, unique_fd(pidfd));  // kills it on failure
  if (pidfd < 0) return fail_errno("cannot watch pid " + std::to_string(pid), pidfd_errno);

  const std::string peer = "pid " + std::to_string(pid) + " (" + basename_of(program) + ")";
  for (auto* end : {&to_child->write, &from_child->read})
    if (const auto e = set_nonblocking(end->get())) return fail(peer + ": " + e.message());

  std::unique_ptr<log_pump> pump;
  std::vector<unique_fd> log_pipes;
  if (stdout_log) log_pipes.push_back(std::move(stdout_log->read));
  if (stderr_log) log_pipes.push_back(std::move(stderr_log->read));
  if (!log_pipes.empty()) {
    std::string why;
    pump = log_pump::start(std::move(log_pipes), log, *loop, why);
    if (!pump) return fail(peer + ": cannot start reading its output for the log: " + why);
  }

  return std::make_unique<spawn_stream>(
      fd_stream::pipes(std::move(from_child->read), std::move(to_child->write), peer),
      std::move(pump), std::move(child), peer);
}

}  // namespace pickleway::spawn
