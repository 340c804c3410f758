#include "frame.hpp"

#include <cstdio>

namespace pickleway::compress {

void put_header(std::vector<std::uint8_t>& out, codec_id codec, bool compressed) {
  out.push_back(static_cast<std::uint8_t>(frame_mark | (compressed ? flag_compressed : 0) |
                                          static_cast<std::uint8_t>(codec)));
  out.insert(out.end(), header_size - 1, 0);
}

void put_check(std::vector<std::uint8_t>& out, std::size_t header_at, std::uint32_t check) {
  for (std::size_t i = 0; i < 4; ++i)
    out[header_at + 1 + i] = static_cast<std::uint8_t>(check >> (8 * i));
}

bool is_frame(bytes_view message) {
  return !message.empty() && (message[0] & frame_mark_mask) == frame_mark;
}

std::optional<frame_header> parse_header(bytes_view frame) {
  if (frame.size() < header_size) return std::nullopt;
  frame_header h;
  h.codec = frame[0] & codec_mask;
  h.compressed = (frame[0] & flag_compressed) != 0;
  for (std::size_t i = 0; i < 4; ++i)
    h.check |= static_cast<std::uint32_t>(frame[1 + i]) << (8 * i);
  return h;
}

std::string describe_stranger(bytes_view message) {
  if (message.empty()) return "it is empty";
  std::string text;
  if (message.size() >= 2 && message[0] == 0x80 && message[1] <= 5)
    text = "it is a plain pickle (protocol " + std::to_string(message[1]) + ")";
  else if (message.back() == '.')  // STOP: protocol 0 and 1 pickles start with no PROTO
    text = "it looks like a plain pickle";
  else
    text = "it is no compress frame";
  text += ", starting";
  for (std::size_t i = 0; i < message.size() && i < 8; ++i) {
    char hex[4];
    std::snprintf(hex, sizeof hex, " %02X", message[i]);
    text += hex;
  }
  if (message.size() > 8) text += " ...";
  return text;
}

}  // namespace pickleway::compress
