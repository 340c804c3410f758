// The compress filter's wire format: the header before each message's
// bytes on the length-framed link (docs/compress.md has the details).
//
//   byte 0     111F ECCC: 0xE0, plus 0x10 when the payload is compressed
//              (F = 0: stored, the message as it is), plus 0x08 when the
//              codec's block header is left out (E: zstd only, see
//              codec.hpp), plus the codec C (1 zstd, 2 lz4, 3 zlib). No
//              pickle opcode is 0x99 or above, so a plain pickle never
//              passes for a frame; 110x xxxx was the first version of this
//              format (a 4-byte CRC-32 after this byte), refused by name.
//   byte 1     the check: the low byte of a running CRC-32 over every
//              message of this direction so far, this one included (see
//              next_check)
//   the rest   the payload: the codec's flushed output, or the message
//
// The frame carries no size: the length framing delimits it, and the
// check catches a frame that restores too little or too much.
//
// Pure: no I/O, no allocation but the caller's vector.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec.hpp"

namespace pickleway::compress {

inline constexpr std::uint8_t frame_mark = 0xE0;  // the top three bits: 111
inline constexpr std::uint8_t frame_mark_mask = 0xE0;
inline constexpr std::uint8_t first_version_mark = 0xC0;  // 110: the first format
inline constexpr std::uint8_t flag_compressed = 0x10;
inline constexpr std::uint8_t flag_block_header_left_out = 0x08;
inline constexpr std::uint8_t codec_mask = 0x07;
inline constexpr std::size_t header_size = 2;

// The check covers a message's size, and its bytes up to this many from
// each end: all of a message up to twice this, which is where the check
// matters (a small message that restores wrong is wrong as a whole); of a
// larger one its two ends, so that the check costs a bounded time per
// message instead of a CRC pass over megabytes (slower than lz4). A frame
// restored over the wrong history (one lost, added or reordered) goes
// wrong from its start, where its matches reach back into that history.
inline constexpr std::size_t check_span = std::size_t{32} << 10;

struct frame_header {
  std::uint8_t codec = 0;  // as written: may name no codec this version knows
  bool compressed = false;
  bool block_header_left_out = false;
  std::uint8_t check = 0;
};

// Appends a header whose check is filled in later by put_check, and whose
// flags put_flags may add to.
void put_header(std::vector<std::uint8_t>& out, codec_id codec, bool compressed);
void put_flags(std::vector<std::uint8_t>& out, std::size_t header_at, std::uint8_t flags);
void put_check(std::vector<std::uint8_t>& out, std::size_t header_at, std::uint32_t check);

// The running CRC-32 after `message`: over its size (4 bytes,
// little-endian), then its first min(size, check_span) bytes, then its last
// min(size - check_span, check_span) bytes when it is longer.
std::uint32_t next_check(std::uint32_t running, bytes_view message);
// What byte 1 of a frame holds of a running check.
inline std::uint8_t wire_check(std::uint32_t running) {
  return static_cast<std::uint8_t>(running & 0xFF);
}

bool is_frame(bytes_view message);
// A frame of the first version of this format (from an older pickleway).
bool is_first_version_frame(bytes_view message);

// The header at the front of `frame` (is_frame(frame) holds), or nullopt
// when the frame is shorter than its header.
std::optional<frame_header> parse_header(bytes_view frame);

// Whether `message`, which an endpoint without compress could not read,
// looks like a frame of this version: a mark with a codec this version
// writes and, for a stored frame, a payload that opens as a pickle of
// protocol 2 to 5 does. Narrower than is_frame, which a receiving filter
// may use: the marks of stored frames (E1-E3) also open many UTF-8
// characters (E2 80 94 is an em dash), which a stray print may hold.
bool looks_like_frame(bytes_view message);

// What a message that is no frame looks like, for the error: "it is a
// plain pickle (protocol 4), starting 80 04 95 ...".
std::string describe_stranger(bytes_view message);

}  // namespace pickleway::compress
