// Runs a real program (python3, the pickleway binary) from a test.
#pragma once

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
