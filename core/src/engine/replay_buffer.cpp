#include "engine/replay_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace pickleway {

void replay_buffer::append(std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    const std::uint64_t blocks_end = first_block_ + blocks_.size() * block_size;
    if (end_ == blocks_end) {
      if (spares_.empty()) {
        blocks_.push_back(std::make_unique_for_overwrite<std::uint8_t[]>(block_size));
      } else {
        blocks_.push_back(std::move(spares_.back()));
        spares_.pop_back();
      }
      continue;
    }
    const auto at = static_cast<std::size_t>((end_ - first_block_) % block_size);
    const std::size_t n = std::min(bytes.size(), block_size - at);
    std::memcpy(blocks_.back().get() + at, bytes.data(), n);
    end_ += n;
    bytes = bytes.subspan(n);
  }
}

void replay_buffer::drop_until(std::uint64_t offset) {
  begin_ = offset;
  if (begin_ == end_) {
    for (auto& b : blocks_) spares_.push_back(std::move(b));
    blocks_.clear();
    first_block_ = end_;
    return;
  }
  while (first_block_ + block_size <= begin_) {
    spares_.push_back(std::move(blocks_.front()));
    blocks_.pop_front();
    first_block_ += block_size;
  }
}

void replay_buffer::release_spares() {
  if (begin_ == end_) std::vector<block>().swap(spares_);
}

std::span<const std::uint8_t> replay_buffer::contiguous(std::uint64_t offset, std::uint64_t most) const {
  const std::uint64_t at = offset - first_block_;
  const auto in_block = static_cast<std::size_t>(at % block_size);
  const std::uint64_t n = std::min({most, end_ - offset, std::uint64_t{block_size - in_block}});
  return {blocks_[static_cast<std::size_t>(at / block_size)].get() + in_block, static_cast<std::size_t>(n)};
}

}  // namespace pickleway
