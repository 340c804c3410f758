// The `compress` filter: a->b compresses each message into a frame for the
// length-framed link on side b; b->a restores the frames the peer gateway's
// compress filter made. Each direction keeps one codec context for the
// whole stream, flushed at each message end, so a message goes out whole
// at once and still profits from the ones before it. See docs/compress.md.
#include <exception>

#include <pickleway/framer.hpp>
#include <pickleway/plugin.hpp>

#include "codec.hpp"
#include "frame.hpp"

namespace {

using namespace pickleway;
using namespace pickleway::compress;

constexpr std::string_view codec_choices[] = {"zstd", "lz4", "zlib"};

constexpr option_spec compress_options[] = {
    {"codec", option_type::choice, true, "zstd, lz4 or zlib; the peer's filter must use the same",
     codec_choices},
    {"level", option_type::integer, false,
     "compression level (default: the codec's: zstd 3, lz4 0, zlib 6)"},
    {.name = "min_size",
     .type = option_type::size,
     .help = "messages smaller than this go stored, not compressed",
     .default_value = "0"},
};

struct settings {
  codec_id codec = codec_id::zstd;
  int level = 0;
  std::uint64_t min_size = 0;
};

// Both directions of one instance. Calls come from the core's event loop,
// one at a time.
class compress_filter final : public filter {
 public:
  compress_filter(std::shared_ptr<const settings> s, std::uint64_t restore_limit)
      : settings_(std::move(s)), restore_limit_(restore_limit) {}

  filter_result on_message(direction d, message& m, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return filter_result::fail; }, [&]() -> filter_result {
      const bool sending = d == direction::a_to_b;
      bool& broken = sending ? send_broken_ : receive_broken_;
      if (broken) {  // the core stops a direction at its first failure
        error = "compress: the stream failed earlier";
        return filter_result::fail;
      }
      const filter_result result = guarded(
          [&](std::string_view why) {
            error = "compress: message " + std::to_string(m.sequence()) + ": " + std::string(why);
            return filter_result::fail;
          },
          [&] { return sending ? send(m, error) : receive(m, error); });
      if (result == filter_result::fail) {
        // The context may be mid-frame: it is never used again.
        broken = true;
        if (sending)
          compressor_.reset();
        else
          decompressor_.reset();
      }
      return result;
    });
  }

  // The stream in `d` has ended: its context is not needed any more.
  filter_result on_end(direction d, std::string&) noexcept override {
    if (d == direction::a_to_b)
      compressor_.reset();
    else
      decompressor_.reset();
    return filter_result::pass;
  }

 private:
  filter_result send(message& m, std::string& error) {
    const bytes_view in = m.bytes();
    if (in.size() > largest_max_message) {  // the framer never lets one through
      error = "compress: message " + std::to_string(m.sequence()) + " is over 4 GiB - 1";
      return filter_result::fail;
    }
    // An empty message is always stored: a flush with nothing to flush
    // writes nothing some codecs can read back.
    const bool compressed =
        !in.empty() && in.size() >= settings_->min_size && !looks_incompressible(in);
    std::vector<std::uint8_t> out;
    out.reserve(header_size + (compressed ? in.size() / 2 : in.size()) + 64);
    put_header(out, settings_->codec, compressed);
    if (compressed) {
      if (!compressor_) {
        compressor_ = make_compressor(settings_->codec, settings_->level, error);
        if (!compressor_) return failed("compress: " + error, error);
      }
      std::string why;
      bool header_left_out = false;
      if (!compressor_->compress(in, out, header_left_out, why))
        return failed("compress: message " + std::to_string(m.sequence()) + ": " + why, error);
      if (header_left_out) put_flags(out, 0, flag_block_header_left_out);
    } else {
      out.insert(out.end(), in.begin(), in.end());
    }
    sent_check_ = next_check(sent_check_, in);
    put_check(out, 0, sent_check_);
    m.replace(std::move(out));
    return filter_result::pass;
  }

  filter_result receive(message& m, std::string& error) {
    const bytes_view frame = m.bytes();
    const std::string which = "compress: message " + std::to_string(m.sequence());
    if (is_first_version_frame(frame))
      return failed(which +
                        " from the peer is in the first frame format of compress (a 5-byte "
                        "header), which this version no longer reads: run the same pickleway "
                        "version on both gateways",
                    error);
    if (!is_frame(frame))
      return failed(which + " from the peer is not compressed: " + describe_stranger(frame) +
                        " (does the peer gateway run the compress filter on this link?)",
                    error);
    const auto header = parse_header(frame);
    if (!header)
      return failed(which + " is cut short: " + std::to_string(frame.size()) +
                        " bytes, less than a frame header",
                    error);
    if (header->codec != static_cast<std::uint8_t>(settings_->codec)) {
      const bool known = header->codec >= 1 && header->codec <= 3;
      const std::string theirs =
          known ? std::string(to_string(static_cast<codec_id>(header->codec)))
                : "a codec this version does not know (id " + std::to_string(header->codec) + ")";
      return failed(which + " was compressed with " + theirs + ", but this compress filter uses " +
                        std::string(to_string(settings_->codec)) +
                        ": both gateways must name the same codec",
                    error);
    }
    const bytes_view payload = frame.subspan(header_size);
    std::vector<std::uint8_t> restored;
    if (header->compressed) {
      std::string why;
      if (!decompressor_) {
        decompressor_ = make_decompressor(settings_->codec, why);
        if (!decompressor_) return failed("compress: " + why, error);
      }
      if (!decompressor_->decompress(payload, header->block_header_left_out, restore_limit_,
                                     restored, why))
        return failed(which + ": " + why, error);
    } else if (header->block_header_left_out) {
      return failed(which + " is stored, yet says a block header was left out", error);
    } else {
      restored.assign(payload.begin(), payload.end());
    }
    received_check_ = next_check(received_check_, restored);
    if (wire_check(received_check_) != header->check)
      return failed(which +
                        " fails its check: the frame is cut short or corrupted, or a "
                        "message was lost, added or reordered between the two compress "
                        "filters",
                    error);
    m.replace(std::move(restored));
    return filter_result::pass;
  }

  filter_result failed(std::string why, std::string& error) {
    error = std::move(why);
    return filter_result::fail;
  }

  std::shared_ptr<const settings> settings_;
  std::uint64_t restore_limit_;  // endpoint a's max_message
  std::unique_ptr<compressor> compressor_;      // a->b, made at its first message
  std::unique_ptr<decompressor> decompressor_;  // b->a, likewise
  std::uint32_t sent_check_ = 0;
  std::uint32_t received_check_ = 0;
  bool send_broken_ = false;
  bool receive_broken_ = false;
};

