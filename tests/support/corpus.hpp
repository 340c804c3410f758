// The differential corpus: pickles made by the machine's python3 with
// tests/python/make_corpus.py, and what pickletools says of them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pickleway::test {

struct expected_opcode {
  std::size_t pos;   // from the message start
  std::string name;
};

struct expected_message {
  std::uint64_t offset;
  std::size_t size;
  std::vector<expected_opcode> opcodes;
};

struct protocol_corpus {
  std::string name;  // "p0" .. "p5", or "py2" for Python 2.7's pickles
  std::vector<std::uint8_t> stream;        // pN.pickles
  std::vector<expected_message> messages;  // pN.expected (pickletools.genops)
  std::string dis;                         // pN.dis (pickletools.dis)
};

// The corpora of protocols 0-5 from python3, then Python 2.7's when a
// python2.7 is installed; generated once per test process.
const std::vector<protocol_corpus>& corpora();

std::vector<std::uint8_t> read_file(const std::filesystem::path& path);

// A fresh directory under the system's temporary directory.
std::filesystem::path make_temp_dir();

}  // namespace pickleway::test
