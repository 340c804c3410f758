// The log's writer thread: takes records from a bounded queue, inspects the
// messages they carry, formats them and appends them to the log file, so
// the event loop never walks a pickle, formats a record nor touches the
// file.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pickleway/fd_stream.hpp>

#include "record.hpp"

namespace pickleway::log {

struct writer_options {
  std::string path;  // "-" for standard error
  format_options format;
  // At most this many records are held (queued or being written) ...
  std::size_t max_records = 1024;
  // ... and, while more than one is, at most this many bytes of message
  // copies, or `bytes_per_record` times max_records when that is more (a
  // queue made long for small messages holds their copies too).
  std::size_t max_bytes = std::size_t{64} << 20;
  std::size_t bytes_per_record = 256;
  // After the destructor asks it to stop, how long the thread goes on
  // waiting for a log that takes bytes slowly or not at all (a FIFO nobody
  // reads) before giving the rest up. Short, so that pickleway still exits
  // within the contract's `grace` + 1 s after SIGTERM.
  std::chrono::milliseconds drain_timeout{500};
};

// One per configured log filter: every instance of the session writes
// through it, so records reach the file whole and in the order they were
// pushed.
//
// Threading: push() is called from the instances' loops, any of them at
// once, under one lock, and never waits for the file; the thread owns the
// file. Each write(2) carries whole records
// (for a pipe or FIFO at most PIPE_BUF bytes at a time when records are
// short, so that other writers' lines do not cut into them).
class writer {
 public:
  // Starts the thread (with every signal blocked, so SIGPIPE becomes EPIPE
  // and the core's signal handling stays on its own threads). The thread
  // runs at nice 10: when the CPUs are all busy, the data path goes first
  // and the log drops (and counts) what it cannot write; with a CPU to
  // spare it writes at full speed. The file is
  // opened by the thread, on the first record: opening a FIFO must not wait
  // on the event loop. Throws std::system_error when no thread can start.
  explicit writer(writer_options options);

  // Writes what is queued, then joins the thread. What the log has not
  // taken `drain_timeout` after this call is lost, and said so on stderr.
  ~writer();

  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  // Queues a record with a copy of `kept` (see record::kept_at); false, and
  // nothing is kept, when the queue is full. Never blocks on the file.
  bool push(record&& r, bytes_view kept);
  // Queues a record whatever the bound (the per-instance drop counts).
  void push_always(record&& r);

 private:
  void run();
  // Writes records' text; the count of those that could not be written.
  std::size_t write_out(const std::string& text, const std::vector<std::size_t>& ends);
  bool open_file();
  // Waits until the file takes bytes; false once the stop deadline passed.
  bool wait_writable();
  void report(const std::string& what);

  const writer_options options_;
  const std::size_t byte_bound_;  // of the message copies held

  std::mutex mutex_;
  std::condition_variable wake_;
  // The queue: records in order, and the bytes they keep, one after the
  // other. The thread swaps both for its own empty pair at once, so
  // neither allocates once they have grown to a batch's size.
  std::vector<record> queue_;
  std::vector<std::uint8_t> store_;
  std::size_t held_records_ = 0;  // queued, or taken by the thread and not yet written
  std::size_t held_bytes_ = 0;
  bool idle_ = false;       // the thread waits on wake_ for the first record
  bool gathering_ = false;  // the thread waits on wake_ (or a moment) for a batch
  bool stopping_ = false;

  // The thread's own.
  inspector inspector_;
  record_formatter formatter_;
  unique_fd file_;
  int fd_ = -1;  // file_, or standard error
  bool is_pipe_ = false;
  bool stop_seen_ = false;
  std::chrono::steady_clock::time_point deadline_;
  std::string last_problem_;
  std::uint64_t lost_ = 0;

  unique_fd stop_;  // an eventfd, readable once stopping: wakes a wait on the file
  std::thread thread_;
};

}  // namespace pickleway::log
