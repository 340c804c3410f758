// Runs a real program (python3, the pickleway binary) from a test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pickleway::test {

struct run_result {
  int exit_status = -1;  // -1 when the program did not exit normally
  std::string out;       // its standard output
};

// Runs argv[0] with the rest as arguments, its standard error passed
// through; standard output is captured.
run_result run(const std::vector<std::string>& argv);

// Runs argv[0] (looked up in PATH) with the rest as arguments, no shell
// between; standard output and error are captured together in `out`.
run_result run_captured(const std::vector<std::string>& argv);
// run_captured, for commands that must succeed: a failure to start or a
// non-zero exit throws std::runtime_error naming the command, its status
// and what it printed. Returns what it printed.
std::string run_checked(const std::vector<std::string>& argv);

// A program spoken to line by line: its standard input and output are one
// socket to the test (so a write to a program that has died fails instead
// of raising SIGPIPE), its standard error is the test's. Destruction kills
// it, unless it has exited, and reaps it.
class line_process {
 public:
  explicit line_process(const std::vector<std::string>& argv);
  ~line_process();
  line_process(const line_process&) = delete;
  line_process& operator=(const line_process&) = delete;

  // The next line it prints, without its newline; nullopt when none comes
  // before the deadline or it closes its output first.
  std::optional<std::string> read_line(std::chrono::milliseconds deadline = std::chrono::seconds(10));
  // Writes `line` and a newline; false if it could not (the program is gone).
  bool write_line(const std::string& line);
  // Writes `line` and a newline, then reads the answer.
  std::optional<std::string> ask(const std::string& line,
                                 std::chrono::milliseconds deadline = std::chrono::seconds(10));
  // Waits for it to exit: its exit status (128 + N for signal N), or
  // nullopt at the deadline.
  std::optional<int> wait(std::chrono::milliseconds deadline);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  int fd_ = -1;
  std::string buffer_;  // read, not yet returned
};

// A run with both outputs captured and its peak memory.
struct measured_run {
  int exit_status = -1;  // -1 when a signal ended it
  int signal = 0;        // the signal that ended it, or 0
  std::string out, err;
  long peak_rss_kib = 0;  // its largest resident set
};
// Measured by GNU time, which forks the program from its own small
// process: a child that a large process (this test) spawns directly
// inherits that process's peak in its ru_maxrss.
measured_run run_measured(const std::vector<std::string>& argv);

// The words that run `argv` under GNU time, its peak resident set in KiB
// (and "Command terminated by signal N" when a signal ended it) written to
// `report`; and what that file says, once it has ended.
std::vector<std::string> measured_command(const std::vector<std::string>& argv,
                                          const std::string& report);
struct time_report {
  long peak_rss_kib = 0;
  int signal = 0;
};
time_report read_time_report(const std::string& report);
// Runs the pickleway binary of this build with `args`; `out` holds its
// standard output and standard error together.
run_result run_pickleway(const std::vector<std::string>& args);

// Shell-quotes one word.
std::string quote(const std::string& word);

}  // namespace pickleway::test
