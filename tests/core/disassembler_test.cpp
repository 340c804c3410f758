// `pickleway dis` on hand-made streams and as a command.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "../support/corpus.hpp"
#include "../support/process.hpp"
#include "pickleway/disassembler.hpp"

using namespace pickleway;
using namespace std::string_literals;

namespace {

struct dis_output {
  int status;
  std::string out, err;
};

dis_output dis(const std::string& stream) {
  std::istringstream in(stream);
  std::ostringstream out, err;
  const int status = disassemble_stream(in, out, err);
  return {status, out.str(), err.str()};
}

}  // namespace

TEST_CASE("dis heads each message and lays it out as pickletools does") {
  const auto r = dis("(I1\nI2\nl."s + "\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00]\x94K\x07" "a."s);
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  CHECK(r.out ==
        "=== message 1 at offset 0 (9 bytes)\n"
        "    0: (    MARK\n"
        "    1: I        INT        1\n"
        "    4: I        INT        2\n"
        "    7: l        LIST       (MARK at 0)\n"
        "    8: .    STOP\n"
        "highest protocol among opcodes = 0\n"
        "=== message 2 at offset 9 (17 bytes)\n"
        "    0: \\x80 PROTO      4\n"
        "    2: \\x95 FRAME      6\n"
        "   11: ]    EMPTY_LIST\n"
        "   12: \\x94 MEMOIZE    (as 0)\n"
        "   13: K    BININT1    7\n"
        "   15: a    APPEND\n"
        "   16: .    STOP\n"
        "highest protocol among opcodes = 4\n");
}

TEST_CASE("dis on a bad stream prints the complete messages, then the error, and fails") {
  SUBCASE("a truncated stream") {
    const auto r = dis("N.\x80\x04K"s);
    CHECK(r.status == 1);
    CHECK(r.out.find("=== message 1 at offset 0 (2 bytes)") == 0);
    CHECK(r.err == "pickleway dis: offset 5: stream ended inside a message "
                   "(3 bytes lost of a message that began at offset 2)\n");
  }
  SUBCASE("a message pickletools rejects: a memo entry never stored") {
    const auto r = dis("N.\x80\x02h\x05."s);
    CHECK(r.status == 1);
    CHECK(r.err.find("offset 4: memo entry used that the message did not define") != std::string::npos);
  }
  SUBCASE("a message pickletools rejects: no MARK") {
    const auto r = dis("N.]e."s);
    CHECK(r.status == 1);
    CHECK(r.out.find("    1: e    APPENDS    no MARK exists on stack\n") != std::string::npos);
    CHECK(r.err == "pickleway dis: message 2 at offset 2: no MARK exists on stack\n");
  }
}

TEST_CASE("pickleway dis takes messages up to --max-message, 1GiB by default") {
  const auto dir = test::make_temp_dir();
  const auto big = dir / "big.pickle";
  {
    // What numpy writes for a 70 MiB array, in outline: one BINBYTES8.
    const std::uint64_t size = std::uint64_t{70} << 20;
    std::ofstream out(big, std::ios::binary);
    out << "\x80\x05\x8e";
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((size >> (8 * i)) & 0xFF));
    const std::string chunk(1 << 20, 'x');
    for (std::uint64_t i = 0; i < (size >> 20); ++i) out << chunk;
    out << ".";
  }
  const auto whole = test::run({PICKLEWAY_BINARY, "dis", big.string()});
  CHECK(whole.exit_status == 0);
  CHECK(whole.out.find("highest protocol among opcodes = 4") != std::string::npos);
  const auto capped = test::run({"sh", "-c", test::quote(PICKLEWAY_BINARY) + " dis " +
                                                 test::quote(big.string()) + " --max-message 64MiB 2>&1"});
  CHECK(capped.exit_status == 1);
  CHECK(capped.out.find("message larger than max_message") != std::string::npos);
  CHECK(capped.out.find("raise it with --max-message SIZE") != std::string::npos);
  CHECK(test::run({PICKLEWAY_BINARY, "dis", big.string(), "--max-message", "lots"}).exit_status == 2);
  std::filesystem::remove_all(dir);
}

TEST_CASE("pickleway dis reads a file or standard input and sets its exit status") {
  const auto dir = test::make_temp_dir();
  const auto good = dir / "good.pickle";
  const auto bad = dir / "bad.pickle";
  std::ofstream(good, std::ios::binary) << "N.K\x05.";
  std::ofstream(bad, std::ios::binary) << "N.\xff";
  const auto ok = test::run({PICKLEWAY_BINARY, "dis", good.string()});
  CHECK(ok.exit_status == 0);
  CHECK(ok.out.find("=== message 2 at offset 2 (3 bytes)") != std::string::npos);
  const auto piped = test::run({"sh", "-c", std::string(PICKLEWAY_BINARY) + " dis - < " + test::quote(good.string())});
  CHECK(piped.out == ok.out);
  CHECK(test::run({PICKLEWAY_BINARY, "dis", bad.string()}).exit_status == 1);
  CHECK(test::run({PICKLEWAY_BINARY, "dis", (dir / "missing").string()}).exit_status == 2);
  CHECK(test::run({PICKLEWAY_BINARY, "frobnicate"}).exit_status == 2);
  std::filesystem::remove_all(dir);
}
