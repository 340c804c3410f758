// One direction of an instance: reads one endpoint's stream, frames it into
// messages, runs the filter chain, and writes each message to the other
// endpoint as soon as it is whole.
//
// Bounded: input is held up to one message (max_message) plus a read chunk;
// output up to a high-water mark plus one message. While output is above
// the mark the pump stops reading, so a slow reader slows the writer.
// Buffers are taken when data comes and given back when the source has
// nothing more: a pump holding nothing reads into one buffer its thread's
// pumps share, and keeps only what is left of a message the read cut.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include "engine/message_codec.hpp"
#include "engine/waiter.hpp"
#include "output_hints.hpp"
#include "pickleway/filter.hpp"

namespace pickleway {

class link;

// An opened endpoint, as the pumps of an instance share it: its stream, or
// for `framing: link` the link that holds its connection (the stream is
// then the connection being opened, until the link takes it).
struct endpoint_runtime {
  const endpoint_config* config = nullptr;
  std::string label;  // "endpoint a (spawn)"
  std::unique_ptr<byte_stream> stream;
  std::shared_ptr<pickleway::link> link;
  bool read_closed = false;  // no pump reads it any more
  // What an `auth` handshake leaves to the pumps: bytes the peer sent after
  // it (its first messages), and the stream offsets it read and wrote up to.
  std::vector<std::uint8_t> early_input;
  std::uint64_t read_offset = 0;
  std::uint64_t write_offset = 0;
};

struct direction_stats {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t dropped = 0;
  std::uint64_t stray_bytes = 0;
};

class pump {
 public:
  // How the pump reaches the world: report an error, log a line, say it
  // has ended. The instance provides them, and the waiter it waits with.
  struct hooks {
    std::function<void(errc cause, const std::string& error)> fail;
    std::function<void(const std::string& line)> log;
    std::function<void()> ended;
  };

  // `hints` (the session's, output_hints.hpp) outlives the pump.
  pump(direction dir, endpoint_runtime& from, endpoint_runtime& to,
       std::vector<filter*> chain, const output_hints& hints, hooks h);

  // Moves messages until the direction ends (then the `ended` hook), or
  // until a wait of it is cancelled (the instance is gone: it returns at
  // once, touching nothing).
  asio::awaitable<void> run(waiter& w);
  bool ended() const { return ended_; }
  const direction_stats& stats() const { return stats_; }
  // Per filter of the chain, in the pump's order: messages it dropped or
  // failed on.
  const std::vector<std::uint64_t>& refused() const { return refused_; }
  direction dir() const { return dir_; }

 private:
  // What a write of the output did; false when it must wait for (fd, writable).
  bool wrote(const io_result& r, int& fd, bool& writable);
  void process();  // buffered input -> output, until the high-water mark
  asio::awaitable<bool> take_from_link();
  // `input` -> output, until the high-water mark; returns how much it took.
  std::size_t process(bytes_view input);
  // Bytes read into the shared buffer: processed, and what is left kept.
  void take_shared(bytes_view got);
  void give_back_buffers();  // nothing to read, nothing held
  // `offset`: the stream offset of the message's framing; `header`: how
  // many bytes of framing come before its bytes there.
  void deliver(bytes_view message, const message_info* info, std::uint64_t offset,
               std::size_t header);
  void stop_input(errc cause, const std::string& error);
  void finish();
  // Tells the source how many of its messages are written on (or dropped).
  void report_delivered();
  void make_room();

  direction dir_;
  endpoint_runtime& from_;
  endpoint_runtime& to_;
  std::vector<filter*> chain_;
  const output_hints& hints_;
  hooks hooks_;
  std::unique_ptr<message_reader> reader_;
  // Checks that what goes to a pickle endpoint without having come
  // through a framer is one whole pickle; kept, so that checking allocates
  // nothing per message.
  framer pickle_check_;

  std::vector<std::uint8_t> in_;
  std::size_t in_begin_ = 0, in_end_ = 0;
  std::vector<std::uint8_t> out_;
  std::size_t out_begin_ = 0;

  // The descriptor the last read drained (io_result::drained), or -1: the
  // next read waits on it first.
  int drained_ = -1;
  bool source_done_ = false;  // EOF or a read error: no more input
  bool input_closed_ = false; // nothing more will be decoded
  bool failed_ = false;
  std::vector<std::uint64_t> refused_;
  std::string read_error_;  // reported once the complete messages before it are out
  bool ended_ = false;
  std::uint64_t out_offset_ = 0;  // bytes written to `to_`
  std::uint64_t handled_ = 0;     // messages from `from_` written on or dropped
  direction_stats stats_;
};

}  // namespace pickleway
