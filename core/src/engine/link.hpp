// One end of a link between two gateways (`framing: link`) for one
// instance: the connection between them may break, and be replaced, without
// a message being lost, doubled or reordered (docs/framing.md).
//
// To the instance's pumps it is a length-framed stream both ways: read()
// gives the messages the far gateway sent, write() takes the messages for
// it. Underneath:
// - every message written is kept in a replay buffer until the far gateway
//   acknowledges that it wrote it to its own far endpoint; a full buffer,
//   or 1 MiB in it not yet sent, holds write() back, so the producer is
//   slowed, never dropped;
// - delivered() says which of the messages read are written on this side;
//   they are acknowledged at least every ack_ms, and at once when a
//   quarter of the replay buffer (at most 1 MiB) came since the last ACK,
//   so that a fast stream keeps the far side's replay buffer small;
// - a connection that breaks (an error, a reset, or nothing heard for 3 x
//   keepalive_ms) is closed, and a new one resumes where each side's
//   acknowledgements say: the connector opens it (through the transport,
//   TLS and auth, and its hello), the acceptor is handed it by its session;
//   not back within resume_ms, the link fails its instance.
//
// Each connection has its coroutines (receiving, sending, the keepalive
// watch), which end when it is closed; the link itself lives as long as its
// instance, and stop() ends everything.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "config.hpp"
#include "engine/event.hpp"
#include "engine/link_protocol.hpp"
#include "engine/replay_buffer.hpp"
#include "engine/waiter.hpp"
#include "pickleway/stream.hpp"

namespace pickleway {

struct link_stats {
  std::uint64_t reconnects = 0;    // connections after the first
  std::uint64_t resent = 0;        // messages sent again on a new connection
  std::uint64_t unacked = 0;       // messages held for the far gateway now
  std::uint64_t unacked_bytes = 0;
};

class link : public std::enable_shared_from_this<link> {
 public:
  // The most the replay buffer holds that was not yet sent: past it, the
  // pump waits as it would on the socket, so the buffer holds what is in
  // flight rather than filling up with what the connection cannot take yet.
  static constexpr std::uint64_t unsent_most = 1024 * 1024;

  // What the connector's reconnect gives: a connection whose hello is done,
  // or none (`unknown`: the far gateway does not know the link; else the
  // instance failed on the way, and said why).
  struct reconnection {
    std::unique_ptr<byte_stream> stream;
    std::uint64_t peer_next = 0;
    std::vector<std::uint8_t> early;
    bool unknown = false;
    // The connection opened and broke during the hello: worth trying again.
    bool broken = false;
  };
  struct hooks {
    // The connector's way to a new connection: open it through the
    // transport, TLS and auth, and say hello.
    std::function<asio::awaitable<reconnection>()> reconnect;
    std::function<void(const std::string& error)> fail;
    std::function<void(const std::string& line)> log;
    std::function<void()> changed;  // finished() may have become true
  };

  link(asio::io_context& io, link_wire::link_id id, bool connector, link_options options,
       std::uint64_t max_message, std::string label, hooks h);
  ~link();

  const link_wire::link_id& id() const { return id_; }
  // The number of the next message this side expects: for a hello or welcome.
  std::uint64_t next_expected() const { return received_ + 1; }

  // A connection whose hello is done: the first, or (the acceptor's) a
  // resumed one the session hands over; `early` holds bytes read past the
  // hello. The far side expects `peer_next` next.
  void attach(std::unique_ptr<byte_stream> connection, std::uint64_t peer_next,
              std::vector<std::uint8_t> early);

  // The pumps' side. The reading pump frames the DATA frames where they
  // arrived (no copy): received() is what it has not yet taken, take(n)
  // says it is done with the first n bytes (whole frames), and more(held)
  // waits until
  // received() holds more than `held` bytes (moved), the far side has
  // ended (end) or stop() (operation_aborted). The writing pump hands a
  // message straight to the replay buffer with offer() when it has room
  // (the bytes it took, framed; 0: it has none now), and otherwise writes
  // length-framed messages with write(), which waits as long as it must
  // (never would_block).
  std::span<const std::uint8_t> received() const { return {in_.data() + in_begin_, in_scanned_ - in_begin_}; }
  void take(std::size_t n);
  asio::awaitable<io_result> more(std::size_t held);
  std::size_t offer(std::span<const std::uint8_t> message);
  // Whether offer() may take a message now (what is not yet sent is below
  // its bound); room() waits until it may, false after stop().
  bool accepting() const { return !stopped_ && replay_.end() - sent_ < unsent_most; }
  asio::awaitable<bool> room();
  asio::awaitable<io_result> write(std::span<const std::uint8_t> from);
  void close_write();                      // no more messages this way: END, once all is sent
  void delivered(std::uint64_t messages);  // of those read, written on this side (cumulative)

