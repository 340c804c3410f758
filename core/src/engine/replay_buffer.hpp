// The bytes a link has sent or will send and the far gateway has not yet
// acknowledged, addressed by their offset in the link's outgoing stream.
//
// A chain of fixed-size blocks rather than one vector: appending never
// moves what is held (a vector grows by copying everything), dropping the
// acknowledged front frees whole blocks (a vector compacts by moving the
// rest). Freed blocks are kept for the next appends, so that a steady
// stream, acknowledged as it goes, allocates nothing (fresh memory costs a
// page fault a page); they are never more than the most held at once,
// which `replay` bounds, and release_spares() gives them back when the
// link is idle.
//
// A block is 1 MiB: a message up to that size then goes out in one or two
// writes, as it falls across a block's end (with 256 KiB blocks a 1 MiB
// message took four or five, and the link kept 0.83 of length framing's
// rate instead of 0.94). Its pages are
// faulted in as they are written: a link whose acknowledgements keep up
// (the buffer empties, the next append starts the block again) touches only
// the start of it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

namespace pickleway {

class replay_buffer {
 public:
  static constexpr std::size_t block_size = 1024 * 1024;

  // Offsets of the first byte held and one past the last.
  std::uint64_t begin() const { return begin_; }
  std::uint64_t end() const { return end_; }
  std::uint64_t size() const { return end_ - begin_; }

  void append(std::span<const std::uint8_t> bytes);
  // Forgets the bytes before `offset` (acknowledged); begin() <= offset <= end().
  void drop_until(std::uint64_t offset);
  // The held bytes from `offset` on, as far as they lie in one block and
  // at most `most` of them; begin() <= offset < end().
  std::span<const std::uint8_t> contiguous(std::uint64_t offset, std::uint64_t most) const;
  // Frees the blocks kept for the next appends, if the buffer is empty.
  void release_spares();

 private:
  using block = std::unique_ptr<std::uint8_t[]>;

  std::deque<block> blocks_;  // the first one starts at first_block_
  std::vector<block> spares_;
  std::uint64_t first_block_ = 0;  // offset of blocks_.front()[0]
  std::uint64_t begin_ = 0;
  std::uint64_t end_ = 0;
};

}  // namespace pickleway
