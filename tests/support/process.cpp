#include "process.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <stdexcept>

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

run_result run_pickleway(const std::vector<std::string>& args) {
  std::string command = quote(PICKLEWAY_BINARY);
  for (const auto& a : args) command.append(" ").append(quote(a));
  return run({"sh", "-c", command + " 2>&1"});
}

}  // namespace pickleway::test
