#include "writer.hpp"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <system_error>

namespace pickleway::log {

namespace {

// A write to a regular file carries at most this much (whole records).
constexpr std::size_t file_chunk = std::size_t{1} << 20;

// Woken for a first record, the thread waits this long for more unless this
// many are queued first: a busy stream is then written in batches, and the
// event loop wakes the thread about once per batch instead of per record
// (a futex wake costs more than queueing a small record).
constexpr std::size_t batch_records = 256;
constexpr std::chrono::milliseconds gather_time{2};

// The writer thread's nice value (see writer.hpp).
constexpr int background_nice = 10;

}  // namespace

writer::writer(writer_options options)
    : options_(std::move(options)),
      byte_bound_(std::max(options_.max_bytes,
                           options_.bytes_per_record *
                               std::min(options_.max_records, SIZE_MAX / options_.bytes_per_record))),
      formatter_(options_.format) {
  stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_) throw std::system_error(last_error(), "log: cannot make an eventfd");
  sigset_t all;
  sigset_t before;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &before);
  try {
    thread_ = std::thread([this] { run(); });
    // As `top -H` and /proc/PID/task show it, beside the loops' threads.
    ::pthread_setname_np(thread_.native_handle(), "log-writer");
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

writer::~writer() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  const std::uint64_t one = 1;
  // Cannot fail short of a bug: the counter is far from overflow.
  [[maybe_unused]] const auto n = ::write(stop_.get(), &one, sizeof one);
  thread_.join();
}

bool writer::push(record&& r, bytes_view kept) {
  const std::size_t bytes = kept.size();
  bool wake = false;
  {
    const std::lock_guard lock(mutex_);
    if (held_records_ >= options_.max_records) return false;
    if (held_records_ > 0 && held_bytes_ + bytes > byte_bound_) return false;
    ++held_records_;
    held_bytes_ += bytes;
    r.kept_at = store_.size();
    r.kept_size = bytes;
    store_.insert(store_.end(), kept.begin(), kept.end());
    queue_.push_back(std::move(r));
    if (idle_) {
      idle_ = false;
      wake = true;
    } else if (gathering_ && queue_.size() >= batch_records) {
      gathering_ = false;
      wake = true;
    }
  }
  if (wake) wake_.notify_one();
  return true;
}

void writer::push_always(record&& r) {
  {
    const std::lock_guard lock(mutex_);
    ++held_records_;
    r.kept_at = store_.size();
    r.kept_size = 0;
    queue_.push_back(std::move(r));
    if (!std::exchange(idle_, false)) return;
  }
  wake_.notify_one();
}

void writer::run() {
  // Lowers this thread alone (Linux: a thread id names one thread). Only
  // raising the priority needs a privilege, so this does not fail.
  [[maybe_unused]] const int lowered =
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), background_nice);
  std::vector<record> batch;
  std::vector<std::uint8_t> batch_store;
  std::string text;
  std::vector<std::size_t> ends;  // of each record's text
  message_facts facts;
  const message_facts none;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (queue_.empty() && !stopping_) {
        idle_ = true;
        wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
        idle_ = false;
      }
      if (!stopping_ && queue_.size() < batch_records) {
        gathering_ = true;
        wake_.wait_for(lock, gather_time,
                       [this] { return queue_.size() >= batch_records || stopping_; });
        gathering_ = false;
      }
      if (stopping_ && !stop_seen_) {
        stop_seen_ = true;
        deadline_ = std::chrono::steady_clock::now() + options_.drain_timeout;
      }
      if (queue_.empty()) break;  // stopping, and all is written
      batch.swap(queue_);
      batch_store.swap(store_);
    }
    // Formatted and written a file chunk at a time: a long queue's batch
    // (a writer that fell far behind) never becomes one huge text.
    std::size_t done = 0;  // records of the batch written, or lost
    try {
      text.clear();
      ends.clear();
      for (const record& r : batch) {
        if (r.what == record::kind::retired) continue;
        const bytes_view kept = bytes_view(batch_store).subspan(r.kept_at, r.kept_size);
        if (r.what == record::kind::message && r.inspect_kept) {
          inspector_.inspect(kept, facts);
          formatter_.append(text, r, kept, facts);
        } else {
          formatter_.append(text, r, kept, r.facts ? *r.facts : none);
        }
        ends.push_back(text.size());
        if (text.size() >= file_chunk) {
          lost_ += write_out(text, ends);
          done += ends.size();
          text.clear();
          ends.clear();
        }
      }
      if (!ends.empty()) lost_ += write_out(text, ends);
      done += ends.size();
    } catch (const std::exception& e) {  // out of memory formatting a dis
      lost_ += batch.size() - done;
      last_problem_ = std::string("cannot format records: ") + e.what();
    }
    if (text.capacity() > 4 * file_chunk) std::string().swap(text);  // after a burst of dis
    const std::size_t records = batch.size(), bytes = batch_store.size();
    batch.clear();
    batch_store.clear();
    if (batch_store.capacity() > 4 * file_chunk) std::vector<std::uint8_t>().swap(batch_store);
    if (batch.capacity() > 16 * batch_records) std::vector<record>().swap(batch);  // a long queue's
    {
      const std::lock_guard lock(mutex_);
      held_records_ -= records;
      held_bytes_ -= bytes;
    }
  }
  file_.reset();
  fd_ = -1;
  if (lost_ > 0)
    report(std::to_string(lost_) + (lost_ == 1 ? " record" : " records") + " not written" +
           (last_problem_.empty() ? "" : " (" + last_problem_ + ")"));
}

