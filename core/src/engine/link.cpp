#include "engine/link.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/use_awaitable.hpp>

#include "engine/message_codec.hpp"
#include "pickleway/errc.hpp"

namespace pickleway {
namespace {

constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);
// The least room a read from the connection gets.
constexpr std::size_t read_chunk = 256 * 1024;
// Bytes waiting for the pump past which the receiver pauses.
constexpr std::size_t high_water = 1024 * 1024;
// The most a single write sends before control frames get their turn.
constexpr std::uint64_t send_chunk = 256 * 1024;
// Between reconnects that break during their hello.
constexpr std::chrono::milliseconds reconnect_pause{100};

using clock = std::chrono::steady_clock;

std::uint64_t frame_size(std::span<const std::uint8_t> from, std::size_t pos, bool& whole) {
  whole = false;
  if (from.size() - pos < 4) return 0;
  std::uint64_t size = 0;
  for (std::size_t i = 0; i < 4; ++i) size = (size << 8) | from[pos + i];
  std::size_t header = 4;
  if (size == 0xFFFF'FFFF) {
    if (from.size() - pos < 12) return 0;
    size = 0;
    for (std::size_t i = 4; i < 12; ++i) size = (size << 8) | from[pos + i];
    header = 12;
  }
  const std::uint64_t total = header + size;
  whole = total <= from.size() - pos;
  return total;
}

}  // namespace

struct link::connection {
  connection(asio::io_context& io, std::unique_ptr<byte_stream> s)
      : stream(std::move(s)), wait(io), last_received(clock::now()), last_sent(clock::now()) {}
  ~connection() { wait.forget_all(); }

  std::unique_ptr<byte_stream> stream;
  waiter wait;
  bool alive = true;
  std::vector<std::uint8_t> control;       // frames to send at the next frame boundary
  clock::time_point last_received, last_sent;
  bool paused = false;    // the receiver holds off until the pump takes more
  bool end_sent = false;  // END on this connection
  bool fin_sent = false;  // our side closed, the link being finished
};

link::link(asio::io_context& io, link_wire::link_id id, bool connector, link_options options,
           std::uint64_t max_message, std::string label, hooks h)
    : io_(io),
      id_(id),
      connector_(connector),
      options_(options),
      max_message_(max_message),
      label_(std::move(label)),
      hooks_(std::move(h)),
      ack_timer_(io),
      resume_timer_(io),
      space_changed_(io),
      send_changed_(io),
      data_changed_(io),
      data_taken_(io),
      ack_due_(io) {}

link::~link() = default;

template <typename Body>
void link::spawn(Body body) {
  asio::co_spawn(io_, [self = shared_from_this(), body]() { return body(*self); },
                 [self = shared_from_this()](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     self->tell_fail(std::string("the link could not go on: ") + ex.what());
                   }
                   self->stop();
                 });
}

// The instance hears of the link only until it stops the link (its end).
void link::tell_fail(const std::string& error) {
  if (!stopped_) hooks_.fail(error);
}
void link::tell_log(const std::string& line) {
  if (!stopped_) hooks_.log(line);
}
void link::tell_changed() {
  if (!stopped_) hooks_.changed();
}

void link::attach(std::unique_ptr<byte_stream> stream, std::uint64_t peer_next,
                  std::vector<std::uint8_t> early) {
  if (stopped_) return;
  const bool first = sent_ == 0 && highest_sent_ == 0 && stats_.reconnects == 0 && !recovering_ && !current_;
  if (current_) broken(*current_, "a new connection replaced it");
  // The far side has every message before peer_next: they need no ack.
  if (peer_next - 1 < acked_ || peer_next - 1 > taken_) {
    tell_fail(label_ + ": link broken: the far gateway expects message " +
                std::to_string(peer_next) + ", but " + std::to_string(acked_) +
                " were acknowledged and " + std::to_string(taken_) + " sent");
    return stop();
  }
  acked(peer_next - 1);
  sent_ = replay_.begin();
  if (highest_sent_ >= peer_next) {
    const std::uint64_t again = highest_sent_ - (peer_next - 1);
    stats_.resent += again;
  }
  if (!first) {
    ++stats_.reconnects;
    std::string cut;
    if (resent_seen_ > 0)
      cut = "; message " + std::to_string(received_ + 1) + " goes on after the " +
            std::to_string(resent_seen_) + " bytes of it that came before";
    tell_log(label_ + ": link resumed: the far gateway expects message " + std::to_string(peer_next) +
             " (" + std::to_string(taken_ - acked_) + " to send again)" + cut);
  }
  recovering_ = false;
  resume_timer_.cancel();
  auto c = std::make_shared<connection>(io_, std::move(stream));
  if (!early.empty()) {
    make_room(early.size());
    std::memcpy(in_.data() + in_end_, early.data(), early.size());
    in_end_ += early.size();
    if (!parse()) return;
  }
  // Where this side stands goes first: what it has written of the far side's.
  link_wire::encode_ack(written_, c->control);
  ack_sent_ = written_;
  received_bytes_acked_ = received_bytes_;
  current_ = c;
  spawn([c](link& l) { return l.receive(c); });
  spawn([c](link& l) { return l.send(c); });
  spawn([c](link& l) { return l.watch(c); });
  if (first) spawn([](link& l) { return l.acknowledge(); });
}

