#include "frame.hpp"

#include <zlib.h>

#include <cstdio>

namespace pickleway::compress {

namespace {

std::uint32_t crc(std::uint32_t running, bytes_view bytes) {
  // zlib's crc32 returns 0 for a null pointer, whatever the running value:
  // an empty view (data() may be null or not) leaves the check as it is.
  if (bytes.empty()) return running;
  // crc32_z takes a size_t length: no slicing for a message over 4 GiB.
  return static_cast<std::uint32_t>(crc32_z(running, bytes.data(), bytes.size()));
}

}  // namespace

void put_header(std::vector<std::uint8_t>& out, codec_id codec, bool compressed) {
  out.push_back(static_cast<std::uint8_t>(frame_mark | (compressed ? flag_compressed : 0) |
                                          static_cast<std::uint8_t>(codec)));
  out.insert(out.end(), header_size - 1, 0);
}

void put_flags(std::vector<std::uint8_t>& out, std::size_t header_at, std::uint8_t flags) {
  out[header_at] = static_cast<std::uint8_t>(out[header_at] | flags);
}

void put_check(std::vector<std::uint8_t>& out, std::size_t header_at, std::uint32_t check) {
  out[header_at + 1] = wire_check(check);
}

std::uint32_t next_check(std::uint32_t running, bytes_view message) {
  const auto size = static_cast<std::uint32_t>(message.size());  // under 4 GiB: the framer's bound
  const std::uint8_t size_bytes[4] = {
      static_cast<std::uint8_t>(size), static_cast<std::uint8_t>(size >> 8),
      static_cast<std::uint8_t>(size >> 16), static_cast<std::uint8_t>(size >> 24)};
  running = crc(running, size_bytes);
  const std::size_t head = std::min(message.size(), check_span);
  running = crc(running, message.first(head));
  const std::size_t tail = std::min(message.size() - head, check_span);
  return crc(running, message.last(tail));
}

bool is_frame(bytes_view message) {
  return !message.empty() && (message[0] & frame_mark_mask) == frame_mark;
}

bool is_first_version_frame(bytes_view message) {
  return !message.empty() && (message[0] & frame_mark_mask) == first_version_mark;
}

bool looks_like_frame(bytes_view message) {
  const auto header = parse_header(message);
  if (!is_frame(message) || !header || header->codec < 1 || header->codec > 3) return false;
  const bytes_view payload = message.subspan(header_size);
  if (!header->compressed)
    return !header->block_header_left_out && payload.size() >= 2 && payload[0] == 0x80 &&
           payload[1] >= 2 && payload[1] <= 5;
  // Compressed payloads have no mark of their own; the codec ids and the
  // one flag leave F1-F3 and F9, which no UTF-8 text in use opens with.
  const bool flag_fits_codec = !header->block_header_left_out ||
                               header->codec == static_cast<std::uint8_t>(codec_id::zstd);
  return flag_fits_codec && !payload.empty();
}

std::optional<frame_header> parse_header(bytes_view frame) {
  if (frame.size() < header_size) return std::nullopt;
  frame_header h;
  h.codec = frame[0] & codec_mask;
  h.compressed = (frame[0] & flag_compressed) != 0;
  h.block_header_left_out = (frame[0] & flag_block_header_left_out) != 0;
  h.check = frame[1];
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
