// zstd: one frame per direction that never ends; ZSTD_e_flush closes a
// block at each message end, so the receiver decodes the message at once.
// When a message's output is one compressed block (every message up to
// 128 KiB but the first, which carries the frame header), its 3-byte block
// header is left out: the receiver rebuilds it from the payload's size.
#include <zstd.h>

#include "codec.hpp"

namespace pickleway::compress {
namespace {

// The window both ends use: the compressor's windowLog, the decompressor's
// windowLogMax (a frame that asks for more is refused). With it a
// decompressing direction holds about 1.5 MiB.
constexpr int window_log = 20;  // 1 MiB

// zstd sizes its match tables by level, not by window: level 19 would take
// 86 MiB, level 22 670 MiB. From level 10 up both tables are capped at 2^21
// entries, about what level 9 uses, so a compressing direction holds at
// most about 19 MiB at any level (docs/compress.md has the measurements).
constexpr int capped_from_level = 10;
constexpr int table_log_cap = 21;

constexpr std::size_t frame_header_max = 18;  // ZSTD_FRAMEHEADERSIZE_MAX, not in the stable API

// A block header (RFC 8878, 3.1.1.2): 3 bytes, little-endian: Last_Block
// (bit 0), Block_Type (bits 1-2; 2 is Compressed_Block), Block_Size (the
// 21 bits above: the block's bytes after its header).
constexpr std::size_t block_header_size = 3;
constexpr std::uint32_t compressed_block = 2;
constexpr std::size_t block_size_max = std::size_t{128} << 10;  // ZSTD_BLOCKSIZE_MAX

std::string zstd_error(const char* what, std::size_t code) {
  return std::string("zstd ") + what + ": " + ZSTD_getErrorName(code);
}

class zstd_compressor final : public compressor {
 public:
  explicit zstd_compressor(ZSTD_CCtx* context) : context_(context) {}
  ~zstd_compressor() override { ZSTD_freeCCtx(context_); }
  zstd_compressor(const zstd_compressor&) = delete;
  zstd_compressor& operator=(const zstd_compressor&) = delete;

  bool compress(bytes_view in, std::vector<std::uint8_t>& out, bool& header_left_out,
                std::string& error) override {
    header_left_out = false;
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    const std::size_t before = out.size();
    std::size_t produced = before;
    // Enough for the whole flushed block in one call, frame header included.
    out.resize(produced + ZSTD_compressBound(in.size()) + frame_header_max);
    for (;;) {
      ZSTD_outBuffer output{out.data(), out.size(), produced};
      const std::size_t left = ZSTD_compressStream2(context_, &output, &input, ZSTD_e_flush);
      produced = output.pos;
      if (ZSTD_isError(left)) {
        error = zstd_error("compression failed", left);
        return false;
      }
      if (left == 0) break;
      out.resize(out.size() + ZSTD_CStreamOutSize());
    }
    out.resize(produced);
    const bool first = !started_;
    started_ = true;
    if (!first && produced - before > block_header_size) {
      const std::uint32_t header = static_cast<std::uint32_t>(out[before]) |
                                   static_cast<std::uint32_t>(out[before + 1]) << 8 |
                                   static_cast<std::uint32_t>(out[before + 2]) << 16;
      const bool one_block =
          (header & 1) == 0 && (header >> 1 & 3) == compressed_block &&
          header >> 3 == produced - before - block_header_size;
      if (one_block) {
        const auto at = out.begin() + static_cast<std::ptrdiff_t>(before);
        out.erase(at, at + block_header_size);
        header_left_out = true;
      }
    }
    return true;
  }

 private:
  ZSTD_CCtx* context_;
  bool started_ = false;  // the frame header is out
};

class zstd_decompressor final : public decompressor {
 public:
  explicit zstd_decompressor(ZSTD_DCtx* context) : context_(context) {}
  ~zstd_decompressor() override { ZSTD_freeDCtx(context_); }
  zstd_decompressor(const zstd_decompressor&) = delete;
  zstd_decompressor& operator=(const zstd_decompressor&) = delete;

  bool decompress(bytes_view in, bool header_left_out, std::size_t limit,
                  std::vector<std::uint8_t>& out, std::string& error) override {
    out.clear();
    std::uint8_t header[block_header_size] = {};
    bytes_view rebuilt;  // the block header the sender left out, or nothing
    if (header_left_out) {
      if (in.size() > block_size_max) {
        error = "zstd block over 128 KiB";
        return false;
      }
      const auto value = static_cast<std::uint32_t>(in.size() << 3 | compressed_block << 1);
      for (std::size_t i = 0; i < block_header_size; ++i)
        header[i] = static_cast<std::uint8_t>(value >> (8 * i));
      rebuilt = bytes_view(header);
    }
    std::size_t produced = 0;
    for (const bytes_view part : {rebuilt, in}) {
      ZSTD_inBuffer input{part.data(), part.size(), 0};
      for (;;) {
        if (produced == out.size()) {
          if (out.size() > limit) {
            error = "it restores more than " + std::to_string(limit) + " bytes";
            return false;
          }
          out.resize(next_capacity(out.size(), limit, in.size(), last_size_));
        }
        ZSTD_outBuffer output{out.data(), out.size(), produced};
        const std::size_t hint = ZSTD_decompressStream(context_, &output, &input);
        produced = output.pos;
        if (ZSTD_isError(hint)) {
          error = zstd_error("refuses the data", hint);
          return false;
        }
        // Room left after the call: everything the input holds is out.
        if (input.pos == input.size && produced < out.size()) break;
      }
    }
    out.resize(produced);
    last_size_ = produced;
    return true;
  }

 private:
  ZSTD_DCtx* context_;
  std::size_t last_size_ = 0;  // of the last message restored
};

}  // namespace

std::unique_ptr<compressor> make_zstd_compressor(int level, std::string& error) {
  ZSTD_CCtx* context = ZSTD_createCCtx();
  if (!context) {
    error = "zstd: cannot make a compression context";
    return nullptr;
  }
  auto made = std::make_unique<zstd_compressor>(context);
  for (const auto& [parameter, value] :
       {std::pair{ZSTD_c_compressionLevel, level}, std::pair{ZSTD_c_windowLog, window_log},
        std::pair{ZSTD_c_checksumFlag, 0}, std::pair{ZSTD_c_contentSizeFlag, 0}}) {
    const std::size_t r = ZSTD_CCtx_setParameter(context, parameter, value);
    if (ZSTD_isError(r)) {
      error = zstd_error("refuses a parameter", r);
      return nullptr;
    }
  }
  if (level >= capped_from_level) {
    for (const auto parameter : {ZSTD_c_hashLog, ZSTD_c_chainLog}) {
      const std::size_t r = ZSTD_CCtx_setParameter(context, parameter, table_log_cap);
      if (ZSTD_isError(r)) {
        error = zstd_error("refuses a parameter", r);
        return nullptr;
      }
    }
  }
  return made;
}

std::unique_ptr<decompressor> make_zstd_decompressor(std::string& error) {
  ZSTD_DCtx* context = ZSTD_createDCtx();
  if (!context) {
    error = "zstd: cannot make a decompression context";
    return nullptr;
  }
  auto made = std::make_unique<zstd_decompressor>(context);
  const std::size_t r = ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, window_log);
  if (ZSTD_isError(r)) {
    error = zstd_error("refuses a parameter", r);
    return nullptr;
  }
  return made;
}

}  // namespace pickleway::compress
