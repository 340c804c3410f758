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

// Runs the pickleway binary of this build with `args`; `out` holds its
// standard output and standard error together.
run_result run_pickleway(const std::vector<std::string>& args);

// Shell-quotes one word.
std::string quote(const std::string& word);

}  // namespace pickleway::test
