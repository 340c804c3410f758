// A walk over the opcodes of one whole message, each with its argument
// decoded, as pickletools.genops yields them.
//
// The one opcode walker of every path that inspects messages: `dis`, the
// filters, pickle_machine.hpp. Only the framer, whose job is to find where
// each message of a stream ends as fast as it can, has a loop of its own
// over the same opcode table (docs/framing.md says what lives where).
//
// It refuses what the framer refuses: a byte that is no opcode, a negative
// length, an argument running past the message, a text argument CPython
// would not read, a FRAME whose length does not end on an opcode boundary,
// an unknown protocol. Iterative, allocates nothing but an error's text.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <optional>
#include <string_view>

#include "pickleway/framer.hpp"
#include "pickleway/opcodes.hpp"

namespace pickleway {

// What an argument decodes to, by its arg_kind (pickletools'
// ArgumentDescriptor readers).
enum class value_form : std::uint8_t {
  none,        // the opcode has no argument
  integer,     // `integer`: a fixed-width integer (uint1 ... uint8, int4), or
               // the decimal of INT, GET or PUT when it fits in 64 bits
  boolean,     // `integer` 0 or 1: INT's "00" and "01", protocol 0's False and True
  decimal,     // `text`: decimal digits and sign, of LONG (its L dropped) or of
               // an INT too large for `integer`
  long_bytes,  // `text`: LONG1 and LONG4's little-endian two's complement bytes
  floating,    // `floating`: FLOAT, BINFLOAT
  bytes,       // `text`: the payload of BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
  text,        // `text`: a string, in `encoding`
  name_pair,   // `text`, `second`: GLOBAL and INST's module and name lines
};

// How the bytes of a text argument are to be read.
enum class text_encoding : std::uint8_t {
  utf8,                // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
  latin1,              // SHORT_BINSTRING, BINSTRING: a Python 2 str's bytes
  escaped,             // STRING: a quoted Python 2 literal, quotes and escapes kept
  raw_unicode_escape,  // UNICODE
  line,                // PERSID, and GLOBAL and INST's lines: the line as written
};

// One opcode of a message. The views point into the message walked. Only
// the fields that `form` names are set; the others hold what an earlier
// opcode left (the walk does not clear them, for speed).
//
// A text argument's line is given as written, without its '\n' but with a
// '\r' a CRLF writer put before it: CPython reads that '\r' as part of the
// argument (pickletools shows it), the framer and the newline filter see
// a CRLF line end. The decimal forms have it removed.
struct pickle_op {
  const opcode_info* info = nullptr;
  std::size_t pos = 0;  // of the opcode byte, from the message start
  std::size_t end = 0;  // one past its argument: where the next opcode is
  value_form form = value_form::none;
  text_encoding encoding = text_encoding::utf8;
  std::int64_t integer = 0;
  double floating = 0;
  std::string_view text;
  std::string_view second;

  op code() const { return info->code; }
};

// A text argument's line without the '\r' a CRLF writer put before its
// '\n' (what the framer reads, and the newline filter removes).
constexpr std::string_view without_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// The str a Python 3 Unpickler makes of a string opcode (SHORT_BINUNICODE,
// BINUNICODE, BINUNICODE8, UNICODE, and Python 2's STRING, BINSTRING,
// SHORT_BINSTRING), as the bytes of its UTF-8 form, when the argument holds
// them verbatim; nullopt for any other opcode, and for an argument the
// unpickler would decode into something else (escapes; UNICODE's bytes
// above 0x7f, which raw-unicode-escape reads as latin-1; a Python 2 str
// that is not ASCII). UTF-8 arguments are taken as they are: bytes CPython
// cannot decode make no str at all, so they need not be told apart.
struct str_constant {
  std::string_view text;
  // A Python 2 str: a str only where the consumer's Unpickler has the
  // default encoding='ASCII' (or 'latin1'); with encoding='bytes' it is bytes.
  bool python2 = false;
};
std::optional<str_constant> string_constant(const pickle_op& o);

// Steps through one message:
//
//   pickle_walk walk(message);
//   for (pickle_op o; walk.next(o);) { ... }
//   if (walk.failed()) ... walk.error() ...
//
// next() yields STOP, then returns false; the walk never reads past STOP,
// so bytes after it are the caller's to judge (stop_end() says where).
class pickle_walk {
 public:
  explicit pickle_walk(bytes_view message) : message_(message) {}