// ---- The pumps' side

void link::take(std::size_t n) {
  in_begin_ += n;
  whole_ -= n;
  if (in_begin_ == in_end_) in_begin_ = in_scanned_ = in_end_ = 0;
  data_taken_.notify();
}

asio::awaitable<io_result> link::more(std::size_t held) {
  for (;;) {
    if (in_scanned_ - in_begin_ > held) co_return io_result::moved(in_scanned_ - in_begin_);
    if (peer_ended_ && received_ >= peer_last_) co_return io_result::end();
    if (stopped_) co_return io_result::failure(asio::error::operation_aborted);
    co_await data_changed_.changed();
  }
}

// Room for a DATA frame of `frame` bytes: while what is not yet sent is
// below unsent_most and the replay buffer has room; one larger than the
// buffer goes when it is empty, alone.
bool link::has_room(std::uint64_t frame) const {
  const std::uint64_t held = replay_.size();
  return replay_.end() - sent_ < unsent_most && (held == 0 || held + frame <= options_.replay);
}

asio::awaitable<bool> link::room() {
  while (!accepting()) {
    if (stopped_) co_return false;
    co_await space_changed_.changed();
  }
  co_return true;
}

void link::taken_whole(std::uint64_t end) {
  ends_.push_back(end);
  ++taken_;
}

std::size_t link::offer(std::span<const std::uint8_t> message) {
  std::array<std::uint8_t, 12> header;
  const std::size_t header_size = length_header(message.size(), header);
  if (stopped_ || !has_room(header_size + message.size())) return 0;
  replay_.append({header.data(), header_size});
  replay_.append(message);
  taken_whole(replay_.end());
  send_changed_.notify();
  return header_size + message.size();
}

asio::awaitable<io_result> link::write(std::span<const std::uint8_t> from) {
  for (;;) {
    if (stopped_) co_return io_result::failure(asio::error::operation_aborted);
    // Whole messages, while the replay buffer has room.
    std::size_t pos = 0;
    for (;;) {
      bool whole = false;
      const std::uint64_t size = frame_size(from, pos, whole);
      if (!whole || !has_room(size)) break;
      replay_.append(from.subspan(pos, static_cast<std::size_t>(size)));
      taken_whole(replay_.end());
      pos += static_cast<std::size_t>(size);
    }
    if (pos > 0) {
      send_changed_.notify();
      co_return io_result::moved(pos);
    }
    co_await space_changed_.changed();
  }
}

void link::close_write() {
  end_requested_ = true;
  send_changed_.notify();
  tell_changed();
}

void link::delivered(std::uint64_t messages) {
  if (messages <= written_) return;
  written_ = messages;
  // Much came since the last ACK: it goes now, not at the end of ack_ms
  // (by the acknowledging coroutine: this is the pump's call stack).
  const std::uint64_t early = std::min<std::uint64_t>(options_.replay / 4, 1024 * 1024);
  if (received_bytes_ - received_bytes_acked_ >= early) {
    ack_now_ = true;
    ack_timer_.cancel();
  }
  ack_due_.notify();
}

void link::queue_ack() {
  link_wire::encode_ack(written_, current_->control);
  ack_sent_ = written_;
  received_bytes_acked_ = received_bytes_;
  send_changed_.notify();
  tell_changed();
}

