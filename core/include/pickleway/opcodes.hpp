// The pickle opcode table: the one description of the format that the framer,
// `pickleway dis` and every pickle-inspecting filter walk.
//
// Transcribed from CPython's Lib/pickletools.py (protocols 0-5, 68 opcodes).
// The table is data; the static_asserts at the bottom check it at compile time
// and tests/core/opcodes_test.cpp checks it against the machine's pickletools.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace pickleway {

// How an opcode's argument is laid out in the stream (pickletools'
// ArgumentDescriptor names). The framer only needs the layout; the
// disassembler also needs the meaning, hence the many kinds.
enum class arg_kind : std::uint8_t {
  none,
  // fixed width, little-endian
  uint1, uint2, int4, uint4, uint8, float8,  // float8 is big-endian
  // a length, then that many bytes (skipped, never scanned)
  long1, long4,                              // two's complement integer
  string1, string4,                          // latin-1 text (Python 2 str)
  bytes1, bytes4, bytes8, bytearray8,
  unicodestring1, unicodestring4, unicodestring8,  // UTF-8
  // text up to and including '\n' (protocol 0/1 arguments)
  decimalnl_short, decimalnl_long, floatnl,
  stringnl,                // a quoted, escaped Python 2 string literal
  stringnl_noescape,       // a bare line
  stringnl_noescape_pair,  // two bare lines: module, then name
  unicodestringnl,         // raw-unicode-escape text
};

// True for the kinds that end at a '\n' (line terminators to keep track of).
constexpr bool is_text(arg_kind k) {
  return k >= arg_kind::decimalnl_short;
}

// Width of the length field of a length-prefixed kind; 0 for other kinds.
constexpr int length_prefix_width(arg_kind k) {
  switch (k) {
    case arg_kind::long1: case arg_kind::string1: case arg_kind::bytes1:
    case arg_kind::unicodestring1:
      return 1;
    case arg_kind::long4: case arg_kind::string4: case arg_kind::bytes4:
    case arg_kind::unicodestring4:
      return 4;
    case arg_kind::bytes8: case arg_kind::bytearray8:
    case arg_kind::unicodestring8:
      return 8;
    default:
      return 0;
  }
}

// Kinds whose 4-byte length is signed (a negative length is malformed).
constexpr bool has_signed_length(arg_kind k) {
  return k == arg_kind::long4 || k == arg_kind::string4;
}

// Width of a fixed-width argument; 0 for other kinds.
constexpr int fixed_width(arg_kind k) {
  switch (k) {
    case arg_kind::uint1: return 1;
    case arg_kind::uint2: return 2;
    case arg_kind::int4: case arg_kind::uint4: return 4;
    case arg_kind::uint8: case arg_kind::float8: return 8;
    default: return 0;
  }
}

// Every opcode by name; the value is the opcode byte.
enum class op : std::uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2',
  FLOAT = 'F', INT = 'I', BININT = 'J', BININT1 = 'K', LONG = 'L',
  BININT2 = 'M', NONE = 'N', PERSID = 'P', BINPERSID = 'Q', REDUCE = 'R',
  STRING = 'S', BINSTRING = 'T', SHORT_BINSTRING = 'U', UNICODE = 'V',
  BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd',
  EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h', INST = 'i',
  LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p',
  BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't',
  EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
  // protocol 2
  PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84,
  TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88,
  NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b,
  // protocol 3
  BINBYTES = 'B', SHORT_BINBYTES = 'C',
  // protocol 4
  SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
  // protocol 5
  BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98,
};

// One opcode: its byte, name, argument, the protocol that introduced it, and
// its effect on the unpickler's stack as pickletools states it (stack_before
// -> stack_after): `pops` plain items (those below the mark when
// `pops_to_mark`), then `pushes` items, or a mark when `pushes_mark`.
struct opcode_info {
  op code;
  std::string_view name;
  arg_kind arg;
  std::uint8_t proto;
  std::uint8_t pops;
  bool pops_to_mark;
  std::uint8_t pushes;
  bool pushes_mark;
};