  // The next opcode; false after STOP, or at an error.
  bool next(pickle_op& o);

  bool stopped() const { return stopped_; }
  bool failed() const { return error_.code != errc::ok; }
  // Where and why the message is malformed; offsets from its start.
  const framing_error& error() const { return error_; }
  // One past STOP, once stopped().
  std::size_t stop_end() const { return pos_; }
  bytes_view message() const { return message_; }

 private:
  [[gnu::cold]] bool fail(errc code, std::size_t at, std::string detail);
  [[gnu::cold]] bool fail_runs_past(std::size_t pos);
  bool decode_text(pickle_op& o, std::size_t nl);

  bytes_view message_;
  std::size_t pos_ = 0;
  std::size_t frame_end_ = 0;  // end of the FRAME being walked; 0 outside frames
  bool stopped_ = false;
  framing_error error_;
};

namespace detail {

// The opcode table re-indexed by byte and cut to what next() reads: one
// load gives an opcode's layout and what its argument decodes to.
enum class layout : std::uint8_t { invalid, none, fixed, prefixed, text };

struct alignas(8) walk_step {
  std::int8_t row = -1;  // in opcode_table
  layout lay = layout::invalid;
  std::uint8_t width = 0;  // of a fixed argument, or of a length prefix
  value_form form = value_form::none;
  text_encoding encoding = text_encoding::utf8;
  bool signed_value = false;  // int4, and the signed lengths of LONG4 and BINSTRING
  bool special = false;       // FRAME, PROTO, STOP: more to check
};

constexpr walk_step step_of(std::size_t row) {
  const opcode_info& info = opcode_table[row];
  const arg_kind k = info.arg;
  walk_step s;
  s.row = static_cast<std::int8_t>(row);
  s.special = info.code == op::FRAME || info.code == op::PROTO || info.code == op::STOP;
  if (fixed_width(k)) {
    s.lay = layout::fixed;
    s.width = static_cast<std::uint8_t>(fixed_width(k));
    s.form = k == arg_kind::float8 ? value_form::floating : value_form::integer;
    s.signed_value = k == arg_kind::int4;
  } else if (length_prefix_width(k)) {
    s.lay = layout::prefixed;
    s.width = static_cast<std::uint8_t>(length_prefix_width(k));
    s.signed_value = has_signed_length(k);
    switch (k) {
      case arg_kind::long1: case arg_kind::long4: s.form = value_form::long_bytes; break;
      case arg_kind::string1: case arg_kind::string4:
        s.form = value_form::text;
        s.encoding = text_encoding::latin1;
        break;
      case arg_kind::unicodestring1: case arg_kind::unicodestring4: case arg_kind::unicodestring8:
        s.form = value_form::text;
        break;
      default: s.form = value_form::bytes; break;
    }
  } else if (is_text(k)) {
    s.lay = layout::text;
  } else {
    s.lay = layout::none;
  }
  return s;
}

constexpr std::array<walk_step, 256> walk_steps = [] {
  std::array<walk_step, 256> steps{};
  for (std::size_t row = 0; row < opcode_table.size(); ++row)
    steps[static_cast<std::uint8_t>(opcode_table[row].code)] = step_of(row);
  return steps;
}();

static_assert(std::endian::native == std::endian::little, "next() loads little-endian arguments with memcpy");

// A little-endian unsigned integer of 1, 2, 4 or 8 bytes, loaded with
// memcpy (one instruction) where the host's order is the pickle's.
inline std::uint64_t load_le(const std::uint8_t* p, std::size_t width) {
  switch (width) {
    case 1: return p[0];
    case 2: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case 4: {
      std::uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    default: {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
  }
}

}  // namespace detail

// Inline: it runs once per opcode on every path that inspects a message.
inline bool pickle_walk::next(pickle_op& o) {
  if (stopped_ || failed()) return false;
  const std::uint8_t* const base = message_.data();
  const std::size_t size = message_.size();
  const std::size_t pos = pos_;
  if (pos >= size) {
    return fail(errc::incomplete_pickle, pos,
                "the message ends at byte " + std::to_string(size) + " without a STOP opcode");
  }
  const detail::walk_step s = detail::walk_steps[base[pos]];
  if (s.lay == detail::layout::invalid) return fail(errc::unknown_opcode, pos, {});
  o.info = &opcode_table[static_cast<std::size_t>(s.row)];
  o.pos = pos;
  o.form = s.form;
  o.encoding = s.encoding;
  const std::size_t arg = pos + 1;

  switch (s.lay) {
    case detail::layout::invalid:
    case detail::layout::none:
      o.end = arg;
      break;
    case detail::layout::fixed: {
      if (size - arg < s.width) return fail_runs_past(pos);
      o.end = arg + s.width;
      const std::uint64_t value = detail::load_le(base + arg, s.width);
      if (s.form == value_form::floating) {
        o.floating = std::bit_cast<double>(__builtin_bswap64(value));  // big-endian
      } else {
        o.integer = s.signed_value ? static_cast<std::int32_t>(value) : static_cast<std::int64_t>(value);
      }
      break;
    }
    case detail::layout::prefixed: {
      if (size - arg < s.width) return fail_runs_past(pos);
      const std::uint64_t length = detail::load_le(base + arg, s.width);
      if (s.signed_value && (length & 0x8000'0000u))
        return fail(errc::bad_length, pos, std::to_string(static_cast<std::int32_t>(length)));
      const std::size_t payload = arg + s.width;
      if (length > size - payload) return fail_runs_past(pos);
      o.end = payload + static_cast<std::size_t>(length);
      o.text = {reinterpret_cast<const char*>(base + payload), static_cast<std::size_t>(length)};
      break;
    }
    case detail::layout::text: {
      const void* nl = std::memchr(base + arg, '\n', size - arg);
      if (nl && o.info->arg == arg_kind::stringnl_noescape_pair) {
        const auto* second = static_cast<const std::uint8_t*>(nl) + 1;
        nl = std::memchr(second, '\n', static_cast<std::size_t>(base + size - second));
      }
      if (!nl)
        return fail(errc::incomplete_pickle, pos,
                    "no '\\n' ends its text argument before the end of the message");
      const auto line_end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - base);
      o.end = line_end + 1;
      if (!decode_text(o, line_end)) return false;
      break;
    }
  }

  // A FRAME's bytes hold whole opcodes, and frames do not nest.
  if (pos < frame_end_ && o.end > frame_end_)
    return fail(errc::frame_misaligned, pos,
                "an opcode crosses the end of the FRAME at " + std::to_string(frame_end_));
  if (s.special) {
    switch (o.code()) {
      case op::FRAME:
        if (pos < frame_end_)
          return fail(errc::frame_misaligned, pos,
                      "a FRAME begins inside the FRAME that ends at " + std::to_string(frame_end_));
        if (static_cast<std::uint64_t>(o.integer) > size - o.end)
          return fail(errc::frame_misaligned, pos,
                      "a FRAME of " + std::to_string(static_cast<std::uint64_t>(o.integer)) +
                          " bytes runs past the end of the message");
        frame_end_ = o.end + static_cast<std::size_t>(o.integer);
        break;
      case op::PROTO:
        if (o.integer > highest_protocol)
          return fail(errc::unsupported_protocol, pos, std::to_string(o.integer));
        break;
      default:  // STOP
        if (frame_end_ > o.end)
          return fail(errc::frame_misaligned, pos,
                      "the message ends inside the FRAME that ends at " + std::to_string(frame_end_));
        stopped_ = true;
        break;
    }
  }
  pos_ = o.end;
  return true;
}



}  // namespace pickleway
