// zstd: one frame per direction that never ends; ZSTD_e_flush closes a
// block at each message end, so the receiver decodes the message at once.
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

std::string zstd_error(const char* what, std::size_t code) {
  return std::string("zstd ") + what + ": " + ZSTD_getErrorName(code);
}

class zstd_compressor final : public compressor {
 public:
  explicit zstd_compressor(ZSTD_CCtx* context) : context_(context) {}
  ~zstd_compressor() override { ZSTD_freeCCtx(context_); }
  zstd_compressor(const zstd_compressor&) = delete;
  zstd_compressor& operator=(const zstd_compressor&) = delete;

  bool compress(bytes_view in, std::vector<std::uint8_t>& out, std::string& error) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    std::size_t produced = out.size();
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
    return true;
  }

 private:
  ZSTD_CCtx* context_;
};

class zstd_decompressor final : public decompressor {
 public:
  explicit zstd_decompressor(ZSTD_DCtx* context) : context_(context) {}
  ~zstd_decompressor() override { ZSTD_freeDCtx(context_); }
  zstd_decompressor(const zstd_decompressor&) = delete;
  zstd_decompressor& operator=(const zstd_decompressor&) = delete;

  bool decompress(bytes_view in, std::size_t limit, std::vector<std::uint8_t>& out,
                  std::string& error) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    out.clear();
    std::size_t produced = 0;
    for (;;) {
      if (produced == out.size()) {
        if (out.size() > limit) {
          error = "it restores more than " + std::to_string(limit) + " bytes";
          return false;
        }
        out.resize(next_capacity(out.size(), limit, in.size()));
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
    out.resize(produced);
    return true;
  }

 private:
  ZSTD_DCtx* context_;
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
