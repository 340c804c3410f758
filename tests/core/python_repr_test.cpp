// Python's repr() as `dis` and error messages print it, against python3.
#include <doctest/doctest.h>

#include <bit>
#include <sstream>

#include "../support/process.hpp"
#include "pickleway/python_repr.hpp"

using namespace pickleway;
using namespace std::string_view_literals;

namespace {

bytes_view view(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Each output line of `script`, run by python3.
std::vector<std::string> python_lines(const char* script) {
  const auto r = test::run({PICKLEWAY_PYTHON, "-c", script});
  REQUIRE(r.exit_status == 0);
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("float_repr prints what repr(float) prints") {
  // Python prints the bits of each double (hex) and its repr.
  const auto lines = python_lines(R"(
import random, struct
r = random.Random(3)
values = [0.0, -0.0, 1.0, 0.1, 1e16, 1e15, 123456789012345.6, 1.5e-5, 1e-4, 0.0001234,
          1e-300, 5e-324, 1.7976931348623157e308, 2.5, -1e22, 1e100, 3.14159]
values += [r.uniform(-1e6, 1e6) for _ in range(300)]
values += [struct.unpack('<d', r.getrandbits(64).to_bytes(8, 'little'))[0] for _ in range(700)]
for v in values:
    print(struct.unpack('<Q', struct.pack('<d', v))[0], repr(v))
)");
  CHECK(lines.size() > 1000);
  for (const auto& line : lines) {
    std::istringstream in(line);
    std::uint64_t bits;
    std::string want;
    in >> bits >> want;
    CHECK(float_repr(std::bit_cast<double>(bits)) == want);
  }
}

TEST_CASE("long_repr reads little-endian two's complement as Python's int") {
  CHECK(long_repr(view(""sv)) == "0");
  CHECK(long_repr(view("\xff"sv)) == "-1");
  CHECK(long_repr(view("\x00\x80"sv)) == "-32768");
  CHECK(long_repr(view("\x00\x80\x00"sv)) == "32768");
  CHECK(long_repr(view("\x00\x00\x00\x00\x00\x00\x00\x00\x01"sv)) == "18446744073709551616");
  CHECK(long_repr(view("\x00\x00\x00\x00\x00\x00\x00\x00\xff"sv)) == "-18446744073709551616");
  CHECK(long_repr(view("\x01\x00\x00\x00\x00\x00\x00\x80"sv)) == "-9223372036854775807");
}

TEST_CASE("bytes_repr and str_repr quote and escape as Python does") {
  CHECK(bytes_repr(view("a'b"sv)) == "b\"a'b\"");
  CHECK(bytes_repr(view("a'\""sv)) == "b'a\\'\"'");
  CHECK(bytes_repr(view("\r\n\t\\\x00\x7f\x80"sv)) == "b'\\r\\n\\t\\\\\\x00\\x7f\\x80'");
  CHECK(str_repr(U"caf\u00e9 \u200b\u00a0\U0001F600") == "'caf\xc3\xa9 \\u200b\\xa0\xf0\x9f\x98\x80'");
  CHECK(str_repr(std::u32string{0x1a, 0xD800}) == "'\\x1a\\ud800'");
  CHECK(preview(view(std::string(70, 'x')), 4) == "b'xxxx'... (66 more bytes)");
}

TEST_CASE("the text codecs of protocol 0 decode as CPython's") {
  CHECK(decode_raw_unicode_escape(view("a\\u00e9\\\\u0041\\x"sv)) == std::u32string(U"a\u00e9\\\\u0041\\x"));
  CHECK_FALSE(decode_raw_unicode_escape(view("\\u12"sv)).has_value());
  CHECK(escape_decode("a\\n\\x41\\101\\q") == std::string("a\nAA\\q"));
  CHECK(decimal_repr("-0012") == "-12");
  CHECK(decimal_repr("+000") == "0");
  CHECK_FALSE(decode_utf8(view("\xc3"sv)).has_value());
  CHECK(decode_utf8(view("\xed\xa0\x80"sv)) == std::u32string(1, 0xD800));
}
