// The opcode table against the machine's pickletools, row by row.
#include <doctest/doctest.h>

#include <map>
#include <sstream>

#include "../support/process.hpp"
#include "pickleway/opcodes.hpp"

using namespace pickleway;

namespace {

std::string_view kind_name(arg_kind k) {
  switch (k) {
    case arg_kind::none: return "None";
    case arg_kind::uint1: return "uint1";
    case arg_kind::uint2: return "uint2";
    case arg_kind::int4: return "int4";
    case arg_kind::uint4: return "uint4";
    case arg_kind::uint8: return "uint8";
    case arg_kind::float8: return "float8";
    case arg_kind::long1: return "long1";
    case arg_kind::long4: return "long4";
    case arg_kind::string1: return "string1";
    case arg_kind::string4: return "string4";
    case arg_kind::bytes1: return "bytes1";
    case arg_kind::bytes4: return "bytes4";
    case arg_kind::bytes8: return "bytes8";
    case arg_kind::bytearray8: return "bytearray8";
    case arg_kind::unicodestring1: return "unicodestring1";
    case arg_kind::unicodestring4: return "unicodestring4";
    case arg_kind::unicodestring8: return "unicodestring8";
    case arg_kind::decimalnl_short: return "decimalnl_short";
    case arg_kind::decimalnl_long: return "decimalnl_long";
    case arg_kind::floatnl: return "floatnl";
    case arg_kind::stringnl: return "stringnl";
    case arg_kind::stringnl_noescape: return "stringnl_noescape";
    case arg_kind::stringnl_noescape_pair: return "stringnl_noescape_pair";
    case arg_kind::unicodestringnl: return "unicodestringnl";
  }
  return "?";
}

// What the table says of one opcode, in the words the Python side prints.
std::string describe(const opcode_info& o) {
  std::ostringstream s;
  s << o.name << ' ' << int(static_cast<std::uint8_t>(o.code)) << ' ' << kind_name(o.arg) << ' '
    << int(o.proto) << " pops=" << int(o.pops) << " to_mark=" << o.pops_to_mark
    << " pushes=" << int(o.pushes) << " mark=" << o.pushes_mark;
  return s.str();
}

constexpr const char* python_side = R"(
import pickletools as p
for o in p.opcodes:
    before = [x.name for x in o.stack_before]
    after = [x.name for x in o.stack_after]
    to_mark = 'mark' in before
    pops = before.index('mark') if to_mark else len(before)
    push_mark = after == ['mark']
    print(o.name, ord(o.code), o.arg.name if o.arg else 'None', o.proto,
          'pops=%d' % pops, 'to_mark=%d' % to_mark,
          'pushes=%d' % (0 if push_mark else len(after)), 'mark=%d' % push_mark)
)";

}  // namespace

TEST_CASE("the opcode table matches pickletools, opcode for opcode") {
  const auto python = test::run({PICKLEWAY_PYTHON, "-c", python_side});
  REQUIRE(python.exit_status == 0);
  std::istringstream lines(python.out);
  std::string line;
  std::size_t i = 0;
  while (std::getline(lines, line)) {
    REQUIRE(i < opcode_table.size());
    CHECK(describe(opcode_table[i]) == line);
    ++i;
  }
  CHECK(i == opcode_table.size());
}

TEST_CASE("find_opcode knows exactly the 68 opcode bytes") {
  int known = 0;
  for (int b = 0; b < 256; ++b)
    if (const auto* o = find_opcode(static_cast<std::uint8_t>(b))) {
      ++known;
      CHECK(static_cast<int>(o->code) == b);
    }
  CHECK(known == 68);
}
