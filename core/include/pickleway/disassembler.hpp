// `pickleway dis`: disassembly in the layout of `python3 -m pickletools`.
#pragma once

#include <iosfwd>
#include <string>

#include "pickleway/framer.hpp"

namespace pickleway {

// Appends pickletools.dis's text for one whole message to `out`: a line per
// opcode (offsets from the message start), then "highest protocol among
// opcodes = N". On a message pickletools.dis rejects (stack or memo misuse,
// an argument it cannot decode), returns pickletools' reason, with `out`
// holding the lines up to and including the offending opcode; else "".
std::string disassemble_message(bytes_view message, std::string& out);

// Splits `in` into messages and disassembles each under a header
// "=== message K at offset N (S bytes)". A bad stream: the complete messages
// are printed, then the error goes to `err`. Returns the exit status, 0 or 1.
int disassemble_stream(std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace pickleway
