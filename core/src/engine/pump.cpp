#include "engine/pump.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "engine/link.hpp"
#include "pickleway/errc.hpp"
#include "pickleway/python_repr.hpp"

namespace pickleway {
namespace {

// As much as one read is worth taking from a child's widened pipe (1 MiB):
// a quarter of the reads, and wake-ups, of 64 KiB chunks.
constexpr std::size_t read_chunk = 256 * 1024;
constexpr std::size_t high_water = 256 * 1024;
// A pump that finds nothing to read gives back its buffers when they are
// empty, unless larger than this: a stream of large messages keeps its own.
constexpr std::size_t kept_when_idle = 2 * high_water;

// One read buffer for the pumps of a thread: a pump that holds no input
// reads into it and copies into a buffer of its own only what is left of
// a message the read cut, so that an idle instance holds no read buffer.
std::span<std::uint8_t> shared_read_buffer() {
  thread_local const auto buffer = std::make_unique_for_overwrite<std::uint8_t[]>(read_chunk);
  return {buffer.get(), read_chunk};
}

}  // namespace

pump::pump(direction dir, endpoint_runtime& from, endpoint_runtime& to,
           std::vector<filter*> chain, const output_hints& hints, hooks h)
    : dir_(dir),
      from_(from),
      to_(to),
      chain_(std::move(chain)),
      hints_(hints),
      hooks_(std::move(h)),
      reader_(make_reader(from.config->framing, from.read_offset)),
      pickle_check_(to.config->framing.pickle),
      in_(from.early_input.size()),
      refused_(chain_.size()),
      out_offset_(to.write_offset) {
  if (!from_.link && !from_.stream->can_read()) source_done_ = input_closed_ = true;  // one-way
  // Bytes read with the auth handshake, past its end: the first messages.
  std::copy(from_.early_input.begin(), from_.early_input.end(), in_.begin());
  in_end_ = from_.early_input.size();
  from_.early_input.clear();
  from_.early_input.shrink_to_fit();
}

asio::awaitable<void> pump::run(waiter& w) {
  while (!ended_) {
    int fd = -1;
    bool writable = false;
    if (out_begin_ < out_.size()) {
      const std::span<const std::uint8_t> pending{out_.data() + out_begin_, out_.size() - out_begin_};
      const io_result r = to_.link ? co_await to_.link->write(pending) : to_.stream->write(pending);
      if (r.error == asio::error::operation_aborted && to_.link) co_return;  // the instance ended
      if (wrote(r, fd, writable)) continue;
    } else if (input_closed_) {
      finish();
      co_return;
    } else {
      process();
      if (out_begin_ < out_.size() || input_closed_) continue;
      // Everything taken from the source so far is written on (or
      // dropped): a link's far gateway, or a broker, may hear so.
      report_delivered();
      // A link that takes nothing now: its room first, rather than more
      // input that could not go on.
      if (to_.link && !to_.link->accepting()) {
        if (co_await to_.link->room()) continue;
        co_return;  // the instance ended
      }
      if (from_.link) {
        if (co_await take_from_link()) continue;
        co_return;  // the instance ended
      }
      if (drained_ >= 0) {
        // The last read emptied the source: wait, rather than read again
        // only to hear that it would block.
        fd = std::exchange(drained_, -1);
        if (in_begin_ == in_end_) give_back_buffers();
        if (co_await w.wait(fd, false)) co_return;  // cancelled: the instance has ended
        continue;
      }
      const bool shared = in_begin_ == in_end_ && reader_->wanted() <= read_chunk;
      if (!shared) make_room();
      const std::span<std::uint8_t> room =
          shared ? shared_read_buffer() : std::span<std::uint8_t>{in_.data() + in_end_, in_.size() - in_end_};
      const io_result r = from_.stream->read(room);
      switch (r.status) {
        case io_status::done:
          drained_ = r.wait_handle;
          if (shared) {
            take_shared({room.data(), r.bytes});
          } else {
            in_end_ += r.bytes;
          }
          continue;
        case io_status::would_block:
          if (in_begin_ == in_end_) give_back_buffers();
          fd = r.wait_handle;
          writable = r.wait_writable;
          break;
        case io_status::eof:
          source_done_ = true;
          continue;
        case io_status::failed:
          // What came before the failure still goes on if it is complete.
          source_done_ = true;
          read_error_ = from_.label + ": offset " + std::to_string(reader_->offset() + (in_end_ - in_begin_)) +
                        ": read failed: " + r.error.message();
          continue;
      }
    }
    if (co_await w.wait(fd, writable)) co_return;  // cancelled: the instance has ended
  }
}

// A link's DATA frames are framed where they arrived, and taken whole;
// false when the instance has ended.
asio::awaitable<bool> pump::take_from_link() {
  const bytes_view got = from_.link->received();
  const std::size_t used = process(got);
  if (used > 0) {
    from_.link->take(used);
    co_return true;
  }
  if (input_closed_) co_return true;
  // Nothing whole in it: until more comes (its read waits on the link,
  // which another pump may be reading the connection for).
  const io_result r = co_await from_.link->more(got.size());
  if (r.error == asio::error::operation_aborted) co_return false;
  if (r.status == io_status::eof) source_done_ = true;
  co_return true;
}

void pump::process() {
  in_begin_ += process({in_.data() + in_begin_, in_end_ - in_begin_});
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
}

void pump::take_shared(bytes_view got) {
  const std::size_t used = process(got);
  // What the pump could not take yet (a message cut short, or more than
  // the output takes now) is its own input from here on.
  const std::size_t rest = got.size() - used;
  if (rest == 0) return;
  if (in_.size() < rest) in_.resize(rest);
  std::memcpy(in_.data(), got.data() + used, rest);
  in_begin_ = 0;
  in_end_ = rest;
}

void pump::give_back_buffers() {
  if (in_.capacity() <= kept_when_idle) std::vector<std::uint8_t>().swap(in_);
  in_begin_ = in_end_ = 0;
  if (out_begin_ == out_.size() && out_.capacity() <= kept_when_idle) {
    std::vector<std::uint8_t>().swap(out_);
    out_begin_ = 0;
  }
}

std::size_t pump::process(bytes_view input) {
  std::size_t used = 0;
  // A link destination with nothing queued takes messages as they come,
  // while it accepts them.
  const auto output_has_room = [&] {
    if (out_.size() - out_begin_ >= high_water) return false;
    return !to_.link || out_begin_ < out_.size() || to_.link->accepting();
  };
  while (!input_closed_ && output_has_room()) {
    const bytes_view data = input.subspan(used);
    const std::uint64_t offset = reader_->offset();
    read_step s = reader_->next(data);
    if (s.status == frame_status::need_more && source_done_) {
      if (!read_error_.empty()) {
        stop_input(errc::read_failed, read_error_);
        return used;
      }
      s = reader_->finish(data);
    }
    switch (s.status) {
      case frame_status::message:
        used += s.consumed;
        // A length-framed message's bytes start after its length.
        deliver(s.message, s.info, offset, s.consumed - s.message.size());
        break;
      case frame_status::stray:
        used += s.consumed;
        stats_.stray_bytes += s.consumed;
        hooks_.log(from_.label + ": offset " + std::to_string(offset) + ": stray bytes diverted: " +
                   preview(s.message, 256) + hints_.for_stream(s.message));
        break;
      case frame_status::need_more:
        return used;
      case frame_status::end:
        input_closed_ = true;
        return used;
      case frame_status::error:
        // A pickle-framed reader fails on the message that starts `data`.
        stop_input(s.code, from_.label + ": " + s.error +
                   (from_.config->framing.kind == framing_kind::pickle ? hints_.for_stream(data) : ""));
        return used;
    }
  }
  return used;
}

void pump::deliver(bytes_view bytes, const message_info* info, std::uint64_t offset,
                   std::size_t header) {
  if (!to_.link && !to_.stream->can_write()) {
    stop_input(errc::write_failed, from_.label + ": offset " + std::to_string(offset) + ": " + to_.label + ": " +
               std::string(errc_message(errc::no_writing_side)));
    return;
  }
  message m(bytes, stats_.messages + stats_.dropped + 1, offset + header, info);
  for (std::size_t i = 0; i < chain_.size(); ++i) {
    filter* f = chain_[i];
    std::string error;
    const filter_result result = f->on_message(dir_, m, error);
    if (result != filter_result::pass) ++refused_[i];
    if (result == filter_result::drop) {
      ++stats_.dropped;
      ++handled_;
      return;
    }
    if (result == filter_result::fail) {
      stop_input(errc::filter_failed, from_.label + ": offset " + std::to_string(offset) + ": " + error +
                 hints_.for_message(m.bytes()));
      return;
    }
  }
  const bytes_view out = m.bytes();
  // Bytes that did not come through the framer (a length-framed source, a
  // filter's rewrite) must still be one whole pickle before a pickle
  // endpoint gets them: Python is never handed garbage.
  const bool framed = from_.config->framing.kind == framing_kind::pickle && !m.replaced();
  if (to_.config->framing.kind == framing_kind::pickle && !framed) {
    errc code = errc::ok;
    if (const std::string problem = whole_pickle_problem(out, pickle_check_, code);
        !problem.empty()) {
      stop_input(code, from_.label + ": offset " + std::to_string(offset) + ": message " +
                 std::to_string(m.sequence()) + " is not one whole pickle for " + to_.label + ": " +
                 problem + hints_.for_message(out));
      return;
    }
  }
  // To a link with nothing queued before it: straight into its replay
  // buffer, which keeps the bytes anyway, rather than copied twice.
  if (to_.link && out_begin_ == out_.size()) {
    if (const std::size_t taken = to_.link->offer(out); taken > 0) {
      out_offset_ += taken;
      ++stats_.messages;
      ++handled_;
      stats_.bytes += out.size();
      return;
    }
  }
  encode_message(to_.config->framing.kind, out, out_);
  ++stats_.messages;
  ++handled_;
  stats_.bytes += out.size();
}

bool pump::wrote(const io_result& r, int& fd, bool& writable) {
  switch (r.status) {
    case io_status::done:
      out_begin_ += r.bytes;
      out_offset_ += r.bytes;
      if (out_begin_ == out_.size()) {
        out_.clear();
        out_begin_ = 0;
      } else if (out_begin_ >= high_water) {
        out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_begin_));
        out_begin_ = 0;
      }
      return true;
    case io_status::would_block:
      fd = r.wait_handle;
      writable = r.wait_writable;
      return false;
    case io_status::eof:
    case io_status::failed:
      break;
  }
  // The destination is gone: what was for it is lost with it.
  const std::string why = (r.error ? r.error : make_error_code(errc::peer_closed)).message();
  out_.clear();
  out_begin_ = 0;
  stop_input(errc::write_failed, to_.label + ": offset " + std::to_string(out_offset_) + ": write failed: " + why);
  return true;
}