bool link::finished() const {
  return end_requested_ && acked_ == taken_ && peer_ended_ && received_ >= peer_last_ &&
         written_ >= peer_last_ && ack_sent_ >= peer_last_;
}

link_stats link::stats() const {
  link_stats s = stats_;
  s.unacked = taken_ - acked_;
  s.unacked_bytes = replay_.size();
  return s;
}

void link::stop() {
  if (stopped_) return;
  stopped_ = true;
  ack_timer_.cancel();
  resume_timer_.cancel();
  if (current_) broken(*current_, {});
  for (event* e : {&space_changed_, &send_changed_, &data_changed_, &data_taken_, &ack_due_})
    e->notify();
}

// ---- A connection's coroutines

asio::awaitable<void> link::receive(std::shared_ptr<connection> c) {
  while (c->alive) {
    // The pump has enough to take: hold off (TCP slows the far side). Only
    // while it has a whole frame to take: it takes frames whole, so one
    // longer than high_water (at most max_message) is read to its end.
    if (in_end_ - in_begin_ >= high_water && whole_ > 0) {
      c->paused = true;
      co_await data_taken_.changed();
      c->paused = false;
      c->last_received = clock::now();
      continue;
    }
    make_room(read_chunk);
    const io_result r = c->stream->read({in_.data() + in_end_, in_.size() - in_end_});
    switch (r.status) {
      case io_status::done:
        in_end_ += r.bytes;
        c->last_received = clock::now();
        if (!parse()) co_return;
        break;
      case io_status::would_block:
        if (co_await c->wait.wait(r.wait_handle, r.wait_writable)) co_return;
        break;
      case io_status::eof:
      case io_status::failed:
        // Everything acknowledged both ways: however the far side closes
        // (it may not wait for our close), the link is over. Ours goes
        // out first, for a TLS peer's close_notify.
        if (finished()) {
          if (!c->fin_sent) {
            c->fin_sent = true;
            c->stream->close_write();
          }
          broken(*c, {});
          tell_changed();
          co_return;
        }
        broken(*c, (r.status == io_status::eof ? make_error_code(errc::far_gateway_closed) : r.error)
                       .message());
        co_return;
    }
  }
}

// At least `room` bytes free past in_end_: what the pump took goes first.
void link::make_room(std::size_t room) {
  if (in_.size() - in_end_ >= room) return;
  if (in_begin_ > 0) {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_scanned_ -= in_begin_;
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  if (in_.size() - in_end_ < room) in_.resize(in_end_ + room);
}

// Scans what came: a DATA frame's bytes stay where they are, for the pump;
// a control frame is taken out.
bool link::parse() {
  const std::size_t scanned_before = in_scanned_;
  while (in_scanned_ < in_end_) {
    const std::size_t avail = in_end_ - in_scanned_;
    if (frame_left_ > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(avail, frame_left_));
      if (resent_drop_ > 0) {
        const auto drop = static_cast<std::size_t>(std::min<std::uint64_t>(n, resent_drop_));
        take_out(drop);
        resent_drop_ -= drop;
        frame_left_ -= drop;
      } else {
        in_scanned_ += n;
        frame_left_ -= n;
      }
      if (frame_left_ == 0) {
        ++received_;
        received_bytes_ += frame_size_;
        whole_ += static_cast<std::size_t>(frame_size_);
      }
      continue;
    }
    const link_wire::frame f = link_wire::next_frame({in_.data() + in_scanned_, avail}, max_message_);
    switch (f.what) {
      case link_wire::frame::kind::need_more:
        break;
      case link_wire::frame::kind::data:
        frame_size_ = f.consumed + f.number;
        frame_left_ = frame_size_;
        if (resent_seen_ > 0) {  // the frame a break cut, from its start
          if (frame_size_ != resent_size_) {
            tell_fail(label_ + ": link broken: the far gateway sent message " +
                        std::to_string(received_ + 1) + " again with " + std::to_string(frame_size_) +
                        " bytes, first with " + std::to_string(resent_size_));
            stop();
            return false;
          }
          resent_drop_ = resent_seen_;
          resent_seen_ = 0;
        }
        continue;
      case link_wire::frame::kind::ack:
        // An ACK may be below what a resume hello already granted: the
        // hello counts what the far side received, an ACK what it wrote.
        if (f.number > taken_) {
          tell_fail(label_ + ": link broken: the far gateway acknowledges message " +
                      std::to_string(f.number) + " of " + std::to_string(taken_) + " sent");
          stop();
          return false;
        }
        acked(f.number);
        take_out(f.consumed);
        continue;
      case link_wire::frame::kind::keepalive:
        take_out(f.consumed);
        continue;
      case link_wire::frame::kind::end:
        if (f.number < received_) {
          tell_fail(label_ + ": link broken: the far gateway ends at message " +
                      std::to_string(f.number) + " after sending " + std::to_string(received_));
          stop();
          return false;
        }
        peer_ended_ = true;
        peer_last_ = f.number;
        take_out(f.consumed);
        data_changed_.notify();
        tell_changed();
        continue;
      case link_wire::frame::kind::bad:
        tell_fail(label_ + ": link broken: " + f.error);
        stop();
        return false;
    }
    break;  // need_more
  }
  if (in_scanned_ != scanned_before) data_changed_.notify();
  return true;
}

