// The decoder of `framing: link` (core/src/engine/link_protocol.hpp): the
// hello and welcome that open a connection and the frames after it, over
// any bytes. Nothing crashes; every step consumes what it says and no more;
// a hello or welcome read back encodes to the bytes it was read from; a
// DATA frame never exceeds max_message.
//
// Input: one byte of flags (bits 0-1: max_message, of 4 choices), then the
// bytes: read as a hello, as a welcome, and as a run of frames.
#include <vector>

#include "engine/link_protocol.hpp"
#include "fuzz_input.hpp"

namespace {

using namespace pickleway;
namespace wire = pickleway::link_wire;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  constexpr std::uint64_t max_messages[] = {0, 16, 1 << 20, largest_max_message};
  const std::uint64_t max_message = max_messages[in.take() & 3];
  const fuzz::exact_copy copy(in.rest());
  const bytes_view bytes = copy.view();

  std::string error;
  wire::hello h;
  if (wire::parse(bytes, h, error) == wire::parse_status::done) {
    std::vector<std::uint8_t> again;
    wire::encode(h, again);
    PICKLEWAY_FUZZ_CHECK(again.size() == wire::hello_size && bytes.size() >= again.size());
    PICKLEWAY_FUZZ_CHECK(std::equal(again.begin(), again.end(), bytes.begin()));
  }
  wire::welcome w;
  if (wire::parse(bytes, w, error) == wire::parse_status::done) {
    std::vector<std::uint8_t> again;
    wire::encode(w, again);
    PICKLEWAY_FUZZ_CHECK(again.size() == wire::welcome_size);
    PICKLEWAY_FUZZ_CHECK(std::equal(again.begin(), again.end(), bytes.begin()));
  }

  // Frames, DATA payloads skipped as the link passes them on.
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const wire::frame f = wire::next_frame(bytes.subspan(pos), max_message);
    if (f.what == wire::frame::kind::need_more) break;
    if (f.what == wire::frame::kind::bad) {
      PICKLEWAY_FUZZ_CHECK(!f.error.empty());
      break;
    }
    PICKLEWAY_FUZZ_CHECK(f.consumed > 0 && f.consumed <= bytes.size() - pos);
    pos += f.consumed;
    if (f.what == wire::frame::kind::data) {
      PICKLEWAY_FUZZ_CHECK(f.number <= max_message);
      if (f.number > bytes.size() - pos) break;
      pos += static_cast<std::size_t>(f.number);
    }
  }
  return 0;
}
