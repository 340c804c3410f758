// Forwards the lines a child writes to its log pipes (standard error with
// `stderr: log`, standard output with `channel: fds`) to the log sink.
#pragma once

#include <memory>
#include <pickleway/fd_stream.hpp>
#include <pickleway/transport.hpp>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace pickleway::spawn {

// One thread per child reads its log pipes and calls sink->line() for each
// line, from that thread: the core's sink is thread-safe. The thread ends
// when every pipe has closed, or when the pump is destroyed.
class log_pump {
 public:
  // Starts the thread; nullptr and `error` when it cannot. `sink` may be
  // null (lines then go to standard error) and must outlive the pump.
  static std::unique_ptr<log_pump> start(std::vector<unique_fd> pipes, log_sink* sink,
                                         std::error_code& error);

  // Forwards what is already in the pipes, then stops and joins the thread.
  // Destroy the pump after the child is gone: a descendant that keeps a
  // pipe open then cannot keep the destructor waiting.
  ~log_pump();

  log_pump(const log_pump&) = delete;
  log_pump& operator=(const log_pump&) = delete;

 private:
  struct source {
    unique_fd fd;
    std::string partial;  // the line read so far, without its end
  };

  log_pump(std::vector<unique_fd> pipes, log_sink* sink, unique_fd stop);
  void run();
  // Reads once from `s`; false when the pipe has closed or failed.
  bool read_some(source& s);
  void emit(std::string_view line);

  std::vector<source> sources_;
  log_sink* sink_;
  unique_fd stop_;  // an eventfd: readable once the destructor asks the thread to stop
  std::thread thread_;
};

}  // namespace pickleway::spawn
