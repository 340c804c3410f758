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

#include <cstddef>
#include <cstdint>
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
  bool fail(errc code, std::size_t at, std::string detail);
  bool decode_text(pickle_op& o, std::size_t nl);

  bytes_view message_;
  std::size_t pos_ = 0;
  std::size_t frame_end_ = 0;  // end of the FRAME being walked; 0 outside frames
  bool stopped_ = false;
  framing_error error_;
};

}  // namespace pickleway
