// A `pickleway run` process under test: started with a config, its log
// (standard error) read line by line with deadlines, signalled, waited for.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pickleway::test {

using namespace std::chrono_literals;

// The words of a pickleway command line after the program's name.
struct pickleway_words {
  std::vector<std::string> words;
};

class gateway {
 public:
  // Runs `pickleway run CONFIG` with the built plugins; `extra` goes after,
  // `prefix` before (a command that execs the rest: prlimit, ip netns exec).
  explicit gateway(const std::filesystem::path& config, std::vector<std::string> extra = {},
                   std::vector<std::string> prefix = {});
  // The same under GNU time, for peak_rss_kib(); signal() then reaches
  // time, not pickleway.
  struct measured {};
  gateway(measured, const std::filesystem::path& config);
  // Runs `pickleway WORDS...` (give --plugin-path yourself).
  explicit gateway(const pickleway_words& command_line);
  ~gateway();  // kills it if still running
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  // Waits for a log line containing `needle`; the line, or nullopt at the deadline.
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds deadline = 20s);
  // The same, for the first such line after the one the last call returned
  // (lines that recur: --stats).
  std::optional<std::string> next_line(const std::string& needle,
                                       std::chrono::milliseconds deadline = 20s);
  // The port of "listening on tcp HOST:PORT" for session `session`.
  int listening_port(const std::string& session);
  // Waits for the exit; the exit status, or nullopt at the deadline.
  std::optional<int> wait(std::chrono::milliseconds deadline = 60s);
  void signal(int number);
  const std::string& log();  // all lines so far (after a wait: all of them)
  // Its largest resident set, in KiB, once wait() saw a measured one exit.
  long peak_rss_kib() const;
  pid_t pid() const { return pid_; }

 private:
  void start(std::vector<std::string> args);
  bool read_some(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int log_fd_ = -1;
  std::string log_;
  std::size_t scanned_ = 0;
  std::optional<int> status_;
  std::string time_report_;  // where GNU time writes, for a measured one
};

// Writes `text` to DIR/NAME and returns the path.
std::filesystem::path write_text(const std::filesystem::path& dir, const std::string& name,
                                 const std::string& text);

// Runs tests/python/peer.py with these arguments; the exit status.
int run_peer(const std::vector<std::string>& args);
// The command line of peer.py, for spawn's `command:` in a YAML flow list.
std::string peer_command(const std::vector<std::string>& args);

}  // namespace pickleway::test
