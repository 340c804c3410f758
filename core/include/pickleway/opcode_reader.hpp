// Steps through the opcodes of a whole message, by the opcode table.
//
// For code that inspects or rewrites messages the framer has already found
// complete (dis, filters); the framer itself runs its own incremental loop
// over the same table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "pickleway/opcodes.hpp"

namespace pickleway {

struct opcode_at {
  const opcode_info* info = nullptr;
  std::size_t pos = 0;      // of the opcode byte
  std::size_t arg = 0;      // first byte of the argument, after any length field
  std::size_t arg_end = 0;  // one past the argument; a text argument's '\n' excluded
  std::size_t end = 0;      // one past the whole opcode
};

// The opcode at `pos` of `bytes`; nullopt when the byte is no opcode or the
// opcode runs past the end (or has a negative length).
inline std::optional<opcode_at> read_opcode(std::span<const std::uint8_t> bytes,
                                            std::size_t pos) {
  if (pos >= bytes.size()) return std::nullopt;
  const opcode_info* info = find_opcode(bytes[pos]);
  if (!info) return std::nullopt;
  opcode_at o{info, pos, pos + 1, pos + 1, pos + 1};
  const std::size_t size = bytes.size();
  if (const int fixed = fixed_width(info->arg)) {
    o.end = o.arg_end = o.arg + static_cast<std::size_t>(fixed);
  } else if (const int width = length_prefix_width(info->arg)) {
    const auto w = static_cast<std::size_t>(width);
    if (size - o.arg < w) return std::nullopt;
    std::uint64_t length = 0;
    for (std::size_t i = w; i-- > 0;) length = (length << 8) | bytes[o.arg + i];
    if (has_signed_length(info->arg) && (length & 0x8000'0000u)) return std::nullopt;
    o.arg += w;
    if (length > size - o.arg) return std::nullopt;
    o.end = o.arg_end = o.arg + static_cast<std::size_t>(length);
  } else if (is_text(info->arg)) {
    const auto* begin = bytes.data() + o.arg;
    const void* nl = std::memchr(begin, '\n', size - o.arg);
    if (nl && info->arg == arg_kind::stringnl_noescape_pair) {
      const auto* second = static_cast<const std::uint8_t*>(nl) + 1;
      nl = std::memchr(second, '\n', static_cast<std::size_t>(bytes.data() + size - second));
    }
    if (!nl) return std::nullopt;
    o.arg_end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - bytes.data());
    o.end = o.arg_end + 1;
  }
  if (o.end > size) return std::nullopt;
  return o;
}

}  // namespace pickleway
