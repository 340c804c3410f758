#include "feed.hpp"

#include <algorithm>
#include <memory>
#include <random>

namespace pickleway::test {

chunker random_chunks(std::uint32_t seed, std::size_t largest) {
  auto engine = std::make_shared<std::mt19937>(seed);
  return [engine, largest] {
    std::uniform_int_distribution<std::size_t> size(1, largest);
    return size(*engine);
  };
}

namespace {

framed_message copy_out(const message_info& m) {
  return {m.stream_offset, m.size, m.protocol, m.undefined_memo_uses, m.line_ends, m.frames};
}

}  // namespace

feed_result feed(const framer_options& options, bytes_view stream, const chunker& next_chunk,
                 bool move_bytes) {
  framer f(options);
  feed_result result;
  std::size_t consumed = 0, available = 0;
  std::vector<std::uint8_t> moved;
  for (;;) {
    bytes_view data = stream.subspan(consumed, available - consumed);
    if (move_bytes) {
      moved.assign(data.begin(), data.end());
      moved.reserve(moved.size() + 1 + (moved.capacity() & 1));  // a new place, often
      data = bytes_view(moved);
    }
    const bool at_end = available == stream.size();
    const frame_status status = f.next(data);
    switch (status) {
      case frame_status::message:
        result.messages.push_back(copy_out(f.message()));
        consumed += f.message().size;
        continue;
      case frame_status::stray:
        result.strays.emplace_back(f.stream_offset() - f.stray_size(),
                                   std::string(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(f.stray_size())));
        consumed += f.stray_size();
        continue;
      case frame_status::error:
        result.error = f.error();
        return result;
      case frame_status::end:
        break;
      case frame_status::need_more:
        if (!at_end) {
          available += std::min(next_chunk(), stream.size() - available);
          continue;
        }
        switch (f.finish(data)) {
          case frame_status::end:
            result.clean_end = true;
            return result;
          case frame_status::stray:
            result.strays.emplace_back(f.stream_offset() - f.stray_size(),
                                       std::string(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(f.stray_size())));
            consumed += f.stray_size();
            continue;
          default:
            result.error = f.error();
            return result;
        }
    }
    return result;
  }
}

}  // namespace pickleway::test
