// The disassembler over any message, and `pickleway dis` over any stream:
// no input may crash it, throw anything but std::bad_alloc (none is thrown
// at these sizes), or make text more than linear in its size; a text cut
// at a limit stays within it.
//
// Input: one byte of flags (bits 0-1: the text limit, of 4 choices; bit 2:
// the stream path with a max_message of 64 bytes), then the message or
// stream.
#include <sstream>
#include <string>

#include <pickleway/disassembler.hpp>

#include "fuzz_input.hpp"

namespace {

using namespace pickleway;

// A line per opcode (an opcode is a byte at least): the offset and code
// columns, 64 levels of indentation, a name, and an argument whose repr
// takes at most 10 characters a byte (\U0010ffff for 4 bytes of UTF-8,
// \xNN for 1), with a mark or memo note.
constexpr std::size_t line_bound = 400;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t flags = in.take();
  const fuzz::exact_copy copy(in.rest());
  const bytes_view message = copy.view();
  constexpr std::size_t limits[] = {SIZE_MAX, 0, 100, 4096};
  const std::size_t limit = limits[flags & 3];

  const dis_text dis = disassemble_message(message, limit);
  PICKLEWAY_FUZZ_CHECK(dis.text.size() <= limit);
  PICKLEWAY_FUZZ_CHECK(dis.text.size() <= line_bound * (message.size() + 1));
  if (dis.truncated) PICKLEWAY_FUZZ_CHECK(dis.text.size() == limit);
  if (!dis.truncated && dis.problem.empty())
    PICKLEWAY_FUZZ_CHECK(dis.text.find("highest protocol among opcodes = ") != std::string::npos);

  if (flags & 4) {
    std::istringstream stream(std::string(fuzz::text(message)));
    std::ostringstream out, err;
    const int status = disassemble_stream(stream, out, err, 64);
    PICKLEWAY_FUZZ_CHECK(status == 0 || status == 1);
    PICKLEWAY_FUZZ_CHECK((status == 1) == !err.str().empty());
    PICKLEWAY_FUZZ_CHECK(out.str().size() <= line_bound * (message.size() + 1) + 64 * message.size());
  }
  return 0;
}
