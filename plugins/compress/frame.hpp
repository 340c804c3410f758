// The compress filter's wire format: the header before each message's
// bytes on the length-framed link (docs/compress.md has the details).
//
//   byte 0     110F CCCC: 0xC0, plus 0x10 when the payload is compressed
//              (F = 0: stored, the message as it is), plus the codec C
//              (1 zstd, 2 lz4, 3 zlib). So a frame starts with C1-C3 or
//              D1-D3; no pickle opcode is 0x99 or above, so a plain
//              pickle never passes for a frame.
//   bytes 1-4  the check: CRC-32 of every message of this direction so
//              far, this one included (the restored bytes), little-endian
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

inline constexpr std::uint8_t frame_mark = 0xC0;  // the top three bits: 110
inline constexpr std::uint8_t frame_mark_mask = 0xE0;
inline constexpr std::uint8_t flag_compressed = 0x10;
inline constexpr std::uint8_t codec_mask = 0x0F;
inline constexpr std::size_t header_size = 5;

struct frame_header {
  std::uint8_t codec = 0;  // as written: may name no codec this version knows
  bool compressed = false;
  std::uint32_t check = 0;
};

// Appends a header whose check is filled in later by put_check.
void put_header(std::vector<std::uint8_t>& out, codec_id codec, bool compressed);
void put_check(std::vector<std::uint8_t>& out, std::size_t header_at, std::uint32_t check);

bool is_frame(bytes_view message);

// The header at the front of `frame` (is_frame(frame) holds), or nullopt
// when the frame is shorter than its header.
std::optional<frame_header> parse_header(bytes_view frame);

// What a message that is no frame looks like, for the error: "it is a
// plain pickle (protocol 4), starting 80 04 95 ...".
std::string describe_stranger(bytes_view message);

}  // namespace pickleway::compress
