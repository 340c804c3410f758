// The `fifo` transport: named pipes, one to read from, one to write to, or
// just one of them for a one-way endpoint.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

#include <pickleway/fd_stream.hpp>
#include <pickleway/plugin.hpp>

namespace {

using namespace pickleway;
using namespace std::chrono_literals;

constexpr option_spec fifo_options[] = {
    {"read", option_type::string, false, "the FIFO to read pickles from"},
    {"write", option_type::string, false, "the FIFO to write pickles to"},
    {.name = "create",
     .type = option_type::boolean,
     .help = "make the FIFOs that do not exist (mode 0600); false: a missing FIFO is an error",
     .default_value = "false"},
    {.name = "reopen",
     .type = option_type::boolean,
     .help = "when the writer of the `read` FIFO closes, go on reading from the next one "
             "instead of ending",
     .default_value = "false"},
};

struct fifo_config {
  std::string read;   // empty: no reading side
  std::string write;  // empty: no writing side
  bool create = false;
  bool reopen = false;
};

std::string errno_text(int code) { return std::system_category().message(code); }

// A FIFO's read side reads 0 both before any writer has come and after the
// last one has gone; only the second is the end of the stream. Linux tells
// them apart in poll(): a reader opened with O_NONBLOCK and no writer sees
// POLLHUP only once a writer has come and gone since (fs/pipe.c, the
// w_counter check), while one opened with a writer present sees it when
// that writer goes. So a 0 with no POLLHUP means "no writer yet": wait.
class fifo_stream final : public byte_stream {
 public:
  fifo_stream(unique_fd read, unique_fd write, std::string peer)
      : read_fd_(read.get()),
        pipes_(fd_stream::pipes(std::move(read), std::move(write), std::move(peer))) {}

  io_result read(std::span<std::uint8_t> into) noexcept override {
    for (;;) {
      auto r = pipes_->read(into);
      if (r.status != io_status::eof) return r;
      pollfd p{read_fd_, POLLIN, 0};
      while (::poll(&p, 1, 0) < 0 && errno == EINTR) {
      }
      if (p.revents & POLLIN) continue;  // a writer came and wrote since the read
      if (p.revents & (POLLHUP | POLLERR)) return r;
      // No writer has come yet: POLLIN (or POLLHUP) arrives with the first.
      return io_result::blocked(read_fd_, false);
    }
  }
  io_result write(std::span<const std::uint8_t> from) noexcept override { return pipes_->write(from); }
  std::error_code close_write() noexcept override { return pipes_->close_write(); }
  bool can_read() const noexcept override { return pipes_->can_read(); }
  bool can_write() const noexcept override { return pipes_->can_write(); }
  std::string peer() const noexcept override { return pipes_->peer(); }

 private:
  int read_fd_;  // owned by pipes_; -1 without a reading side
  std::unique_ptr<fd_stream> pipes_;
};

class fifo_opener final : public opener {
 public:
  explicit fifo_opener(std::shared_ptr<const fifo_config> options) : o_(std::move(options)) {}

  open_step step(bool) noexcept override {
    return guarded([](std::string_view why) { return open_step::fail(std::string(why)); }, [&]() -> open_step {
      if (!started_) {
        started_ = true;
        for (const std::string* path : {&o_->read, &o_->write}) {
          if (path->empty()) continue;
          if (auto why = prepare(*path); !why.empty()) return open_step::fail(std::move(why));
        }
        if (!o_->read.empty()) {
          // With `reopen` the read side is also a writer, so it never reads
          // EOF when a writer leaves: the next writer's bytes just follow.
          const int flags = (o_->reopen ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC;
          auto why = open_fifo(o_->read, flags, read_);
          if (!why.empty()) return open_step::fail(std::move(why));
        }
      }
      if (!o_->write.empty() && !write_) {
        // With O_NONBLOCK, opening to write fails with ENXIO until a reader
        // has the FIFO open; opening without it would block the event loop.
        auto why = open_fifo(o_->write, O_WRONLY | O_NONBLOCK | O_CLOEXEC, write_);
        if (why.empty() && !write_) return open_step::wait_for(-1, false, 50ms);
        if (!why.empty()) return open_step::fail(std::move(why));
      }
      return open_step::ready(
          std::make_unique<fifo_stream>(std::move(read_), std::move(write_), peer()));
    });
  }

 private:
  // Makes sure `path` is a FIFO, making it with `create`; "" when it is.
  std::string prepare(const std::string& path) const {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) {
      if (errno != ENOENT) return "fifo: cannot use '" + path + "': " + errno_text(errno);
      if (!o_->create) return "fifo: '" + path + "' does not exist (`create: true` makes it)";
      // EEXIST: the peer made it meanwhile; checked below like any other.
      if (::mkfifo(path.c_str(), 0600) < 0 && errno != EEXIST)
        return "fifo: cannot make '" + path + "': " + errno_text(errno);
      if (::stat(path.c_str(), &st) < 0)
        return "fifo: cannot use '" + path + "': " + errno_text(errno);
    }
    if (!S_ISFIFO(st.st_mode)) return "fifo: '" + path + "' exists but is not a FIFO";
    return {};
  }