  // Both sides' messages acknowledged and both ends said.
  bool finished() const;
  // Finished and closed (or stopped): the instance may end.
  bool done() const { return stopped_ || (finished() && !current_ && !recovering_); }
  void stop();
  link_stats stats() const;

 private:
  struct connection;

  template <typename Body>
  void spawn(Body body);
  void tell_fail(const std::string& error);
  void tell_log(const std::string& line);
  void tell_changed();

  asio::awaitable<void> receive(std::shared_ptr<connection> c);
  asio::awaitable<void> send(std::shared_ptr<connection> c);
  asio::awaitable<void> watch(std::shared_ptr<connection> c);
  asio::awaitable<void> acknowledge();
  asio::awaitable<void> recover();  // after a break: a new connection within resume_ms
  bool parse();  // false: a protocol error (the instance failed)
  void make_room(std::size_t room);
  bool has_room(std::uint64_t frame) const;
  void taken_whole(std::uint64_t end);  // a DATA frame ending at `end` is in the replay buffer
  void take_out(std::size_t n);
  void acked(std::uint64_t number);
  void queue_ack();
  void broken(connection& c, const std::string& why);

  asio::io_context& io_;
  const link_wire::link_id id_;
  const bool connector_;
  const link_options options_;
  const std::uint64_t max_message_;
  const std::string label_;
  hooks hooks_;
  std::shared_ptr<connection> current_;  // null while broken
  bool stopped_ = false;
  bool recovering_ = false;
  asio::steady_timer ack_timer_;
  asio::steady_timer resume_timer_;

  // Outgoing: the DATA frames of messages acked_ + 1 .. taken_, as the
  // pump wrote them (a DATA frame is a length-framed message), by their
  // offset in the outgoing stream; ends_ has each one's end.
  replay_buffer replay_;
  std::deque<std::uint64_t> ends_;
  std::uint64_t taken_ = 0;
  std::uint64_t acked_ = 0;
  std::uint64_t sent_ = 0;          // absolute offset sent on the current connection
  std::uint64_t highest_sent_ = 0;  // messages ever sent, for the count resent
  bool end_requested_ = false;
  event space_changed_;  // acks freed room in the replay buffer, or some was sent
  event send_changed_;   // something to send

  // Incoming, in one buffer: in_[in_begin_, in_scanned_) are DATA frames
  // for the pump, which frames them in place, and takes them whole;
  // in_[in_scanned_, in_end_) came from the connection, not yet scanned.
  std::vector<std::uint8_t> in_;
  std::size_t in_begin_ = 0;
  std::size_t in_scanned_ = 0;
  std::size_t in_end_ = 0;
  std::size_t whole_ = 0;  // of in_[in_begin_, in_scanned_), the bytes of whole DATA frames
  std::uint64_t frame_size_ = 0;  // the DATA frame under way, header included
  std::uint64_t frame_left_ = 0;  // of it, not yet scanned; 0 between frames
  // A break inside a DATA frame: the far side sends that frame again, and
  // the part of it already scanned is dropped (the bytes are the same).
  std::uint64_t resent_size_ = 0;
  std::uint64_t resent_seen_ = 0;
  std::uint64_t resent_drop_ = 0;  // of the resent frame, still to drop
  std::uint64_t received_ = 0;   // whole messages received
  std::uint64_t written_ = 0;    // of those, delivered()
  std::uint64_t ack_sent_ = 0;   // the last ACK queued
  std::uint64_t received_bytes_ = 0;  // of whole messages' DATA frames
  std::uint64_t received_bytes_acked_ = 0;  // received_bytes_ at the last ACK
  bool ack_now_ = false;                    // the next ACK goes without waiting ack_ms
  bool peer_ended_ = false;
  std::uint64_t peer_last_ = 0;
  event data_changed_;  // messages arrived, or the peer ended
  event data_taken_;    // the pump took some: a paused receiver goes on
  event ack_due_;

  link_stats stats_;
};

}  // namespace pickleway
