#include "support/python_process.hpp"

#include <sys/wait.h>

#include <doctest/doctest.h>

#include <utility>

#include "support/plugin_driver.hpp"
#include "support/process.hpp"

namespace pickleway::test {

using namespace std::chrono_literals;

python_process::python_process(const std::string& script, const std::vector<std::string>& args) {
  std::string command = quote(PICKLEWAY_PYTHON) + " -c " + quote(script);
  for (const auto& a : args) command.append(" ").append(quote(a));
  pipe_ = ::popen(command.c_str(), "r");
  REQUIRE(pipe_);
}

python_process::~python_process() {
  if (pipe_) ::pclose(pipe_);
}

std::string python_process::line() {
  REQUIRE_MESSAGE(wait_ready(::fileno(pipe_), false, 10s), "python3 printed nothing");
  char buffer[256] = {};
  REQUIRE(std::fgets(buffer, sizeof buffer, pipe_));
  std::string out = buffer;
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int python_process::finish() {
  const int status = ::pclose(std::exchange(pipe_, nullptr));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace pickleway::test
