// Drives a framer over a whole stream, a chunk at a time, and records what
// it said: the way a session would use it, minus the I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pickleway/framer.hpp"

namespace pickleway::test {

// A message_info copied out (the framer reuses its own).
struct framed_message {
  std::uint64_t offset;
  std::size_t size;
  int protocol;
  std::size_t undefined_memo_uses;
  std::vector<std::uint32_t> line_ends;
  std::vector<std::uint32_t> frames;
  bool operator==(const framed_message&) const = default;
};

struct feed_result {
  std::vector<framed_message> messages;
  std::vector<std::pair<std::uint64_t, std::string>> strays;  // offset, bytes
  std::optional<framing_error> error;
  bool clean_end = false;
};

// How many more bytes to make available next; called until the stream is
// exhausted.
using chunker = std::function<std::size_t()>;

inline chunker whole() { return [] { return SIZE_MAX; }; }
inline chunker byte_by_byte() { return [] { return std::size_t{1}; }; }
chunker random_chunks(std::uint32_t seed, std::size_t largest = 4096);

// With `move_bytes`, the unconsumed bytes are copied to a new place before
// every call, as a session's buffer may move them.
feed_result feed(const framer_options& options, bytes_view stream, const chunker& next_chunk,
                 bool move_bytes = false);

}  // namespace pickleway::test
