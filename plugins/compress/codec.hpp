// The three codecs behind the compress filter, as streams that live as long
// as one direction of one instance: each message is appended to the stream
// and flushed, so the receiver can restore it whole at once, while the
// history of earlier messages stays in both contexts and keeps helping.
//
// Contract: a compressor and the decompressor of the same codec see the
// same messages in the same order (the frame's check guards that), and no
// empty message (a flush with nothing to flush writes nothing that every
// codec can read back; the filter stores those). Any error leaves the
// context unusable: the filter then fails the instance and drops it, so
// there is no recovery path. Nothing here throws but the vectors' own
// allocation errors.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pickleway::compress {

using bytes_view = std::span<const std::uint8_t>;

enum class codec_id : std::uint8_t { zstd = 1, lz4 = 2, zlib = 3 };

std::string_view to_string(codec_id c);

// The levels each codec takes, and its own default.
struct level_range {
  int lowest;
  int highest;
  int fallback;  // the codec's default
};
level_range levels_of(codec_id c);

class compressor {
 public:
  virtual ~compressor() = default;
  // Appends `in` to the stream, flushed, to `out`; false with `error` set.
  // Sets `header_left_out` when what it appended is one block of the codec
  // without its block header, which the decompressor rebuilds from the
  // payload's size (zstd: the 3 bytes before each block, a tenth of a small
  // message's frame; the other codecs never leave one out).
  virtual bool compress(bytes_view in, std::vector<std::uint8_t>& out, bool& header_left_out,
                        std::string& error) = 0;
};

class decompressor {
 public:
  virtual ~decompressor() = default;
  // Restores one flushed piece `in` into `out` (cleared first), producing
  // no more than `limit` bytes; false with `error` set when the codec refuses
  // the data or it would produce more than `limit`. Memory grows with the
  // output actually produced, never with `limit` alone. `header_left_out`:
  // the compressor left the block header out of `in` (see above).
  virtual bool decompress(bytes_view in, bool header_left_out, std::size_t limit,
                          std::vector<std::uint8_t>& out, std::string& error) = 0;
};

// Whether a message of at least `probe_from` bytes is sent stored without
// trying its codec: when lz4, at its default speed and with no history,
// cannot make any of three 16 KiB slices of it (its start, middle and end)
// 1/32 smaller. Random or already compressed payloads then cost a copy
// instead of a pass of the codec on each side; smaller messages always go
// through the codec, whose history is what shrinks them.
inline constexpr std::size_t probe_from = std::size_t{64} << 10;
bool looks_incompressible(bytes_view message);

// nullptr with `error` set when the library cannot make a context.
std::unique_ptr<compressor> make_compressor(codec_id c, int level, std::string& error);
std::unique_ptr<decompressor> make_decompressor(codec_id c, std::string& error);

std::unique_ptr<compressor> make_zstd_compressor(int level, std::string& error);
std::unique_ptr<decompressor> make_zstd_decompressor(std::string& error);
std::unique_ptr<compressor> make_lz4_compressor(int level, std::string& error);
std::unique_ptr<decompressor> make_lz4_decompressor(std::string& error);
std::unique_ptr<compressor> make_zlib_compressor(int level, std::string& error);
std::unique_ptr<decompressor> make_zlib_decompressor(std::string& error);

// Output growth for decompressors: the next size of the output buffer,
// from `current`, towards `limit` + 1 (the one extra byte tells "exactly
// limit" from "more than limit"). The first guess is the size the last
// message restored to (`last`, 0 for none) plus that byte, so a stream of
// like messages gets its buffer zero-filled once at the right size, but at
// most 8 times the input size (a small message after a large one); each
// step then doubles, so the buffer follows what the codec produces.
std::size_t next_capacity(std::size_t current, std::size_t limit, std::size_t input_size,
                          std::size_t last);

}  // namespace pickleway::compress
