// Forwards the lines a child writes to its log pipes (standard error with
// `stderr: log`, standard output with `channel: fds`) to the log sink.
#pragma once

#include <memory>
#include <pickleway/fd_stream.hpp>
#include <pickleway/transport.hpp>
#include <string>
#include <system_error>
#include <vector>

namespace pickleway::spawn {

// The core's loop watches the child's log pipes (open_context::watch); the
// pump reads what is there each time one is readable, and calls
// sink->line() for each whole line, so everything runs on the loop thread
// and a child costs no thread of its own. A pipe is given up once it has
// closed, or when the pump is destroyed.
class log_pump {
 public:
  // Starts watching; nullptr and `error` when it cannot. `sink` may be
  // null (lines then go to standard error); it and `loop` must outlive
  // the pump.
  static std::unique_ptr<log_pump> start(std::vector<unique_fd> pipes, log_sink* sink,
                                         watcher& loop, std::string& error);

  // Forwards what is already in the pipes, then stops watching them.
  // Destroy the pump after the child is gone: a descendant that keeps a
  // pipe open then cannot make the destructor read for ever.
  ~log_pump();

  log_pump(const log_pump&) = delete;
  log_pump& operator=(const log_pump&) = delete;

 private:
  struct source {
    unique_fd fd;
    std::string partial;  // the line read so far, without its end
    std::unique_ptr<watch> watching;
  };

  explicit log_pump(log_sink* sink) : sink_(sink) {}
  // The loop's callback: reads what `s` has; at its end, gives it up. A
  // line there is no memory for is lost; the pump goes on.
  void readable(source& s) noexcept;
  // Reads once from `s`; false when nothing more is there for now, or the
  // pipe has closed or failed (then s.fd is reset).
  bool read_some(source& s);
  // Passes on the last line, even without its newline, and closes `s`.
  void close(source& s);
  void emit(std::string_view line);

  std::vector<std::unique_ptr<source>> sources_;  // stable: the callbacks point at them
  log_sink* sink_;
};

}  // namespace pickleway::spawn