  // Opens `path` into `fd`, checking it is (still) a FIFO. "" and no fd
  // when the write side has no reader yet.
  static std::string open_fifo(const std::string& path, int flags, unique_fd& fd) {
    int raw;
    do {
      raw = ::open(path.c_str(), flags);
    } while (raw < 0 && errno == EINTR);
    const bool writing = (flags & O_ACCMODE) == O_WRONLY;
    if (raw < 0 && writing && errno == ENXIO) return {};
    if (raw < 0)
      return "fifo: cannot open '" + path + "' for " + (writing ? "writing: " : "reading: ") +
             errno_text(errno);
    unique_fd opened(raw);
    struct stat st {};
    if (::fstat(opened.get(), &st) < 0 || !S_ISFIFO(st.st_mode))
      return "fifo: '" + path + "' exists but is not a FIFO";
    fd = std::move(opened);
    return {};
  }

  std::string peer() const {
    std::string text;
    if (!o_->read.empty()) text += "read=" + o_->read;
    if (!o_->write.empty()) text += (text.empty() ? "write=" : " write=") + o_->write;
    return text;
  }

  std::shared_ptr<const fifo_config> o_;
  bool started_ = false;
  unique_fd read_;
  unique_fd write_;
};

class fifo_transport final : public transport {
 public:
  explicit fifo_transport(fifo_config options)
      : options_(std::make_shared<const fifo_config>(std::move(options))) {}

  std::unique_ptr<opener> open(const open_context&, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<opener>(); },
                   [&] { return std::unique_ptr<opener>(std::make_unique<fifo_opener>(options_)); });
  }

  // "fifo read=/tmp/a write=/tmp/b", then the flags that are set.
  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&]() -> std::string {
      std::string text = "fifo";
      if (!options_->read.empty()) text += " read=" + options_->read;
      if (!options_->write.empty()) text += " write=" + options_->write;
      if (options_->create && options_->reopen) return text + " (create, reopen)";
      if (options_->create) return text + " (create)";
      if (options_->reopen) return text + " (reopen)";
      return text;
    });
  }

 private:
  std::shared_ptr<const fifo_config> options_;
};

std::unique_ptr<transport> build(const option_values& values, option_error& error) {
  fifo_config o;
  o.read = values.get_string("read").value_or("");
  o.write = values.get_string("write").value_or("");
  o.create = *values.get_boolean("create");
  o.reopen = *values.get_boolean("reopen");
  for (const char* side : {"read", "write"}) {
    if (values.has(side) && values.get_string(side).value_or("").empty()) {
      error = {side, std::string("fifo: `") + side + "` is empty; give the FIFO's path"};
      return nullptr;
    }
  }
  if (o.read.empty() && o.write.empty()) {
    error = {"", "fifo: give `read`, `write` or both: the FIFOs to read from and write to"};
    return nullptr;
  }
  if (o.read == o.write) {
    error = {"write",
             "fifo: `read` and `write` name the same FIFO; it would read back what it writes"};
    return nullptr;
  }
  if (o.reopen && o.read.empty()) {
    error = {"reopen", "fifo: `reopen` is about the FIFO read from, and there is no `read`"};
    return nullptr;
  }
  return std::make_unique<fifo_transport>(std::move(o));
}

}  // namespace

PICKLEWAY_TRANSPORT_PLUGIN("fifo", "1.0.0", "named pipes (FIFOs), one or both ways", fifo_options,
                           guarded_factory<build>)