class compress_factory final : public filter_factory {
 public:
  explicit compress_factory(settings s) : settings_(std::make_shared<const settings>(s)) {}

  std::optional<option_error> check(const chain_context& chain) noexcept override {
    return guarded([](std::string_view why) { return std::optional<option_error>(option_error{"", std::string(why)}); }, [&]() -> std::optional<option_error> {
      restore_limit_ = chain.a_max_message;
      if (chain.b_framing == framing_kind::pickle)
        return option_error{"",
                            "endpoint b must have `framing: length` or `link`: compressed messages are "
                            "not pickles, and b must be the link to a peer gateway that runs "
                            "compress with the same codec"};
      return std::nullopt;
    });
  }

  std::unique_ptr<filter> make(const open_context&, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<filter>(); }, [&] {
      return std::unique_ptr<filter>(std::make_unique<compress_filter>(settings_, restore_limit_));
    });
  }

  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&]() -> std::string {
      return "compress codec=" + std::string(to_string(settings_->codec)) +
             " level=" + std::to_string(settings_->level) +
             " min_size=" + std::to_string(settings_->min_size);
    });
  }

 private:
  std::shared_ptr<const settings> settings_;
  // What a restored message may grow to: endpoint a's max_message, so a
  // small frame cannot make this side hold more than a takes.
  std::uint64_t restore_limit_ = largest_max_message;
};

std::unique_ptr<filter_factory> build(const option_values& values, option_error& error) {
  settings s;
  const std::string codec = values.get_string("codec").value_or("");
  if (codec == "zstd")
    s.codec = codec_id::zstd;
  else if (codec == "lz4")
    s.codec = codec_id::lz4;
  else if (codec == "zlib")
    s.codec = codec_id::zlib;
  else {
    error = {"codec", "compress: codec must be zstd, lz4 or zlib"};
    return nullptr;
  }
  const level_range range = levels_of(s.codec);
  const std::int64_t level = values.get_integer("level").value_or(range.fallback);
  if (level < range.lowest || level > range.highest) {
    error = {"level", "compress: " + codec + " levels run from " + std::to_string(range.lowest) +
                          " to " + std::to_string(range.highest) + " (default " +
                          std::to_string(range.fallback) + ")"};
    return nullptr;
  }
  s.level = static_cast<int>(level);
  const std::int64_t min_size = *values.get_integer("min_size");
  if (min_size < 0) {
    error = {"min_size", "compress: min_size cannot be negative"};
    return nullptr;
  }
  s.min_size = static_cast<std::uint64_t>(min_size);
  // Make (and drop) a context of each kind now, so a level the library
  // refuses is a config error, not a failure at the first message.
  std::string why;
  if (!make_compressor(s.codec, s.level, why) || !make_decompressor(s.codec, why)) {
    error = {"level", "compress: " + why};
    return nullptr;
  }
  return std::make_unique<compress_factory>(s);
}


// For the core of a gateway whose session has no compress filter, when a
// message reaches an endpoint that cannot take it: the words of the
// contract, so a user sees what is missing rather than an unknown opcode.
const char* recognize(bytes_view message) noexcept {
  return looks_like_frame(message)
             ? "looks like a frame of the compress filter: does this session need compress?"
             : nullptr;
}

}  // namespace

PICKLEWAY_FILTER_PLUGIN_RECOGNIZING(
    "compress", "1.0.0", "per-message compression over a length-framed link to a peer gateway",
    compress_options, guarded_factory<build>, recognize)