// Removes `n` bytes at in_scanned_ (a control frame, or a resent frame's
// part the pump has), moving what follows them in this read.
void link::take_out(std::size_t n) {
  std::memmove(in_.data() + in_scanned_, in_.data() + in_scanned_ + n, in_end_ - in_scanned_ - n);
  in_end_ -= n;
}

asio::awaitable<void> link::send(std::shared_ptr<connection> c) {
  while (c->alive) {
    const std::uint64_t replay_end = replay_.end();
    // Control frames go between DATA frames, never inside one.
    const bool at_boundary =
        sent_ == replay_.begin() || std::binary_search(ends_.begin(), ends_.end(), sent_);
    if (at_boundary && sent_ == replay_end && end_requested_ && !c->end_sent) {
      link_wire::encode_end(taken_, c->control);
      c->end_sent = true;
    }
    std::span<const std::uint8_t> chunk;
    bool control = false;
    if (at_boundary && !c->control.empty()) {
      chunk = c->control;
      control = true;
    } else if (sent_ < replay_end) {
      // Up to the last frame end at most send_chunk on, or, when the frame
      // under way is longer than that, up to its own end.
      const auto next_end = std::upper_bound(ends_.begin(), ends_.end(), sent_);
      const auto beyond = std::upper_bound(next_end, ends_.end(), sent_ + send_chunk);
      const std::uint64_t until = beyond == next_end ? *next_end : *std::prev(beyond);
      chunk = replay_.contiguous(sent_, until - sent_);
    } else if (finished() && !c->fin_sent) {
      // Everything acknowledged both ways: close our side; the far side's
      // close (EOF) ends the link.
      c->fin_sent = true;
      c->stream->close_write();
      tell_changed();
      continue;
    } else {
      co_await send_changed_.changed();
      continue;
    }
    const io_result r = c->stream->write(chunk);
    switch (r.status) {
      case io_status::done:
        c->last_sent = clock::now();
        if (control) {
          c->control.erase(c->control.begin(), c->control.begin() + static_cast<std::ptrdiff_t>(r.bytes));
        } else {
          sent_ += r.bytes;
          space_changed_.notify();
          const auto whole = static_cast<std::uint64_t>(
              std::upper_bound(ends_.begin(), ends_.end(), sent_) - ends_.begin());
          highest_sent_ = std::max(highest_sent_, acked_ + whole);
        }
        break;
      case io_status::would_block:
        if (co_await c->wait.wait(r.wait_handle, r.wait_writable)) co_return;
        break;
      case io_status::eof:
      case io_status::failed:
        broken(*c, (r.error ? r.error : make_error_code(errc::peer_closed_connection)).message());
        co_return;
    }
  }
}

asio::awaitable<void> link::watch(std::shared_ptr<connection> c) {
  asio::steady_timer tick(io_);
  const auto silence = 3 * options_.keepalive;
  while (c->alive) {
    tick.expires_after(options_.keepalive);
    co_await tick.async_wait(tuple_awaitable);
    if (!c->alive) co_return;
    const auto now = clock::now();
    if (!c->paused && now - c->last_received >= silence) {
      broken(*c, "nothing heard for " + std::to_string(silence.count()) + " ms");
      co_return;
    }
    // Idle for a keepalive: the replay buffer's spare blocks go back.
    if (now - c->last_sent >= options_.keepalive) replay_.release_spares();
    if (now - c->last_sent >= options_.keepalive && c->control.empty()) {
      link_wire::encode_keepalive(c->control);
      send_changed_.notify();
    }
  }
}