namespace detail {
using a = arg_kind;
constexpr opcode_info row(op c, std::string_view n, arg_kind k,
                          std::uint8_t proto, std::uint8_t pops,
                          bool to_mark, std::uint8_t pushes,
                          bool push_mark = false) {
  return {c, n, k, proto, pops, to_mark, pushes, push_mark};
}
}  // namespace detail

// In pickletools' order.
inline constexpr std::array<opcode_info, 68> opcode_table = [] {
  using detail::row;
  using detail::a;
  constexpr bool M = true;  // pops to mark
  return std::array<opcode_info, 68>{{
      row(op::INT, "INT", a::decimalnl_short, 0, 0, false, 1),
      row(op::BININT, "BININT", a::int4, 1, 0, false, 1),
      row(op::BININT1, "BININT1", a::uint1, 1, 0, false, 1),
      row(op::BININT2, "BININT2", a::uint2, 1, 0, false, 1),
      row(op::LONG, "LONG", a::decimalnl_long, 0, 0, false, 1),
      row(op::LONG1, "LONG1", a::long1, 2, 0, false, 1),
      row(op::LONG4, "LONG4", a::long4, 2, 0, false, 1),
      row(op::STRING, "STRING", a::stringnl, 0, 0, false, 1),
      row(op::BINSTRING, "BINSTRING", a::string4, 1, 0, false, 1),
      row(op::SHORT_BINSTRING, "SHORT_BINSTRING", a::string1, 1, 0, false, 1),
      row(op::BINBYTES, "BINBYTES", a::bytes4, 3, 0, false, 1),
      row(op::SHORT_BINBYTES, "SHORT_BINBYTES", a::bytes1, 3, 0, false, 1),
      row(op::BINBYTES8, "BINBYTES8", a::bytes8, 4, 0, false, 1),
      row(op::BYTEARRAY8, "BYTEARRAY8", a::bytearray8, 5, 0, false, 1),
      row(op::NEXT_BUFFER, "NEXT_BUFFER", a::none, 5, 0, false, 1),
      row(op::READONLY_BUFFER, "READONLY_BUFFER", a::none, 5, 1, false, 1),
      row(op::NONE, "NONE", a::none, 0, 0, false, 1),
      row(op::NEWTRUE, "NEWTRUE", a::none, 2, 0, false, 1),
      row(op::NEWFALSE, "NEWFALSE", a::none, 2, 0, false, 1),
      row(op::UNICODE, "UNICODE", a::unicodestringnl, 0, 0, false, 1),
      row(op::SHORT_BINUNICODE, "SHORT_BINUNICODE", a::unicodestring1, 4, 0, false, 1),
      row(op::BINUNICODE, "BINUNICODE", a::unicodestring4, 1, 0, false, 1),
      row(op::BINUNICODE8, "BINUNICODE8", a::unicodestring8, 4, 0, false, 1),
      row(op::FLOAT, "FLOAT", a::floatnl, 0, 0, false, 1),
      row(op::BINFLOAT, "BINFLOAT", a::float8, 1, 0, false, 1),
      row(op::EMPTY_LIST, "EMPTY_LIST", a::none, 1, 0, false, 1),
      row(op::APPEND, "APPEND", a::none, 0, 2, false, 1),
      row(op::APPENDS, "APPENDS", a::none, 1, 1, M, 1),
      row(op::LIST, "LIST", a::none, 0, 0, M, 1),
      row(op::EMPTY_TUPLE, "EMPTY_TUPLE", a::none, 1, 0, false, 1),
      row(op::TUPLE, "TUPLE", a::none, 0, 0, M, 1),
      row(op::TUPLE1, "TUPLE1", a::none, 2, 1, false, 1),
      row(op::TUPLE2, "TUPLE2", a::none, 2, 2, false, 1),
      row(op::TUPLE3, "TUPLE3", a::none, 2, 3, false, 1),
      row(op::EMPTY_DICT, "EMPTY_DICT", a::none, 1, 0, false, 1),
      row(op::DICT, "DICT", a::none, 0, 0, M, 1),
      row(op::SETITEM, "SETITEM", a::none, 0, 3, false, 1),
      row(op::SETITEMS, "SETITEMS", a::none, 1, 1, M, 1),
      row(op::EMPTY_SET, "EMPTY_SET", a::none, 4, 0, false, 1),
      row(op::ADDITEMS, "ADDITEMS", a::none, 4, 1, M, 1),
      row(op::FROZENSET, "FROZENSET", a::none, 4, 0, M, 1),
      row(op::POP, "POP", a::none, 0, 1, false, 0),
      row(op::DUP, "DUP", a::none, 0, 1, false, 2),
      row(op::MARK, "MARK", a::none, 0, 0, false, 0, true),
      row(op::POP_MARK, "POP_MARK", a::none, 1, 0, M, 0),
      row(op::GET, "GET", a::decimalnl_short, 0, 0, false, 1),
      row(op::BINGET, "BINGET", a::uint1, 1, 0, false, 1),
      row(op::LONG_BINGET, "LONG_BINGET", a::uint4, 1, 0, false, 1),
      row(op::PUT, "PUT", a::decimalnl_short, 0, 0, false, 0),
      row(op::BINPUT, "BINPUT", a::uint1, 1, 0, false, 0),
      row(op::LONG_BINPUT, "LONG_BINPUT", a::uint4, 1, 0, false, 0),
      row(op::MEMOIZE, "MEMOIZE", a::none, 4, 1, false, 1),
      row(op::EXT1, "EXT1", a::uint1, 2, 0, false, 1),
      row(op::EXT2, "EXT2", a::uint2, 2, 0, false, 1),
      row(op::EXT4, "EXT4", a::int4, 2, 0, false, 1),
      row(op::GLOBAL, "GLOBAL", a::stringnl_noescape_pair, 0, 0, false, 1),
      row(op::STACK_GLOBAL, "STACK_GLOBAL", a::none, 4, 2, false, 1),
      row(op::REDUCE, "REDUCE", a::none, 0, 2, false, 1),
      row(op::BUILD, "BUILD", a::none, 0, 2, false, 1),
      row(op::INST, "INST", a::stringnl_noescape_pair, 0, 0, M, 1),
      row(op::OBJ, "OBJ", a::none, 1, 0, M, 1),
      row(op::NEWOBJ, "NEWOBJ", a::none, 2, 2, false, 1),
      row(op::NEWOBJ_EX, "NEWOBJ_EX", a::none, 4, 3, false, 1),
      row(op::PROTO, "PROTO", a::uint1, 2, 0, false, 0),
      row(op::STOP, "STOP", a::none, 0, 1, false, 0),
      row(op::FRAME, "FRAME", a::uint8, 4, 0, false, 0),
      row(op::PERSID, "PERSID", a::stringnl_noescape, 0, 0, false, 1),
      row(op::BINPERSID, "BINPERSID", a::none, 1, 1, false, 1),
  }};
}();

