// `pickleway dis`: disassembly in the layout of `python3 -m pickletools`,
// run on pickle_machine.hpp.
//
// Bounded: the indentation follows MARK depth up to 64 levels and stays
// there, so a message's text is linear in its size; the text goes out a
// line at a time, so nothing holds a whole message's text unless it asks to.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include "pickleway/framer.hpp"

namespace pickleway {

// The MARK depth past which the indentation stops growing.
inline constexpr std::size_t dis_max_indent_depth = 64;
// `pickleway dis --max-message`'s default.
inline constexpr std::uint64_t dis_default_max_message = std::uint64_t{1} << 30;

// Where disassembly text goes, a line at a time.
class dis_sink {
 public:
  virtual ~dis_sink() = default;
  // `text` is one line with its '\n'. False: no more is wanted, and the
  // disassembly stops there.
  virtual bool line(std::string_view text) = 0;
};

// Disassembles one whole message into `sink`: a line per opcode (offsets
// from the message start), then "highest protocol among opcodes = N". On a
// message pickletools.dis rejects (stack or memo misuse, an argument it
// cannot decode), returns its reason, the lines up to and including the
// offending opcode given; else "". Throws only std::bad_alloc.
std::string disassemble_message(bytes_view message, dis_sink& sink);

// The same into a string, cut at `limit` bytes (at a line's end when one
// fits); `truncated` says whether it was cut.
struct dis_text {
  std::string text;
  std::string problem;  // "" or pickletools' reason
  bool truncated = false;
};
dis_text disassemble_message(bytes_view message, std::size_t limit = SIZE_MAX);

// Splits `in` into messages and disassembles each under a header
// "=== message K at offset N (S bytes)". A bad stream, or a message larger
// than `max_message`: the complete messages are printed, then the error
// goes to `err`. Returns the exit status, 0 or 1; throws nothing.
int disassemble_stream(std::istream& in, std::ostream& out, std::ostream& err,
                       std::uint64_t max_message = dis_default_max_message);

}  // namespace pickleway