// Acknowledges what delivered() reports, every ack_ms, or at once when
// delivered() says much came.
asio::awaitable<void> link::acknowledge() {
  while (!stopped_) {
    if (written_ == ack_sent_ || !current_) {
      co_await ack_due_.changed();
      continue;
    }
    if (!ack_now_) {
      // delivered() cuts the wait short when much came.
      ack_timer_.expires_after(options_.ack);
      co_await ack_timer_.async_wait(tuple_awaitable);
      if (stopped_) co_return;
    }
    ack_now_ = false;
    if (!current_) continue;  // the next connection's first frame says it
    queue_ack();
  }
}

void link::acked(std::uint64_t number) {
  while (acked_ < number) {
    replay_.drop_until(ends_.front());
    ends_.pop_front();
    ++acked_;
  }
  if (sent_ < replay_.begin()) sent_ = replay_.begin();
  space_changed_.notify();
  tell_changed();
}

void link::broken(connection& c, const std::string& why) {
  if (!c.alive) return;
  c.alive = false;
  c.wait.forget_all();  // its coroutines' waits end
  c.stream.reset();
  if (current_.get() == &c) current_.reset();
  // What was not scanned comes again. So does a DATA frame cut short,
  // whole: the part scanned stays here, and is dropped from the resent one.
  in_end_ = in_scanned_;
  if (frame_left_ > 0) {
    resent_size_ = frame_size_;
    resent_seen_ = frame_size_ - frame_left_ + resent_drop_;
    frame_left_ = 0;
    resent_drop_ = 0;
  }
  for (event* e : {&send_changed_, &data_taken_}) e->notify();
  if (stopped_ || why.empty()) return;
  tell_log(label_ + ": link broken: " + why + "; resuming within " +
             std::to_string(options_.resume.count()) + " ms");
  if (!recovering_) {
    recovering_ = true;
    spawn([](link& l) { return l.recover(); });
  }
}

asio::awaitable<void> link::recover() {
  using namespace asio::experimental::awaitable_operators;
  resume_timer_.expires_after(options_.resume);
  bool unknown = false;
  if (!connector_) {
    // The far gateway reconnects; the session hands its connection over.
    const auto [cancelled] = co_await resume_timer_.async_wait(tuple_awaitable);
    if (cancelled || stopped_ || current_) co_return;
  } else {
    // New connections until one resumes, or the end of resume_ms (the
    // timer keeps its expiry when a reconnect ends its wait).
    asio::steady_timer pause(io_);
    for (;;) {
      auto got = co_await (hooks_.reconnect() || resume_timer_.async_wait(tuple_awaitable));
      if (stopped_ || current_) co_return;
      if (got.index() == 1) break;  // resume_ms is over
      reconnection& r = std::get<0>(got);
      if (r.stream) co_return attach(std::move(r.stream), r.peer_next, std::move(r.early));
      if (r.unknown) {
        unknown = true;
        break;
      }
      if (!r.broken) co_return;  // the instance failed, and said why
      // Broken during its hello (the far gateway going down, say): a
      // pause, so that a peer that resets at once is not spun on.
      pause.expires_after(reconnect_pause);
      const auto waited = co_await (pause.async_wait(tuple_awaitable) || resume_timer_.async_wait(tuple_awaitable));
      if (stopped_ || current_) co_return;
      if (waited.index() == 1) break;
    }
  }
  recovering_ = false;
  if (finished()) {  // the far side only missed our last word: nothing is lost
    tell_changed();
    co_return;
  }
  if (unknown) {
    tell_fail(label_ + ": link lost: the far gateway does not know this link");
  } else {
    tell_fail(label_ + ": link lost after resume_ms: " + std::to_string(taken_ - acked_) +
                " messages (" + std::to_string(replay_.size()) +
                " bytes) not acknowledged");
  }
  stop();
}

}  // namespace pickleway
