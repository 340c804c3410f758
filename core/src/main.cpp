// pickleway's command line.
#include <cstring>
#include <fstream>
#include <iostream>
#include <string_view>

#include "disassembler.hpp"

namespace {

constexpr std::string_view usage =
    "usage: pickleway dis [FILE|-]   split a pickle stream into messages and\n"
    "                                disassemble each (pickletools layout)\n";

int bad_usage(std::string_view why) {
  std::cerr << "pickleway: " << why << "\n" << usage;
  return 2;
}

int run_dis(int argc, char** argv) {
  if (argc > 3) return bad_usage("dis takes at most one FILE");
  const std::string_view path = argc == 3 ? argv[2] : "-";
  std::ios::sync_with_stdio(false);
  if (path == "-") return pickleway::disassemble_stream(std::cin, std::cout, std::cerr);
  std::ifstream file{std::string(path), std::ios::binary};
  if (!file) {
    std::cerr << "pickleway dis: cannot open " << path << ": " << std::strerror(errno) << "\n";
    return 2;
  }
  return pickleway::disassemble_stream(file, std::cout, std::cerr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return bad_usage("a command is required");
  const std::string_view command = argv[1];
  if (command == "dis") return run_dis(argc, argv);
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << usage;
    return 0;
  }
  return bad_usage("unknown command '" + std::string(command) + "'");
}
