#include "engine/replay_buffer.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using pickleway::replay_buffer;

namespace {

std::vector<std::uint8_t> counting(std::size_t n, std::size_t from = 0) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((from + i) * 7 + (from + i) / 251);
  return v;
}

// Everything from `offset` to the end, read back one contiguous piece at a time.
std::vector<std::uint8_t> read_back(const replay_buffer& r, std::uint64_t offset) {
  std::vector<std::uint8_t> out;
  while (offset < r.end()) {
    const auto piece = r.contiguous(offset, UINT64_MAX);
    REQUIRE(!piece.empty());
    out.insert(out.end(), piece.begin(), piece.end());
    offset += piece.size();
  }
  return out;
}

}  // namespace

TEST_CASE("replay buffer: bytes appended across blocks read back the same, by offset") {
  replay_buffer r;
  const auto bytes = counting(3 * replay_buffer::block_size + 12345);
  // In uneven pieces, so that appends straddle block ends.
  std::size_t at = 0;
  for (std::size_t piece = 1; at < bytes.size(); piece = piece * 3 + 1) {
    const std::size_t n = std::min(piece, bytes.size() - at);
    r.append({bytes.data() + at, n});
    at += n;
  }
  CHECK(r.begin() == 0);
  CHECK(r.end() == bytes.size());
  CHECK(read_back(r, 0) == bytes);
  // A piece never crosses a block end, and `most` bounds it.
  CHECK(r.contiguous(replay_buffer::block_size - 10, UINT64_MAX).size() == 10);
  CHECK(r.contiguous(5, 100).size() == 100);
  CHECK(r.contiguous(r.end() - 3, 100).size() == 3);
}

TEST_CASE("replay buffer: dropping the acknowledged front keeps the rest and its offsets") {
  replay_buffer r;
  const auto bytes = counting(2 * replay_buffer::block_size + 999);
  r.append(bytes);
  const std::uint64_t cut = replay_buffer::block_size + 17;
  r.drop_until(cut);
  CHECK(r.begin() == cut);
  CHECK(r.size() == bytes.size() - cut);
  CHECK(read_back(r, cut) == std::vector<std::uint8_t>(bytes.begin() + cut, bytes.end()));
  // Appends go on at the same offsets.
  const auto more = counting(replay_buffer::block_size, bytes.size());
  r.append(more);
  CHECK(r.end() == bytes.size() + more.size());
  auto expected = std::vector<std::uint8_t>(bytes.begin() + cut, bytes.end());
  expected.insert(expected.end(), more.begin(), more.end());
  CHECK(read_back(r, cut) == expected);
}

TEST_CASE("replay buffer: emptied, it holds nothing and goes on at the offset it reached") {
  replay_buffer r;
  const auto first = counting(1000);
  r.append(first);
  r.drop_until(1000);
  CHECK(r.size() == 0);
  CHECK(r.begin() == 1000);
  const auto second = counting(replay_buffer::block_size + 1, 1000);
  r.append(second);
  CHECK(r.begin() == 1000);
  CHECK(r.end() == 1000 + second.size());
  CHECK(read_back(r, 1000) == second);
}