inline constexpr int highest_protocol = 5;

namespace detail {
// Index from opcode byte to table row; -1 where the byte is no opcode.
inline constexpr std::array<std::int8_t, 256> opcode_index = [] {
  std::array<std::int8_t, 256> index{};
  index.fill(-1);
  for (std::size_t i = 0; i < opcode_table.size(); ++i)
    index[static_cast<std::uint8_t>(opcode_table[i].code)] =
        static_cast<std::int8_t>(i);
  return index;
}();

constexpr bool table_is_consistent() {
  int defined = 0;
  for (const std::int8_t i : opcode_index) defined += i >= 0;
  if (defined != static_cast<int>(opcode_table.size())) return false;  // a duplicate byte
  for (const auto& o : opcode_table) {
    if (o.name.empty() || o.proto > highest_protocol) return false;
    if (o.pushes_mark && (o.pops || o.pops_to_mark || o.pushes)) return false;
  }
  return true;
}
static_assert(table_is_consistent(), "opcode table: duplicate byte or bad row");
}  // namespace detail

// The row for an opcode byte, or nullptr when the byte is no opcode.
constexpr const opcode_info* find_opcode(std::uint8_t byte) {
  const int i = detail::opcode_index[byte];
  return i < 0 ? nullptr : &opcode_table[static_cast<std::size_t>(i)];
}

static_assert(find_opcode('.')->code == op::STOP);
static_assert(find_opcode(0x98)->name == "READONLY_BUFFER");
static_assert(find_opcode('\n') == nullptr);

}  // namespace pickleway
