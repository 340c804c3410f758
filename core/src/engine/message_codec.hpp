// How an endpoint's bytes become messages and messages become its bytes:
// `framing: pickle` (the framer finds each STOP) or `framing: length` (the
// wire format of multiprocessing.connection).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "pickleway/framer.hpp"

namespace pickleway {

struct read_step {
  frame_status status = frame_status::need_more;
  std::size_t consumed = 0;  // bytes of the input this step used up
  bytes_view message;        // for frame_status::message
  // What the framer found of it (pickle framing only); valid until the next call.
  const message_info* info = nullptr;
  std::string error;         // for frame_status::error: "offset N: cause"
  errc code = errc::ok;      // for frame_status::error: the cause
};

class message_reader {
 public:
  virtual ~message_reader() = default;
  // As framer::next and framer::finish: `data` holds the unconsumed input.
  virtual read_step next(bytes_view data) = 0;
  virtual read_step finish(bytes_view data) = 0;
  // The least input the next call should hold.
  virtual std::size_t wanted() const = 0;
  // Stream offset of the first unconsumed byte.
  virtual std::uint64_t offset() const = 0;
};

// `first_offset`: the stream offset of the first byte it will read (past an
// auth handshake; length framing only, as auth is).
std::unique_ptr<message_reader> make_reader(const framing_config& framing,
                                           std::uint64_t first_offset = 0);

// "" when `message` is exactly one whole pickle by the options of `check`
// (a framer kept for the purpose, restarted here), else why not (and
// `cause` says so in the error table's terms).
std::string whole_pickle_problem(bytes_view message, framer& check, errc& cause);

// Appends `message` to `out` as the endpoint's framing writes it.
void encode_message(framing_kind kind, bytes_view message, std::vector<std::uint8_t>& out);

// The length that `framing: length` (and link) writes before a message of
// `size` bytes: 4 bytes, or 12 for one past 2 GiB; returns how many.
std::size_t length_header(std::uint64_t size, std::array<std::uint8_t, 12>& header);

}  // namespace pickleway