std::size_t writer::write_out(const std::string& text, const std::vector<std::size_t>& ends) {
  if (fd_ < 0 && !open_file()) return ends.size();
  const std::size_t limit = is_pipe_ ? PIPE_BUF : file_chunk;
  std::size_t begin = 0;
  for (std::size_t first = 0; first < ends.size();) {
    // Whole records from `first`, up to `limit` bytes (one, when it is longer).
    std::size_t last = first + 1;
    while (last < ends.size() && ends[last] - begin <= limit) ++last;
    const std::size_t end = ends[last - 1];
    for (std::size_t done = begin; done < end;) {
      const ssize_t n = ::write(fd_, text.data() + done, end - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (wait_writable()) continue;
        const std::string why = "the log did not take them within " +
                                std::to_string(options_.drain_timeout.count()) +
                                " ms of the end";
        last_problem_ = why;  // said with the count of records lost, at the end
        return ends.size() - first;
      }
      const std::string why = "write failed: " + (n < 0 ? last_error().message() : "no progress");
      if (why != last_problem_) report(why + "; records are lost until it can be reopened");
      last_problem_ = why;
      file_.reset();  // the next batch opens it afresh (a FIFO's new reader)
      fd_ = -1;
      return ends.size() - first;
    }
    begin = end;
    first = last;
  }
  return 0;
}

bool writer::open_file() {
  if (options_.path == "-") {
    fd_ = STDERR_FILENO;
  } else {
    // Non-blocking, so that a FIFO opens (or fails) at once, and a stop can
    // interrupt a wait for its reader.
    unique_fd fd(::open(options_.path.c_str(),
                        O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0666));
    if (!fd) {
      const std::string why =
          errno == ENXIO ? "cannot open: a FIFO that no process reads"
                         : "cannot open: " + last_error().message();
      if (why != last_problem_) report(why + "; records are lost until it opens");
      last_problem_ = why;
      return false;
    }
    file_ = std::move(fd);
    fd_ = file_.get();
  }
  struct stat st {};
  is_pipe_ = ::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode);
  return true;
}

bool writer::wait_writable() {
  for (;;) {
    pollfd polled[2] = {{fd_, POLLOUT, 0}, {stop_.get(), POLLIN, 0}};
    nfds_t count = 2;
    int timeout = -1;
    if (stop_seen_) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          deadline_ - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      count = 1;
      timeout = static_cast<int>(left.count());
    }
    const int ready = ::poll(polled, count, timeout);
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    if (count == 2 && polled[1].revents != 0) {
      stop_seen_ = true;
      deadline_ = std::chrono::steady_clock::now() + options_.drain_timeout;
    }
    if (polled[0].revents != 0) return true;  // writable, or an error the write reports
  }
}

void writer::report(const std::string& what) {
  const std::string line = "pickleway: log " + options_.path + ": " + what + "\n";
  for (std::size_t done = 0; done < line.size();) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace pickleway::log
