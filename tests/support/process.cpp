#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
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
