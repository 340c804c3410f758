// The framer: finds where each pickle of a byte stream ends.
//
// Pure and incremental: no I/O, no allocation per opcode (its buffers are
// reused from message to message). Feed it the unconsumed bytes of a stream,
// a chunk more each time; it says when the first of them form a whole message
// (its STOP opcode has been read), are stray bytes to set aside, are not yet
// enough, or are bad. Length-prefixed payloads are skipped, never scanned, so
// a 1 MiB BINBYTES costs what a 1-byte one does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "pickleway/errc.hpp"
#include "pickleway/opcodes.hpp"

namespace pickleway {

using bytes_view = std::span<const std::uint8_t>;

// What to do with bytes where a message should start that cannot begin one
// (a stray `print` in the producer). See docs/framing.md.
enum class stray_policy : std::uint8_t { error, divert };

// What to do when a message reads a memo entry it did not define (a Pickler
// reused without clear_memo()): fail, or only count it.
enum class memo_policy : std::uint8_t { error, allow };

inline constexpr std::uint64_t default_max_message = std::uint64_t{64} << 20;
// Offsets inside a message are 32-bit, so no message may be larger.
inline constexpr std::uint64_t largest_max_message = 0xFFFF'FFFFu;

struct framer_options {
  std::uint64_t max_message = default_max_message;  // <= largest_max_message
  stray_policy on_stray = stray_policy::error;
  memo_policy memo = memo_policy::error;
};

// What the framer found of a whole message, for the filters that follow it
// (filter.hpp's message::info()). Valid after framer::next() returned
// frame_status::message, until the next call.
struct message_info {
  std::uint64_t stream_offset = 0;  // of its first byte
  std::size_t size = 0;
  int protocol = 0;  // PROTO's argument, else the highest protocol of its opcodes
  bool starts_with_proto = false;  // its first opcode is PROTO 2..5
  // GETs of memo keys the message did not define (counted with memo: allow).
  std::size_t undefined_memo_uses = 0;
  // Offsets of the '\n' that ends each text argument (GLOBAL and INST have
  // two), for the newline filter; a '\r' before one belongs to the argument.
  std::vector<std::uint32_t> line_ends;
  std::vector<std::uint32_t> frames;  // offsets of FRAME opcodes
};

struct framing_error {
  errc code = errc::ok;
  std::uint64_t offset = 0;  // from the start of the stream
  int opcode = -1;           // the opcode byte involved, or -1
  std::string detail;        // what was found: the bad argument, the stray bytes

  // "offset 1042: unknown opcode 0x0a (...)": the cause, for error lines.
  std::string describe() const;
  // The same without "offset N: ".
  std::string cause() const;
};

enum class frame_status {
  message,    // data[0, message().size) is one whole pickle
  stray,      // data[0, stray_size()) are stray bytes (on_stray: divert)
  need_more,  // nothing is consumed; pass at least bytes_wanted() bytes
  end,        // finish(): the stream ended cleanly at a message boundary
  error,      // error() says where and why; the framer stays failed
};

class framer {
 public:
  explicit framer(framer_options options = {});

  // Back to a new framer's state, keeping the memory it allocated: one
  // framer checks many separate messages without allocating for each.
  void restart();

  // Frames the first message of `data`: the stream's bytes from the first
  // one not yet consumed. Bytes passed to an earlier call and not consumed
  // must be passed again, unchanged and first (they may have moved in
  // memory); the framer resumes where it stopped instead of rescanning.
  frame_status next(bytes_view data);

  // The stream has ended; `data` holds its unconsumed bytes. Call after
  // next() said need_more. Returns end, stray (the rest is stray; call again
  // with what is left), or error (truncated_message: the bytes are lost).
  frame_status finish(bytes_view data);

  const message_info& message() const { return info_; }
  std::size_t stray_size() const { return stray_size_; }
  std::size_t bytes_wanted() const { return wanted_; }
  const framing_error& error() const { return error_; }
  // Stream offset of the first unconsumed byte.
  std::uint64_t stream_offset() const { return stream_offset_; }
  const framer_options& options() const { return options_; }

 private:
  frame_status parse(bytes_view data);
  template <bool collect>
  std::size_t skim(const std::uint8_t* base, std::size_t pos, std::size_t bound,
                   unsigned& protocols);
  frame_status start_message(bytes_view data);
  frame_status divert_stray(bytes_view data, bool at_end);
  frame_status fail(errc code, std::size_t at, int opcode, std::string detail);
  frame_status want(std::size_t total);
  frame_status need_bytes(bytes_view data, std::size_t total);
  frame_status complete(std::size_t size);
  void reset_message();

  frame_status reject(bytes_view data, errc code, std::size_t at, int opcode,
                      std::string detail);
  void define_memo(std::uint64_t key);
  void grow_memo(std::size_t size);
  bool use_memo(std::uint64_t key);

  framer_options options_;
  std::uint64_t stream_offset_ = 0;
  // The last message opened without a PROTO marker: a protocol 0/1 stream,
  // where stray bytes cannot be told from a message and are an error.
  bool protocol01_stream_ = false;

  // Resume state of the message being parsed (offsets from its start).
  bool in_message_ = false;
  bool tentative_ = false;  // may turn out to be stray bytes
  std::size_t pos_ = 0;           // start of the next opcode to read
  std::size_t scan_from_ = 0;     // where the search for '\n' goes on
  std::size_t pair_split_ = 0;    // start of a GLOBAL's second line, once found
  std::size_t frame_end_ = 0;     // end of the current FRAME, 0 when none
  // The protocols of the opcodes read so far, as a bit set: cheaper per
  // opcode than a running max.
  unsigned protocols_ = 0;
  int declared_proto_ = -1;

  // Which memo keys the message has defined: dense keys, 1 where defined,
  // and far-off keys.
  std::vector<std::uint8_t> memo_;
  // Ordered, so that the keys the dense range grows over are found at its
  // front, not by a scan of all of them at each growth.
  std::set<std::uint64_t> sparse_memo_;
  std::size_t memo_count_ = 0;

  message_info info_;
  std::size_t stray_size_ = 0;
  std::size_t wanted_ = 1;
  framing_error error_;
};

}  // namespace pickleway
