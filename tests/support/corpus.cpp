#include "corpus.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "process.hpp"

namespace pickleway::test {

std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::filesystem::path make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "pickleway-test-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

namespace {

std::vector<expected_message> read_expected(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<expected_message> messages;
  std::string kind;
  while (in >> kind) {
    if (kind == "M") {
      expected_message m{};
      in >> m.offset >> m.size;
      messages.push_back(std::move(m));
    } else if (kind == "O" && !messages.empty()) {
      expected_opcode o{};
      in >> o.pos >> o.name;
      messages.back().opcodes.push_back(std::move(o));
    } else {
      throw std::runtime_error("bad line in " + path.string());
    }
  }
  return messages;
}

std::vector<protocol_corpus> generate() {
  const auto dir = make_temp_dir();
  const auto made = run({PICKLEWAY_PYTHON,
                         std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/make_corpus.py",
                         dir.string()});
  if (made.exit_status != 0) throw std::runtime_error("make_corpus.py failed");
  std::vector<protocol_corpus> all;
  for (const char* stem : {"p0", "p1", "p2", "p3", "p4", "p5", "py2"}) {
    if (!std::filesystem::exists(dir / (std::string(stem) + ".pickles"))) continue;
    const auto dis = read_file(dir / (std::string(stem) + ".dis"));
    all.push_back({stem, read_file(dir / (std::string(stem) + ".pickles")),
                   read_expected(dir / (std::string(stem) + ".expected")),
                   std::string(dis.begin(), dis.end())});
  }
  std::filesystem::remove_all(dir);
  return all;
}

}  // namespace

const std::vector<protocol_corpus>& corpora() {
  static const std::vector<protocol_corpus> all = generate();
  return all;
}

}  // namespace pickleway::test
