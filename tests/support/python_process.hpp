// A python3 program run from a test, its standard output read line by line
// as it comes; waited for on destruction.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace pickleway::test {

class python_process {
 public:
  explicit python_process(const std::string& script, const std::vector<std::string>& args = {});
  ~python_process();
  python_process(const python_process&) = delete;
  python_process& operator=(const python_process&) = delete;

  // The next line it prints, without its newline (the test fails after 10 s).
  std::string line();
  // Waits for the program to exit; its exit status (-1: killed).
  int finish();

 private:
  FILE* pipe_ = nullptr;
};

}  // namespace pickleway::test
