// zlib: one raw deflate stream per direction (no zlib header or trailer),
// Z_SYNC_FLUSH at each message end. A sync flush always ends in the empty
// stored block 00 00 FF FF; as in WebSocket's permessage-deflate (RFC 7692)
// the sender strips those four bytes and the receiver puts them back.
#include <zlib.h>

#include <array>
#include <limits>

#include "codec.hpp"

namespace pickleway::compress {
namespace {

constexpr int window_bits = 15;  // 32 KiB of history, the most deflate has
constexpr int memory_level = 8;  // zlib's default: about 256 KiB per deflate stream
constexpr std::array<std::uint8_t, 4> sync_tail = {0x00, 0x00, 0xFF, 0xFF};

// zlib counts in uInt; a message is at most 4 GiB - 1, which fits, but a
// buffer's free room may not, so it is handed over in slices.
uInt slice(std::size_t n) {
  return static_cast<uInt>(std::min<std::size_t>(n, std::numeric_limits<uInt>::max()));
}

std::string zlib_error(const char* what, int code, const z_stream& s) {
  return std::string("zlib ") + what + ": " + (s.msg ? s.msg : zError(code));
}

class zlib_compressor final : public compressor {
 public:
  zlib_compressor() = default;
  ~zlib_compressor() override {
    if (ready_) deflateEnd(&stream_);
  }
  zlib_compressor(const zlib_compressor&) = delete;
  zlib_compressor& operator=(const zlib_compressor&) = delete;

  bool start(int level, std::string& error) {
    const int r =
        deflateInit2(&stream_, level, Z_DEFLATED, -window_bits, memory_level, Z_DEFAULT_STRATEGY);
    if (r != Z_OK) {
      error = zlib_error("cannot make a compression stream", r, stream_);
      return false;
    }
    ready_ = true;
    return true;
  }

  bool compress(bytes_view in, std::vector<std::uint8_t>& out, bool& header_left_out,
                std::string& error) override {
    header_left_out = false;
    std::size_t produced = out.size();
    // Room for the whole flushed message: deflate's bound plus the flush's
    // stored blocks; the loop below grows it should it still be short.
    out.resize(produced + deflateBound(&stream_, static_cast<uLong>(in.size())) + 16);
    std::size_t consumed = 0;
    for (;;) {
      if (produced == out.size()) out.resize(out.size() + 64 * 1024);
      stream_.next_in = const_cast<Bytef*>(in.data() + consumed);  // zlib's API is not const
      stream_.avail_in = slice(in.size() - consumed);
      stream_.next_out = out.data() + produced;
      stream_.avail_out = slice(out.size() - produced);
      const uInt in_before = stream_.avail_in;
      const uInt out_before = stream_.avail_out;
      const int r = deflate(&stream_, Z_SYNC_FLUSH);
      consumed += in_before - stream_.avail_in;
      produced += out_before - stream_.avail_out;
      if (r != Z_OK && r != Z_BUF_ERROR) {
        error = zlib_error("compression failed", r, stream_);
        return false;
      }
      // Done when all input is in and deflate stopped with room to spare.
      if (consumed == in.size() && stream_.avail_out > 0) break;
    }
    out.resize(produced);
    if (out.size() < sync_tail.size() ||
        !std::equal(sync_tail.begin(), sync_tail.end(), out.end() - sync_tail.size())) {
      error = "zlib: a sync flush did not end in 00 00 FF FF";  // zlib broke its own format
      return false;
    }
    out.resize(out.size() - sync_tail.size());
    return true;
  }

 private:
  z_stream stream_{};
  bool ready_ = false;
};

class zlib_decompressor final : public decompressor {
 public:
  zlib_decompressor() = default;
  ~zlib_decompressor() override {
    if (ready_) inflateEnd(&stream_);
  }
  zlib_decompressor(const zlib_decompressor&) = delete;
  zlib_decompressor& operator=(const zlib_decompressor&) = delete;

  bool start(std::string& error) {
    const int r = inflateInit2(&stream_, -window_bits);
    if (r != Z_OK) {
      error = zlib_error("cannot make a decompression stream", r, stream_);
      return false;
    }
    ready_ = true;
    return true;
  }

  bool decompress(bytes_view in, bool header_left_out, std::size_t limit,
                  std::vector<std::uint8_t>& out, std::string& error) override {
    if (header_left_out) {
      error = "zlib frame says a block header was left out, which only zstd does";
      return false;
    }
    out.clear();
    std::size_t produced = 0;
    // The message's deflate data, then the sync flush's tail it was sent without.
    for (const bytes_view part : {in, bytes_view(sync_tail)}) {
      std::size_t consumed = 0;
      for (;;) {
        if (produced == out.size()) {
          if (out.size() > limit) {
            error = "it restores more than " + std::to_string(limit) + " bytes";
            return false;
          }
          out.resize(next_capacity(out.size(), limit, in.size(), last_size_));
        }
        stream_.next_in = const_cast<Bytef*>(part.data() + consumed);
        stream_.avail_in = slice(part.size() - consumed);
        stream_.next_out = out.data() + produced;
        stream_.avail_out = slice(out.size() - produced);
        const uInt in_before = stream_.avail_in;
        const uInt out_before = stream_.avail_out;
        const int r = inflate(&stream_, Z_SYNC_FLUSH);
        consumed += in_before - stream_.avail_in;
        produced += out_before - stream_.avail_out;
        if (r == Z_STREAM_END) {  // the sender never ends its stream
          error = "zlib stream ends, which the peer never does";
          return false;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
          error = zlib_error("refuses the data", r, stream_);
          return false;
        }
        if (consumed == part.size() && stream_.avail_out > 0) break;
      }
    }
    // The tail closes one empty stored block, so inflate must now be
    // between blocks (128), not in a final block (64), with no bits left
    // over (the low six): else the data ended somewhere else.
    if ((stream_.data_type & 128) == 0 || (stream_.data_type & (64 | 63)) != 0) {
      error = "zlib data does not end where the sender's flush did";
      return false;
    }
    out.resize(produced);
    last_size_ = produced;
    return true;
  }

 private:
  z_stream stream_{};
  bool ready_ = false;
  std::size_t last_size_ = 0;  // of the last message restored
};

}  // namespace

std::unique_ptr<compressor> make_zlib_compressor(int level, std::string& error) {
  auto made = std::make_unique<zlib_compressor>();
  if (!made->start(level, error)) return nullptr;
  return made;
}

std::unique_ptr<decompressor> make_zlib_decompressor(std::string& error) {
  auto made = std::make_unique<zlib_decompressor>();
  if (!made->start(error)) return nullptr;
  return made;
}

}  // namespace pickleway::compress
