// The framer over any byte stream, fed whole and again in chunks the input
// chooses, each chunk in a fresh heap block of its exact size (the session's
// buffer moves bytes too). Both framings must be identical, message for
// message, and each answer must keep the framer's contract. Each message it
// hands out must also be one the walk (pickle_walk.hpp) takes to its STOP,
// with the same frames and text lines: the two accept the same messages.
//
// Input: one byte of options (on_stray, memo, max_message), one byte N,
// N % 16 chunk sizes (cycled; 0 means 1), then the stream.
#include <algorithm>
#include <string>
#include <vector>

#include <pickleway/framer.hpp>
#include <pickleway/pickle_walk.hpp>

#include "fuzz_input.hpp"

namespace {

using namespace pickleway;
using fuzz::exact_copy;

struct event {
  frame_status status = frame_status::end;
  std::uint64_t offset = 0;  // stream offset of its first byte (error: of the error)
  std::size_t size = 0;      // message or stray size
  errc code = errc::ok;
  int protocol = 0;
  std::size_t undefined_memo_uses = 0;
  std::vector<std::uint32_t> line_ends, frames;
  bool operator==(const event&) const = default;
};

event plain(frame_status status, std::uint64_t offset, std::size_t size, errc code = errc::ok) {
  event e;
  e.status = status;
  e.offset = offset;
  e.size = size;
  e.code = code;
  return e;
}

// Checks what a message_info claims against the bytes, and copies it out.
event message_event(const framer& f, bytes_view data, std::uint64_t consumed) {
  const message_info& m = f.message();
  PICKLEWAY_FUZZ_CHECK(m.size > 0 && m.size <= data.size());
  PICKLEWAY_FUZZ_CHECK(m.size <= f.options().max_message);
  PICKLEWAY_FUZZ_CHECK(m.stream_offset == consumed);
  PICKLEWAY_FUZZ_CHECK(data[m.size - 1] == '.');  // it ends at its STOP
  PICKLEWAY_FUZZ_CHECK(m.protocol >= 0 && m.protocol <= 5);
  event e = plain(frame_status::message, m.stream_offset, m.size);
  e.protocol = m.protocol;
  e.undefined_memo_uses = m.undefined_memo_uses;
  if (f.options().memo == memo_policy::error) PICKLEWAY_FUZZ_CHECK(e.undefined_memo_uses == 0);
  for (const std::uint32_t at : m.line_ends) PICKLEWAY_FUZZ_CHECK(at < m.size && data[at] == '\n');
  for (const std::uint32_t at : m.frames) PICKLEWAY_FUZZ_CHECK(at < m.size && data[at] == 0x95);
  pickle_walk walk(data.first(m.size));
  std::size_t frames = 0, line_ends = 0;
  for (pickle_op o; walk.next(o);) {
    frames += o.code() == op::FRAME;
    line_ends += is_text(o.info->arg) ? (o.info->arg == arg_kind::stringnl_noescape_pair ? 2 : 1) : 0;
  }
  PICKLEWAY_FUZZ_CHECK(!walk.failed() && walk.stop_end() == m.size);
  PICKLEWAY_FUZZ_CHECK(frames == m.frames.size() && line_ends == m.line_ends.size());
  e.line_ends = m.line_ends;
  e.frames = m.frames;
  return e;
}

// Frames `stream`, `chunk()` more bytes becoming available each time; every
// call sees the unconsumed bytes copied to a new block of their exact size.
template <typename Chunker>
std::vector<event> frame(const framer_options& options, bytes_view stream, Chunker chunk) {
  framer f(options);
  std::vector<event> events;
  std::size_t consumed = 0, available = 0;
  for (;;) {
    const exact_copy copy(stream.subspan(consumed, available - consumed));
    const bytes_view data = copy.view();
    const bool at_end = available == stream.size();
    frame_status status = f.next(data);
    if (status == frame_status::need_more) {
      // It must ask for more than it has, or a caller would wait forever.
      PICKLEWAY_FUZZ_CHECK(f.bytes_wanted() > data.size());
      PICKLEWAY_FUZZ_CHECK(f.stream_offset() == consumed);
      if (!at_end) {
        available += std::min(chunk(), stream.size() - available);
        continue;
      }
      status = f.finish(data);
    }
    switch (status) {
      case frame_status::message:
        events.push_back(message_event(f, data, consumed));
        consumed += f.message().size;
        PICKLEWAY_FUZZ_CHECK(f.stream_offset() == consumed);
        continue;
      case frame_status::stray:
        PICKLEWAY_FUZZ_CHECK(options.on_stray == stray_policy::divert);
        PICKLEWAY_FUZZ_CHECK(f.stray_size() > 0 && f.stray_size() <= data.size());
        events.push_back(plain(status, consumed, f.stray_size()));
        consumed += f.stray_size();
        PICKLEWAY_FUZZ_CHECK(f.stream_offset() == consumed);
        continue;
      case frame_status::error: {
        const framing_error& e = f.error();
        PICKLEWAY_FUZZ_CHECK(e.code != errc::ok);
        PICKLEWAY_FUZZ_CHECK(e.offset >= consumed && e.offset <= stream.size());
        PICKLEWAY_FUZZ_CHECK(!e.describe().empty());
        events.push_back(plain(status, e.offset, 0, e.code));
        // The error is sticky.
        PICKLEWAY_FUZZ_CHECK(f.next(data) == frame_status::error);
        return events;
      }
      case frame_status::end:
        PICKLEWAY_FUZZ_CHECK(at_end && consumed == stream.size());
        events.push_back(plain(status, consumed, 0));
        return events;
      case frame_status::need_more:
        break;
    }
    fuzz::broken("finish() said need_more", __FILE__, __LINE__);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t flags = in.take();
  framer_options options;
  options.on_stray = (flags & 1) ? stray_policy::divert : stray_policy::error;
  options.memo = (flags & 2) ? memo_policy::allow : memo_policy::error;
  constexpr std::uint64_t max_messages[] = {default_max_message, 2, 64, largest_max_message};
  options.max_message = max_messages[(flags >> 2) & 3];
  std::vector<std::size_t> chunks;
  for (std::size_t n = in.take() % 16; n > 0; --n) chunks.push_back(std::max<std::size_t>(in.take(), 1));
  if (chunks.empty()) chunks.push_back(1);
  const bytes_view stream = in.rest();

  const auto whole = frame(options, stream, [] { return SIZE_MAX; });
  std::size_t next = 0;
  const auto chunked = frame(options, stream, [&] { return chunks[next++ % chunks.size()]; });
  PICKLEWAY_FUZZ_CHECK(whole == chunked);
  return 0;
}
