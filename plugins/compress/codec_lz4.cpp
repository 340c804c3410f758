// lz4: one LZ4 frame per direction that never ends, its blocks linked (each
// may refer to the 64 KiB before it). LZ4F_flush closes a block at each
// message end. Without autoFlush the frame API copies small inputs into its
// own history buffer and compresses them in place at the flush, so the 64
// KiB of history is moved once per buffer's worth of input, not per message.
#include <lz4frame.h>

#include "codec.hpp"

namespace pickleway::compress {
namespace {

std::string lz4_error(const char* what, std::size_t code) {
  return std::string("lz4 ") + what + ": " + LZ4F_getErrorName(code);
}

LZ4F_preferences_t preferences(int level) {
  LZ4F_preferences_t p{};
  p.frameInfo.blockSizeID = LZ4F_max64KB;  // bounds both ends' buffers
  p.frameInfo.blockMode = LZ4F_blockLinked;
  p.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;  // the frame's check covers it
  p.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
  p.compressionLevel = level;
  p.autoFlush = 0;
  return p;
}

class lz4_compressor final : public compressor {
 public:
  lz4_compressor(LZ4F_cctx* context, int level)
      : context_(context), preferences_(preferences(level)) {}
  ~lz4_compressor() override { LZ4F_freeCompressionContext(context_); }
  lz4_compressor(const lz4_compressor&) = delete;
  lz4_compressor& operator=(const lz4_compressor&) = delete;

  bool compress(bytes_view in, std::vector<std::uint8_t>& out, bool& header_left_out,
                std::string& error) override {
    header_left_out = false;
    // lz4 wants room for a whole block (64 KiB and more) even for a 60-byte
    // message: that room is a scratch buffer grown once, not a vector
    // zero-filled again for every message.
    const std::size_t bound = LZ4F_HEADER_SIZE_MAX + LZ4F_compressBound(in.size(), &preferences_) +
                              LZ4F_compressBound(0, &preferences_);
    if (scratch_.size() < bound) scratch_.resize(bound);
    std::size_t produced = 0;
    if (!started_) {
      const std::size_t n =
          LZ4F_compressBegin(context_, scratch_.data(), scratch_.size(), &preferences_);
      if (LZ4F_isError(n)) {
        error = lz4_error("cannot start the frame", n);
        return false;
      }
      produced += n;
      started_ = true;
    }
    LZ4F_compressOptions_t options{};
    std::size_t n = LZ4F_compressUpdate(context_, scratch_.data() + produced,
                                        scratch_.size() - produced, in.data(), in.size(), &options);
    if (LZ4F_isError(n)) {
      error = lz4_error("compression failed", n);
      return false;
    }
    produced += n;
    n = LZ4F_flush(context_, scratch_.data() + produced, scratch_.size() - produced, &options);
    if (LZ4F_isError(n)) {
      error = lz4_error("flush failed", n);
      return false;
    }
    produced += n;
    out.insert(out.end(), scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(produced));
    return true;
  }

 private:
  LZ4F_cctx* context_;
  LZ4F_preferences_t preferences_;
  bool started_ = false;
  std::vector<std::uint8_t> scratch_;
};

class lz4_decompressor final : public decompressor {
 public:
  explicit lz4_decompressor(LZ4F_dctx* context) : context_(context) {}
  ~lz4_decompressor() override { LZ4F_freeDecompressionContext(context_); }
  lz4_decompressor(const lz4_decompressor&) = delete;
  lz4_decompressor& operator=(const lz4_decompressor&) = delete;

  bool decompress(bytes_view in, bool header_left_out, std::size_t limit,
                  std::vector<std::uint8_t>& out, std::string& error) override {
    if (header_left_out) {
      error = "lz4 frame says a block header was left out, which only zstd does";
      return false;
    }
    out.clear();
    std::size_t consumed = 0;
    std::size_t produced = 0;
    for (;;) {
      if (produced == out.size()) {
        if (out.size() > limit) {
          error = "it restores more than " + std::to_string(limit) + " bytes";
          return false;
        }
        out.resize(next_capacity(out.size(), limit, in.size(), last_size_));
      }
      std::size_t room = out.size() - produced;
      std::size_t taken = in.size() - consumed;
      const std::size_t hint = LZ4F_decompress(context_, out.data() + produced, &room,
                                               in.data() + consumed, &taken, nullptr);
      if (LZ4F_isError(hint)) {
        error = lz4_error("refuses the data", hint);
        return false;
      }
      if (hint == 0) {  // the sender never ends its frame
        error = "lz4 frame ends, which the peer never does";
        return false;
      }
      consumed += taken;
      produced += room;
      // Room left after the call with all input taken: nothing is pending.
      if (consumed == in.size() && produced < out.size()) break;
    }
    out.resize(produced);
    last_size_ = produced;
    return true;
  }

 private:
  LZ4F_dctx* context_;
  std::size_t last_size_ = 0;  // of the last message restored
};

}  // namespace

std::unique_ptr<compressor> make_lz4_compressor(int level, std::string& error) {
  LZ4F_cctx* context = nullptr;
  const std::size_t r = LZ4F_createCompressionContext(&context, LZ4F_VERSION);
  if (LZ4F_isError(r)) {
    error = lz4_error("cannot make a compression context", r);
    return nullptr;
  }
  return std::make_unique<lz4_compressor>(context, level);
}

std::unique_ptr<decompressor> make_lz4_decompressor(std::string& error) {
  LZ4F_dctx* context = nullptr;
  const std::size_t r = LZ4F_createDecompressionContext(&context, LZ4F_VERSION);
  if (LZ4F_isError(r)) {
    error = lz4_error("cannot make a decompression context", r);
    return nullptr;
  }
  return std::make_unique<lz4_decompressor>(context);
}

}  // namespace pickleway::compress
