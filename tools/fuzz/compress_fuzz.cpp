// The compress filter's restoring side, and its round trip, for each codec.
//
// Modes (input byte 0, bits 2-3; bits 0-1 pick zstd, lz4 or zlib):
//  0, 1  frames from the input into a receiving (b->a) filter instance: it
//        never crashes, what it restores is bounded by the codecs' largest
//        ratio, and once it failed it refuses everything after;
//  2     messages from the input compressed by a sending (a->b) instance
//        and restored by a receiving one: every message comes back equal;
//  3     as 2, with bytes of the frames corrupted on the way: the receiver
//        refuses or restores within bounds, never crashes.
//
// Then byte 1 (level), byte 2 (min_size), then the frames or messages, each
// behind a 16-bit little-endian length; in mode 3 each is followed by a
// 16-bit position and a byte to XOR there (0: untouched).
//
// The filter is compiled into this target, not loaded: its descriptor is
// the library's exported symbol. Only the filter's interface is used, so
// the target follows the codecs and the frame format as they change.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <pickleway/plugin.hpp>

#include "frame.hpp"
#include "fuzz_input.hpp"

extern "C" const void* pickleway_plugin;  // BOOST_DLL_ALIAS in compress.cpp

namespace {

using namespace pickleway;
using bytes = std::vector<std::uint8_t>;

const plugin_descriptor& compress_plugin() {
  const auto describe = reinterpret_cast<plugin_entry_fn*>(const_cast<void*>(pickleway_plugin));
  return *describe();
}

constexpr const char* codec_names[] = {"zstd", "lz4", "zlib"};

// Small levels keep each run fast (contexts are made per input); a high one
// per codec still takes the other code paths (zstd's capped tables, LZ4HC).
constexpr int levels[3][4] = {{3, 1, -5, 10}, {0, 3, -10, 9}, {6, 0, 1, 9}};
constexpr std::int64_t min_sizes[] = {0, 1, 16, 256};

// Restored bytes per frame byte can be no more than this: a zstd RLE block
// (3 bytes of header, 1 of data) restores at most 128 KiB; deflate and lz4
// ratios are far smaller.
constexpr std::size_t largest_ratio = 32768;
constexpr std::size_t largest_block = 128 * 1024;

struct instance {
  std::unique_ptr<filter_factory> factory;
  std::unique_ptr<filter> f;
};

// `level`: nullopt for the codec's default.
instance make(int codec, std::optional<int> level, std::int64_t min_size) {
  option_values values;
  values.set_where("fuzz");
  values.set("codec", {std::string(codec_names[codec]), "fuzz"});
  if (level) values.set("level", {std::int64_t{*level}, "fuzz"});
  values.set("min_size", {min_size, "fuzz"});
  option_error error;
  instance i;
  i.factory = compress_plugin().make_filter(values, error);
  if (!i.factory) fuzz::broken("compress refused valid options", __FILE__, __LINE__);
  std::string made_error;
  i.f = i.factory->make(open_context{"fuzz", 1, nullptr}, made_error);
  return i;
}

struct outcome {
  filter_result result;
  bytes out;
  std::string error;
};

outcome pass(filter& f, direction d, bytes_view in, std::uint64_t sequence) {
  const fuzz::exact_copy copy(in);
  message m(copy.view(), sequence);
  outcome o;
  o.result = f.on_message(d, m, o.error);
  PICKLEWAY_FUZZ_CHECK(o.result == filter_result::pass || o.result == filter_result::fail);
  PICKLEWAY_FUZZ_CHECK((o.result == filter_result::fail) == !o.error.empty());
  if (o.result == filter_result::pass) {
    PICKLEWAY_FUZZ_CHECK(m.replaced());
    o.out = m.take_replacement();
  }
  return o;
}

void restore_frames(fuzz::input& in, int codec) {
  auto receiver = make(codec, std::nullopt, 0);
  bool failed = false;
  for (std::uint64_t sequence = 1; !in.empty(); ++sequence) {
    const bytes_view frame = in.take_bytes(in.take16());
    const outcome o = pass(*receiver.f, direction::b_to_a, frame, sequence);
    if (failed) PICKLEWAY_FUZZ_CHECK(o.result == filter_result::fail);
    if (o.result == filter_result::fail) {
      failed = true;
      continue;
    }
    PICKLEWAY_FUZZ_CHECK(compress::is_frame(frame) && frame.size() >= compress::header_size);
    PICKLEWAY_FUZZ_CHECK(o.out.size() <= largest_ratio * frame.size() + largest_block);
  }
}

void round_trip(fuzz::input& in, int codec, std::uint8_t level_choice,
                std::uint8_t min_size_choice, bool corrupt) {
  const int level = levels[codec][level_choice % 4];
  const std::int64_t min_size = min_sizes[min_size_choice % 4];
  auto sender = make(codec, level, min_size);
  auto receiver = make(codec, level, min_size);
  bool corrupted = false;
  for (std::uint64_t sequence = 1; !in.empty(); ++sequence) {
    const bytes_view message = in.take_bytes(in.take16());
    const outcome sent = pass(*sender.f, direction::a_to_b, message, sequence);
    PICKLEWAY_FUZZ_CHECK(sent.result == filter_result::pass);
    bytes frame = sent.out;
    PICKLEWAY_FUZZ_CHECK(compress::is_frame(frame));
    if (corrupt) {
      const std::size_t at = in.take16();
      const std::uint8_t flip = in.take();
      if (flip != 0) {
        frame[at % frame.size()] ^= flip;
        corrupted = true;
      }
    }
    const outcome restored = pass(*receiver.f, direction::b_to_a, frame, sequence);
    if (corrupted) {
      // The frame's check is a short one over part of the message (see
      // frame.hpp): a corrupted frame may restore to other bytes, but
      // within the codec's bounds.
      PICKLEWAY_FUZZ_CHECK(restored.out.size() <= largest_ratio * frame.size() + largest_block);
      if (restored.result == filter_result::fail) return;  // the receiving stream is over
      continue;
    }
    if (restored.result == filter_result::fail) std::fprintf(stderr, "%s\n", restored.error.c_str());
    PICKLEWAY_FUZZ_CHECK(restored.result == filter_result::pass);
    PICKLEWAY_FUZZ_CHECK(restored.out.size() == message.size());
    PICKLEWAY_FUZZ_CHECK(std::equal(message.begin(), message.end(), restored.out.begin()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t flags = in.take();
  const int codec = flags % 4 % 3;
  const std::uint8_t level = in.take();
  const std::uint8_t min_size = in.take();
  const int mode = (flags >> 2) & 3;
  if (mode < 2)
    restore_frames(in, codec);
  else
    round_trip(in, codec, level, min_size, mode == 3);
  return 0;
}
