#include "gateway.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

#include "process.hpp"

extern char** environ;

namespace pickleway::test {

using clock = std::chrono::steady_clock;

gateway::gateway(const std::filesystem::path& config, std::vector<std::string> extra,
                 std::vector<std::string> prefix) {
  std::vector<std::string> args = std::move(prefix);
  for (std::string word : {std::string(PICKLEWAY_BINARY), std::string("run"), config.string(),
                           std::string("--plugin-path"), std::string(PICKLEWAY_PLUGIN_DIR)})
    args.push_back(std::move(word));
  args.insert(args.end(), extra.begin(), extra.end());
  start(std::move(args));
}

gateway::gateway(const pickleway_words& command_line) {
  std::vector<std::string> args{PICKLEWAY_BINARY};
  args.insert(args.end(), command_line.words.begin(), command_line.words.end());
  start(std::move(args));
}

gateway::gateway(measured, const std::filesystem::path& config) {
  time_report_ = (config.parent_path() / "time-report").string();
  start(measured_command({PICKLEWAY_BINARY, "run", config.string(), "--plugin-path",
                          PICKLEWAY_PLUGIN_DIR},
                         time_report_));
}

void gateway::start(std::vector<std::string> args) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  const int rc = ::posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  log_fd_ = pipe_fds[0];
  if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
}

long gateway::peak_rss_kib() const {
  if (time_report_.empty() || !status_) throw std::logic_error("peak_rss_kib of an unmeasured or running gateway");
  return read_time_report(time_report_).peak_rss_kib;
}

gateway::~gateway() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (log_fd_ >= 0) ::close(log_fd_);
}

bool gateway::read_some(std::chrono::milliseconds timeout) {
  if (log_fd_ < 0) return false;
  pollfd p{log_fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buf[4096];
  const ssize_t n = ::read(log_fd_, buf, sizeof buf);
  if (n <= 0) {
    ::close(log_fd_);
    log_fd_ = -1;
    return false;
  }
  log_.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::optional<std::string> gateway::wait_for_line(const std::string& needle,
                                                  std::chrono::milliseconds deadline) {
  const std::size_t from = scanned_;
  scanned_ = 0;
  auto line = next_line(needle, deadline);
  if (!line) scanned_ = from;
  return line;
}

std::optional<std::string> gateway::next_line(const std::string& needle,
                                              std::chrono::milliseconds deadline) {
  const auto end = clock::now() + deadline;
  for (;;) {
    const auto at = log_.find(needle, scanned_);
    if (at != std::string::npos) {
      const auto begin = log_.rfind('\n', at);
      const std::size_t start = begin == std::string::npos ? 0 : begin + 1;
      const auto stop = log_.find('\n', at);
      scanned_ = stop == std::string::npos ? log_.size() : stop + 1;
      return log_.substr(start, stop == std::string::npos ? std::string::npos : stop - start);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now());
    if (left.count() <= 0 || (!read_some(left) && log_fd_ < 0)) return std::nullopt;
  }
}

int gateway::listening_port(const std::string& session) {
  const auto line = wait_for_line("session " + session + ": listening on tcp ");
  if (!line) throw std::runtime_error("session " + session + " did not say it listens:\n" + log_);
  return std::stoi(line->substr(line->rfind(':') + 1));
}

std::optional<int> gateway::wait(std::chrono::milliseconds deadline) {
  const auto end = clock::now() + deadline;
  // Read the log while waiting, so a chatty process never blocks on it.
  while (log_fd_ >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now());
    if (left.count() <= 0) break;
    read_some(left);
  }
  if (!status_) {
    // A pidfd turns the exit into something poll() can wait for.
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now());
    pollfd p{pidfd, POLLIN, 0};
    const bool exited = pidfd >= 0 && ::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count()))) > 0;
    if (pidfd >= 0) ::close(pidfd);
    int status = 0;
    if (!exited || ::waitpid(pid_, &status, 0) != pid_) return std::nullopt;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return status_;
}

void gateway::signal(int number) { ::kill(pid_, number); }

const std::string& gateway::log() {
  while (read_some(std::chrono::milliseconds(0))) {
  }
  return log_;
}

std::filesystem::path write_text(const std::filesystem::path& dir, const std::string& name,
                                 const std::string& text) {
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path;
}

std::string peer_command(const std::vector<std::string>& args) {
  std::string out = std::string("[") + PICKLEWAY_PYTHON + ", " + PICKLEWAY_SOURCE_DIR +
                    "/tests/python/peer.py";
  for (const auto& a : args) out += ", \"" + a + "\"";
  return out + "]";
}

int run_peer(const std::vector<std::string>& args) {
  std::vector<std::string> argv{PICKLEWAY_PYTHON,
                                std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/peer.py"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv).exit_status;
}

}  // namespace pickleway::test
