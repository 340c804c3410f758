// A redis endpoint's stream for one instance: messages from a consumer
// group (`read`) and to a stream (`write`), on two hiredis connections on
// the core's loop (XREADGROUP blocks its own; XADD, XACK, XAUTOCLAIM and
// XCLAIM share the other).
//
// Everything it holds is bounded: one and a half batches read ahead, at
// most max_taken entries handed on and not yet acknowledged, and a window
// of additions Redis has not confirmed (a full window is backpressure).
// What Redis has not confirmed is kept and sent again after a reconnect,
// so a Redis that goes away loses nothing that was not acknowledged.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <pickleway/fd_stream.hpp>
#include <pickleway/framer.hpp>
#include <pickleway/stream.hpp>
#include <pickleway/transport.hpp>

#include "connection.hpp"
#include "loop_timer.hpp"
#include "settings.hpp"
#include "stream_entries.hpp"

namespace pickleway::redis {

class redis_stream final : public byte_stream {
 public:
  enum class phase { connecting, ready, failed };

  redis_stream(const settings& config, std::string consumer, std::string password, log_sink* log,
               watcher& loop);
  ~redis_stream() override;

  // For the opener: the first connection's progress.
  phase state() const { return state_; }
  const std::string& failure() const { return failure_; }
  // Readable when state() may have changed.
  int wait_handle();

  io_result read(std::span<std::uint8_t> into) noexcept override;
  io_result write(std::span<const std::uint8_t> from) noexcept override;
  std::error_code close_write() noexcept override { return {}; }
  bool can_read() const noexcept override { return config_.read.has_value(); }
  bool can_write() const noexcept override { return config_.write.has_value(); }
  std::string peer() const noexcept override;
  void delivered(std::uint64_t messages) noexcept override;
  bool drain() noexcept override;
  io_result settle() noexcept override;
  std::uint64_t redeliveries() const noexcept override { return redeliveries_; }

 private:
  struct entry {
    std::string id;
    std::vector<std::uint8_t> bytes;
  };

  void connect();
  void lost(std::string why);
  void ready();
  void fail(std::string why);
  // For an error that passes (LOADING...): gives `c` up to be made again
  // after the retry's wait, and returns true.
  bool later(connection& c, const redisReply& r);
  void log(const std::string& text) const;

  void request_entries();
  void sweep();
  void keep_held();
  // Well inside claim_ms, so that a round late is still in time.
  std::chrono::milliseconds keep_interval() const { return config_.claim / 3; }
  // Entries Redis gave this consumer; `again`: given out before.
  void take(std::vector<stream_entry>& entries, bool again);
  void acknowledge(std::vector<std::string> ids);
  void send_acknowledgement(const std::vector<std::string>& ids);
  void send_addition(const std::vector<std::uint8_t>& message);

  io_result blocked(const unique_fd& signal);
  void wake();
  io_result failed_result() const;

  const settings& config_;
  std::string consumer_;
  std::string password_;
  log_sink* log_;
  watcher& loop_;
  unique_fd reader_signal_, writer_signal_;  // eventfds: the pumps' waits
  bool reader_waits_ = false, writer_waits_ = false;  // since it was last written
  loop_timer retry_timer_, claim_timer_, keep_timer_;
  std::unique_ptr<connection> commands_, reader_;

  phase state_ = phase::connecting;
  std::string failure_;
  std::int64_t attempt_ = 0;
  std::chrono::milliseconds backoff_;
  bool was_ready_ = false;

  // Reading.
  std::deque<entry> queue_;    // read ahead, not yet handed on
  std::size_t front_sent_ = 0;  // bytes of queue_.front() handed on
  std::deque<std::string> taken_;  // handed on, not yet acknowledged
  std::uint64_t taken_count_ = 0, delivered_count_ = 0;
  std::unordered_set<std::string> held_;  // queued, taken or being acknowledged
  std::deque<std::vector<std::string>> acks_;  // XACKs Redis has not confirmed
  std::optional<std::string> pending_after_;  // reading own pending entries, after this id
  std::size_t batch_ = 16;
  bool reading_ = false, claiming_ = false, keeping_ = false, draining_ = false, claim_unsupported_ = false;
  std::string claim_cursor_ = "0-0";
  std::uint64_t redeliveries_ = 0;
  framer check_;

  // Writing.
  std::vector<std::uint8_t> partial_;  // bytes of a message not yet whole
  std::size_t partial_used_ = 0;
  framer split_;
  std::deque<std::vector<std::uint8_t>> unconfirmed_;  // XADDs Redis has not confirmed
  std::size_t unconfirmed_bytes_ = 0;
};

}  // namespace pickleway::redis