void pump::stop_input(errc cause, const std::string& error) {
  if (!failed_) hooks_.fail(cause, error);
  failed_ = true;
  input_closed_ = true;
}

void pump::finish() {
  if (!failed_) {
    for (filter* f : chain_) {
      std::string error;
      if (f->on_end(dir_, error) == filter_result::fail) {
        stop_input(errc::filter_failed, from_.label + ": at the end of the stream: " + error);
        break;
      }
    }
  }
  if (!failed_) report_delivered();  // the last messages are written too
  // The destination's reader sees EOF: every message before it is whole.
  if (to_.link) {
    to_.link->close_write();
  } else if (to_.stream->can_write()) {
    to_.stream->close_write();
  }
  from_.read_closed = true;
  ended_ = true;
  hooks_.ended();
}

void pump::report_delivered() {
  if (from_.link) {
    from_.link->delivered(handled_);
  } else if (from_.stream->can_read()) {
    from_.stream->delivered(handled_);
  }
}

void pump::make_room() {
  if (in_begin_ > 0) {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  // Room for what the reader wants, grown with what arrives (at most
  // doubled at a time), never at once to a length the peer only declares.
  const std::size_t target =
      std::max(in_end_ + read_chunk, std::min(reader_->wanted(), 2 * in_.size()));
  if (in_.size() < target) in_.resize(target);
}

}  // namespace pickleway
