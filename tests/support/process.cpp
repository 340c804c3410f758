#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <cstdio>
#include <stdexcept>

extern char** environ;

namespace pickleway::test {

std::string quote(const std::string& word) {
  std::string out = "'";
  for (const char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

run_result run(const std::vector<std::string>& argv) {
  std::string command;
  for (const auto& word : argv) command += quote(word) + " ";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  run_result result;
  std::array<char, 65536> chunk;
  while (const std::size_t n = std::fread(chunk.data(), 1, chunk.size(), pipe))
    result.out.append(chunk.data(), n);
  const int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  return result;
}

namespace {

using clock = std::chrono::steady_clock;

// argv as a reader would type it, for messages.
std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& word : argv) {
    if (!out.empty()) out += ' ';
    out += word.find_first_of(" '\"\\;{}$") == std::string::npos && !word.empty() ? word : quote(word);
  }
  return out;
}

// Starts argv[0] from PATH with `fd` as the standard streams in `streams`
// (STDIN_FILENO and/or STDOUT_FILENO, STDERR_FILENO); the pid, or -1 with errno set.
pid_t spawn(const std::vector<std::string>& argv, int fd, std::initializer_list<int> streams) {
  std::vector<std::string> args = argv;
  std::vector<char*> words;
  for (auto& a : args) words.push_back(a.data());
  words.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (const int stream : streams) posix_spawn_file_actions_adddup2(&actions, fd, stream);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, words[0], &actions, nullptr, words.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  return pid;
}

}  // namespace

run_result run_captured(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::logic_error("run_captured of no command");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const pid_t pid = spawn(argv, fds[1], {STDOUT_FILENO, STDERR_FILENO});
  const int spawn_error = errno;
  ::close(fds[1]);
  run_result result;
  if (pid < 0) {
    ::close(fds[0]);
    result.out = "cannot start " + argv[0] + ": " + std::strerror(spawn_error);
    return result;
  }
  std::array<char, 65536> chunk;
  for (;;) {
    const ssize_t n = ::read(fds[0], chunk.data(), chunk.size());
    if (n > 0) {
      result.out.append(chunk.data(), static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  return result;
}

std::string run_checked(const std::vector<std::string>& argv) {
  const run_result r = run_captured(argv);
  if (r.exit_status != 0) {
    throw std::runtime_error(command_line(argv) + " failed (" +
                             (r.exit_status < 0 ? std::string("did not exit normally")
                                                : "exit status " + std::to_string(r.exit_status)) +
                             "):\n" + r.out);
  }
  return r.out;
}

line_process::line_process(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::logic_error("line_process of no command");
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::runtime_error("socketpair failed");
  pid_ = spawn(argv, fds[1], {STDIN_FILENO, STDOUT_FILENO});
  const int spawn_error = errno;
  ::close(fds[1]);
  fd_ = fds[0];
  if (pid_ < 0) {
    ::close(fd_);
    throw std::runtime_error("cannot start " + command_line(argv) + ": " + std::strerror(spawn_error));
  }
}

line_process::~line_process() {
  if (!status_) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  ::close(fd_);
}

std::optional<int> line_process::wait(std::chrono::milliseconds deadline) {
  if (status_) return status_;
  // A pidfd turns the exit into something poll() can wait for.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd < 0) throw std::runtime_error("pidfd_open failed");
  pollfd p{pidfd, POLLIN, 0};
  const bool exited = ::poll(&p, 1, static_cast<int>(deadline.count())) > 0;
  ::close(pidfd);
  int status = 0;
  if (!exited || ::waitpid(pid_, &status, 0) != pid_) return std::nullopt;
  status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return status_;
}

std::optional<std::string> line_process::read_line(std::chrono::milliseconds deadline) {
  const auto end = clock::now() + deadline;
  for (;;) {
    const auto newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    std::array<char, 4096> chunk;
    const ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk.data(), static_cast<std::size_t>(n));
  }
}

bool line_process::write_line(const std::string& line) {
  const std::string bytes = line + '\n';
  for (std::size_t sent = 0; sent < bytes.size();) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<std::string> line_process::ask(const std::string& line,
                                             std::chrono::milliseconds deadline) {
  if (!write_line(line)) return std::nullopt;
  return read_line(deadline);
}

std::vector<std::string> measured_command(const std::vector<std::string>& argv,
                                          const std::string& report) {
  std::vector<std::string> words{"/usr/bin/time", "-f", "%M", "-o", report};
  words.insert(words.end(), argv.begin(), argv.end());
  return words;
}

time_report read_time_report(const std::string& report) {
  std::ifstream in(report);
  time_report r;
  for (std::string line; std::getline(in, line);) {
    const std::string signalled = "Command terminated by signal ";
    if (line.starts_with(signalled)) {
      r.signal = std::stoi(line.substr(signalled.size()));
    } else if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) {
      r.peak_rss_kib = std::stol(line);
    }
  }
  return r;
}

measured_run run_measured(const std::vector<std::string>& command) {
  char report_name[] = "/tmp/pickleway-time-XXXXXX";
  const int report_fd = ::mkstemp(report_name);
  if (report_fd < 0) throw std::runtime_error("mkstemp failed");
  ::close(report_fd);
  const std::vector<std::string> argv = measured_command(command, report_name);
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe2 failed");
  std::vector<std::string> args = argv;
  std::vector<char*> words;
  for (auto& a : args) words.push_back(a.data());
  words.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, words[0], &actions, nullptr, words.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) throw std::runtime_error("cannot run " + argv[0]);
  measured_run result;
  // Both pipes at once, so that neither fills while the other is read.
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  for (int open = 2; open > 0;) {
    if (::poll(fds, 2, -1) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      std::array<char, 65536> chunk;
      const ssize_t n = ::read(fds[i].fd, chunk.data(), chunk.size());
      if (n > 0) {
        sinks[i]->append(chunk.data(), static_cast<std::size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  const time_report report = read_time_report(report_name);
  ::unlink(report_name);
  result.signal = report.signal;
  if (WIFEXITED(status) && report.signal == 0) result.exit_status = WEXITSTATUS(status);
  result.peak_rss_kib = report.peak_rss_kib;
  return result;
}

run_result run_pickleway(const std::vector<std::string>& args) {
  std::string command = quote(PICKLEWAY_BINARY);
  for (const auto& a : args) command.append(" ").append(quote(a));
  return run({"sh", "-c", command + " 2>&1"});
}

}  // namespace pickleway::test
