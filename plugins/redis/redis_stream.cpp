#include "redis_stream.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <pickleway/errc.hpp>
#include <pickleway/guarded.hpp>

namespace pickleway::redis {
namespace {

// Entries handed on and not yet acknowledged: beyond this no more are read
// (with ack: replied, the requests a worker holds at once).
constexpr std::size_t max_taken = 1024;
// What one XREADGROUP or XAUTOCLAIM asks for: as many entries as fit in
// read_ahead_bytes, judged by the last batch, from 1 to max_batch.
constexpr std::size_t read_ahead_bytes = 8u << 20;
constexpr std::size_t max_batch = 512;
// The window of additions: beyond either, writes wait for confirmations.
constexpr std::size_t window_messages = 2048;
constexpr std::size_t window_bytes = 16u << 20;
// How long an XREADGROUP waits for new entries: also how long a drain may
// wait for the read in flight.
constexpr std::string_view block_ms = "500";

framer_options checking() {
  framer_options o;
  o.max_message = largest_max_message;  // the session's own framer applies its max_message
  o.memo = memo_policy::allow;          // and its memo policy
  return o;
}

// Why `bytes` are not one whole pickle; empty when they are.
std::string whole_pickle_problem(framer& f, const std::vector<std::uint8_t>& bytes) {
  f.restart();
  const frame_status s = f.next(bytes);
  if (s == frame_status::message && f.message().size == bytes.size()) return {};
  if (s == frame_status::message) return "it holds more than one pickle";
  if (s == frame_status::error) return f.error().describe();
  if (s == frame_status::need_more) return "it ends before its pickle does";
  return "it starts with stray bytes";
}

std::string reply_text(const redisReply& r) { return std::string(r.str ? r.str : "", r.len); }

// An error that says "not now" rather than "never": a Redis loading its
// data after a restart, a replica without its master, a busy script.
bool passing(const redisReply& r) {
  if (r.type != REDIS_REPLY_ERROR) return false;
  const std::string text = reply_text(r);
  for (const char* prefix : {"LOADING", "BUSY ", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN"})
    if (text.rfind(prefix, 0) == 0) return true;
  return false;
}

void clear(const unique_fd& signal) {
  std::uint64_t count = 0;
  (void)::read(signal.get(), &count, sizeof count);
}

}  // namespace

redis_stream::redis_stream(const settings& config, std::string consumer, std::string password,
                           log_sink* log, watcher& loop)
    : config_(config),
      consumer_(std::move(consumer)),
      password_(std::move(password)),
      log_(log),
      loop_(loop),
      reader_signal_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      writer_signal_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      retry_timer_(loop, [this] { connect(); }),
      claim_timer_(loop, [this] { sweep(); }),
      keep_timer_(loop, [this] { keep_held(); }),
      backoff_(config.retry.initial),
      check_(checking()),
      split_(checking()) {
  if (!reader_signal_ || !writer_signal_ || !retry_timer_.usable() || !claim_timer_.usable() ||
      !keep_timer_.usable()) {
    state_ = phase::failed;
    failure_ = "redis " + config_.address.text + ": cannot make its event descriptors";
    return;
  }
  connect();
}

redis_stream::~redis_stream() {
  // Connections first: their handlers use everything else.
  reader_.reset();
  commands_.reset();
}

int redis_stream::wait_handle() { return blocked(writer_signal_).wait_handle; }

std::string redis_stream::peer() const noexcept {
  return guarded([](std::string_view) { return std::string(); },
                 [&] { return "redis " + config_.address.text; });
}

void redis_stream::log(const std::string& text) const {
  if (log_) log_->line("redis " + config_.address.text + ": " + text);
}

// ---- Connections

void redis_stream::connect() {
  if (state_ == phase::failed) return;
  const auto on_lost = [this](std::string why) { lost(std::move(why)); };
  commands_ = std::make_unique<connection>(config_.address, loop_, on_lost);
  if (config_.read) reader_ = std::make_unique<connection>(config_.address, loop_, on_lost);
  const auto refuse_on_error = [this](std::string what) {
    return [this, what](const redisReply& r) {
      if (!later(*commands_, r) && r.type == REDIS_REPLY_ERROR) fail(what + ": " + reply_text(r));
    };
  };
  if (!password_.empty()) {
    commands_->command({"AUTH", password_}, refuse_on_error("AUTH"));
    if (reader_) reader_->command({"AUTH", password_}, refuse_on_error("AUTH"));
  }
  if (config_.read) {
    // From the stream's start: entries added before the first worker came
    // are work too.
    commands_->command({"XGROUP", "CREATE", config_.read->stream, config_.read->group, "0", "MKSTREAM"},
                       [this](const redisReply& r) {
                         if (later(*commands_, r)) return;
                         if (r.type == REDIS_REPLY_ERROR && reply_text(r).rfind("BUSYGROUP", 0) != 0)
                           fail("XGROUP CREATE " + config_.read->stream + " " + config_.read->group + ": " +
                                reply_text(r));
                       });
  }
  commands_->command({"PING"}, [this](const redisReply& r) {
    if (!later(*commands_, r)) ready();
  });
}

bool redis_stream::later(connection& c, const redisReply& r) {
  if (!passing(r)) return false;
  c.abandon(reply_text(r));
  return true;
}

void redis_stream::lost(std::string why) {
  if (state_ == phase::failed) return;
  // In flight is lost with the connections; what Redis has not confirmed
  // is still here, and goes again once they are back.
  reader_.reset();
  commands_.reset();
  reading_ = claiming_ = keeping_ = false;
  const bool was_up = state_ == phase::ready;
  state_ = phase::connecting;
  ++attempt_;
  const std::string attempts =
      config_.retry.attempts > 0 ? " of " + std::to_string(config_.retry.attempts) : "";
  if (config_.retry.attempts > 0 && attempt_ >= config_.retry.attempts)
    return fail((was_ready_ ? "connection lost: " : "cannot connect: ") + why + " (attempt " +
                std::to_string(attempt_) + attempts + ")");
  if (was_up || attempt_ == 1)
    log((was_up ? "connection lost: " : "cannot connect: ") + why + "; retrying (backoff from " +
        std::to_string(config_.retry.initial.count()) + " ms, doubling up to " +
        std::to_string(config_.retry.max.count()) + " ms)");
  retry_timer_.arm(backoff_);
  backoff_ = std::min(backoff_ * 2, config_.retry.max);
}

void redis_stream::ready() {
  if (state_ != phase::connecting) return;
  state_ = phase::ready;
  if (was_ready_ && attempt_ > 0) log("reconnected");
  was_ready_ = true;
  attempt_ = 0;
  backoff_ = config_.retry.initial;
  for (const auto& message : unconfirmed_) send_addition(message);
  for (const auto& ids : acks_) send_acknowledgement(ids);
  if (config_.read) {
    // Own pending entries first: those a crash (or the broken connection)
    // left unacknowledged. Those still held here are skipped.
    pending_after_ = "0";
    request_entries();
    claim_cursor_ = "0-0";
    sweep();
    keep_held();  // at once: the outage may have used up most of claim_ms
  }
  wake();
}

void redis_stream::fail(std::string why) {
  if (state_ == phase::failed) return;
  state_ = phase::failed;
  failure_ = "redis " + config_.address.text + ": " + why;
  // An open's failure is the opener's error; a running stream's goes to
  // the log, since a stream's error is a code.
  if (was_ready_ && log_) log_->line(failure_);
  wake();
}

// ---- Reading

void redis_stream::request_entries() {
  // The next batch is asked for while half of this one is still to go, so
  // that the pump seldom waits a round trip for it.
  if (!config_.read || state_ != phase::ready || reading_ || draining_ || queue_.size() > batch_ / 2 ||
      taken_.size() >= max_taken)
    return;
  const std::string count = std::to_string(batch_);
  const std::string after = pending_after_ ? *pending_after_ : ">";
  std::vector<std::string_view> args = {"XREADGROUP", "GROUP", config_.read->group, consumer_, "COUNT", count};
  if (!pending_after_) {  // history never blocks
    args.push_back("BLOCK");
    args.push_back(block_ms);
  }
  args.push_back("STREAMS");
  args.push_back(config_.read->stream);
  args.push_back(after);
  reading_ = reader_->command(args, [this](const redisReply& r) {
    reading_ = false;
    if (later(*reader_, r)) return;
    if (r.type == REDIS_REPLY_ERROR) return fail("XREADGROUP " + config_.read->stream + ": " + reply_text(r));
    std::vector<stream_entry> entries;
    std::string error;
    if (!read_group_entries(&r, entries, error)) return fail("XREADGROUP " + config_.read->stream + ": " + error);
    const bool again = pending_after_.has_value();
    if (again) {
      if (entries.empty()) {
        pending_after_.reset();  // on to new entries
      } else {
        pending_after_ = entries.back().id;
      }
    }
    take(entries, again);
    wake();
    request_entries();
  });
}

void redis_stream::sweep() {
  if (!config_.read || state_ != phase::ready || claiming_ || claim_unsupported_) return;
  if (draining_ || queue_.size() >= batch_ || taken_.size() >= max_taken) {
    claim_timer_.arm(config_.claim);  // full: the next round
    return;
  }
  const std::string idle = std::to_string(config_.claim.count());
  const std::string count = std::to_string(batch_);
  claiming_ = commands_->command(
      {"XAUTOCLAIM", config_.read->stream, config_.read->group, consumer_, idle, claim_cursor_, "COUNT", count},
      [this](const redisReply& r) {
        claiming_ = false;
        if (later(*commands_, r)) return;
        if (r.type == REDIS_REPLY_ERROR) {
          const std::string why = reply_text(r);
          if (why.find("unknown command") == std::string::npos)
            return fail("XAUTOCLAIM " + config_.read->stream + ": " + why);
          claim_unsupported_ = true;
          return log("XAUTOCLAIM is unknown to this Redis (it needs 6.2): entries other consumers "
                     "left pending are not taken over");
        }
        std::vector<stream_entry> entries;
        std::string error;
        if (!autoclaim_entries(&r, claim_cursor_, entries, error))
          return fail("XAUTOCLAIM " + config_.read->stream + ": " + error);
        take(entries, true);
        wake();
        // More to look at: go on at once; else the next round.
        if (claim_cursor_ != "0-0") return sweep();
        claim_timer_.arm(config_.claim);
      });
}

// A live consumer's entries must not look abandoned: without this, one
// that waits behind a long queue here, or a slow request, idles past
// claim_ms and another consumer takes it over and processes it again.
// XCLAIM to itself with JUSTID sets an entry's idle time back to zero
// without counting a delivery.
void redis_stream::keep_held() {
  if (!config_.read || state_ == phase::failed) return;
  keep_timer_.arm(keep_interval());
  // One at a time: behind a window of additions a reply may take long.
  if (state_ != phase::ready || keeping_ || (queue_.empty() && taken_.empty())) return;
  std::vector<std::string_view> args = {"XCLAIM", config_.read->stream, config_.read->group, consumer_, "0"};
  for (const entry& e : queue_) args.push_back(e.id);
  for (const std::string& id : taken_) args.push_back(id);
  args.push_back("JUSTID");
  keeping_ = commands_->command(args, [this](const redisReply& r) {
    keeping_ = false;
    if (later(*commands_, r)) return;
    if (r.type == REDIS_REPLY_ERROR) log("XCLAIM " + config_.read->stream + ": " + reply_text(r));
  });
}

void redis_stream::take(std::vector<stream_entry>& entries, bool again) {
  std::size_t bytes = 0;
  std::vector<std::string> skipped;
  for (stream_entry& e : entries) {
    bytes += e.payload.size();
    if (held_.contains(e.id)) continue;  // ours already
    std::string problem = e.problem;
    if (problem.empty()) problem = whole_pickle_problem(check_, e.payload);
    if (!problem.empty()) {
      // Passing it on would fail every worker in turn: it is set aside.
      log("stream " + config_.read->stream + ": entry " + e.id + " is not a message: " + problem +
          "; acknowledged and skipped");
      held_.insert(e.id);
      skipped.push_back(std::move(e.id));
      continue;
    }
    if (again) ++redeliveries_;
    held_.insert(e.id);
    queue_.push_back({std::move(e.id), std::move(e.payload)});
  }
  if (!skipped.empty()) acknowledge(std::move(skipped));
  if (!entries.empty()) {
    const std::size_t average = std::max<std::size_t>(1, bytes / entries.size());
    batch_ = std::clamp<std::size_t>(read_ahead_bytes / average, 1, max_batch);
  }
}

io_result redis_stream::read(std::span<std::uint8_t> into) noexcept {
  if (state_ == phase::failed) return failed_result();
  if (queue_.empty()) {
    if (draining_ && !reading_) return io_result::end();
    request_entries();
    return blocked(reader_signal_);
  }
  entry& e = queue_.front();
  const std::size_t n = std::min(into.size(), e.bytes.size() - front_sent_);
  std::memcpy(into.data(), e.bytes.data() + front_sent_, n);
  front_sent_ += n;
  if (front_sent_ == e.bytes.size()) {
    try {
      taken_.push_back(std::move(e.id));
    } catch (...) {
      return io_result::failure(make_error_code(std::errc::not_enough_memory));
    }
    queue_.pop_front();
    front_sent_ = 0;
    ++taken_count_;
    request_entries();
  }
  return io_result::moved(n);
}

void redis_stream::delivered(std::uint64_t messages) noexcept {
  if (!config_.read || config_.ack_replied || messages <= delivered_count_) return;
  guarded([this](std::string_view why) { fail(std::string(why)); }, [&] {
    std::vector<std::string> ids;
    while (delivered_count_ < messages && !taken_.empty()) {
      ids.push_back(std::move(taken_.front()));
      taken_.pop_front();
      ++delivered_count_;
    }
    delivered_count_ = messages;
    if (!ids.empty()) acknowledge(std::move(ids));
    request_entries();
  });
}

void redis_stream::acknowledge(std::vector<std::string> ids) {
  acks_.push_back(std::move(ids));
  if (state_ == phase::ready) send_acknowledgement(acks_.back());
}

void redis_stream::send_acknowledgement(const std::vector<std::string>& ids) {
  std::vector<std::string_view> args = {"XACK", config_.read->stream, config_.read->group};
  for (const std::string& id : ids) args.push_back(id);
  commands_->command(args, [this](const redisReply& r) {
    // Replies come in order: this is the oldest acknowledgement sent.
    if (later(*commands_, r)) return;
    if (r.type == REDIS_REPLY_ERROR) log("XACK " + config_.read->stream + ": " + reply_text(r));
    for (const std::string& id : acks_.front()) held_.erase(id);
    acks_.pop_front();
    wake();
    request_entries();
  });
}

bool redis_stream::drain() noexcept {
  if (!config_.read) return false;
  draining_ = true;
  wake();
  return true;
}

// ---- Writing

void redis_stream::send_addition(const std::vector<std::uint8_t>& message) {
  const std::string maxlen = std::to_string(config_.write->maxlen);
  const std::string_view bytes(reinterpret_cast<const char*>(message.data()), message.size());
  std::vector<std::string_view> args = {"XADD", config_.write->stream};
  if (config_.write->maxlen > 0) {
    args.push_back("MAXLEN");
    args.push_back("~");
    args.push_back(maxlen);
  }
  args.push_back("*");
  args.push_back("p");
  args.push_back(bytes);
  commands_->command(args, [this](const redisReply& r) {
    if (later(*commands_, r)) return;
    if (r.type == REDIS_REPLY_ERROR) return fail("XADD " + config_.write->stream + ": " + reply_text(r));
    // The oldest addition is confirmed; with ack: replied it is the reply
    // to the oldest request handed on.
    unconfirmed_bytes_ -= unconfirmed_.front().size();
    unconfirmed_.pop_front();
    if (config_.ack_replied && config_.read && !taken_.empty()) {
      std::vector<std::string> id{std::move(taken_.front())};
      taken_.pop_front();
      acknowledge(std::move(id));
      request_entries();
    }
    wake();
  });
}

io_result redis_stream::write(std::span<const std::uint8_t> from) noexcept {
  if (state_ == phase::failed) return failed_result();
  if (unconfirmed_.size() >= window_messages || unconfirmed_bytes_ >= window_bytes)
    return blocked(writer_signal_);
  return guarded(
      [](std::string_view) { return io_result::failure(make_error_code(std::errc::not_enough_memory)); },
      [&]() -> io_result {
        partial_.insert(partial_.end(), from.begin(), from.end());
        // Each whole pickle is one entry (the session's framer made them whole).
        for (;;) {
          const bytes_view rest{partial_.data() + partial_used_, partial_.size() - partial_used_};
          if (rest.empty()) break;
          const frame_status s = split_.next(rest);
          if (s == frame_status::need_more) break;
          if (s != frame_status::message) {
            fail("a message to add to " + config_.write->stream + " is not one whole pickle: " +
                 (s == frame_status::error ? split_.error().describe() : "stray bytes"));
            return failed_result();
          }
          const std::size_t size = split_.message().size;
          unconfirmed_.emplace_back(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(size));
          unconfirmed_bytes_ += size;
          partial_used_ += size;
          if (state_ == phase::ready) send_addition(unconfirmed_.back());
        }
        if (partial_used_ == partial_.size()) {
          partial_.clear();
          partial_used_ = 0;
        } else if (partial_used_ > partial_.size() / 2) {
          partial_.erase(partial_.begin(), partial_.begin() + static_cast<std::ptrdiff_t>(partial_used_));
          partial_used_ = 0;
        }
        return io_result::moved(from.size());
      });
}

io_result redis_stream::settle() noexcept {
  if (state_ == phase::failed) return failed_result();
  if (unconfirmed_.empty() && acks_.empty()) return io_result::moved(0);
  return blocked(writer_signal_);
}

// ---- Waits

io_result redis_stream::blocked(const unique_fd& signal) {
  clear(signal);
  (&signal == &reader_signal_ ? reader_waits_ : writer_waits_) = true;
  return io_result::blocked(signal.get(), false);
}

// Only a signal someone waits on is written: a system call per reply would
// cost more than the reply.
void redis_stream::wake() {
  const std::uint64_t one = 1;
  if (std::exchange(reader_waits_, false)) (void)::write(reader_signal_.get(), &one, sizeof one);
  if (std::exchange(writer_waits_, false)) (void)::write(writer_signal_.get(), &one, sizeof one);
}

io_result redis_stream::failed_result() const {
  return io_result::failure(make_error_code(errc::broker_failed));
}

}  // namespace pickleway::redis
