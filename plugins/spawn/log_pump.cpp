#include "log_pump.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace pickleway::spawn {

namespace {

// A line longer than this is passed on in pieces, so a child that writes
// without newlines cannot make the pump hold unbounded memory.
constexpr std::size_t max_line = 64 * 1024;

// After the child is gone, at most this much is still forwarded from each
// pipe: a descendant that escaped the kill may keep writing forever.
constexpr std::size_t max_drain = 1024 * 1024;

}  // namespace

std::unique_ptr<log_pump> log_pump::start(std::vector<unique_fd> pipes, log_sink* sink,
                                          std::error_code& error) {
  unique_fd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) {
    error = last_error();
    return nullptr;
  }
  for (const auto& fd : pipes) {
    if (const auto e = set_nonblocking(fd.get())) {
      error = e;
      return nullptr;
    }
  }
  std::unique_ptr<log_pump> pump(new log_pump(std::move(pipes), sink, std::move(stop)));
  // The thread starts with every signal blocked, so that the core's signal
  // handling (a handler or a signalfd) stays on the core's own threads.
  sigset_t all;
  sigset_t before;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &before);
  try {
    pump->thread_ = std::thread([p = pump.get()] { p->run(); });
  } catch (const std::system_error& e) {
    error = e.code();
  }
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  if (!pump->thread_.joinable()) return nullptr;
  return pump;
}

log_pump::log_pump(std::vector<unique_fd> pipes, log_sink* sink, unique_fd stop)
    : sink_(sink), stop_(std::move(stop)) {
  for (auto& fd : pipes) sources_.push_back({std::move(fd), {}});
}

log_pump::~log_pump() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    // Cannot fail short of a bug: the eventfd counter is far from overflow.
    [[maybe_unused]] const auto n = ::write(stop_.get(), &one, sizeof one);
    thread_.join();
  }
}

void log_pump::run() {
  std::vector<pollfd> polled;
  for (;;) {
    polled.assign(1, pollfd{stop_.get(), POLLIN, 0});
    for (const auto& s : sources_)
      if (s.fd) polled.push_back({s.fd.get(), POLLIN, 0});
    if (polled.size() == 1) return;  // every pipe has closed
    if (::poll(polled.data(), polled.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    const bool stopping = polled[0].revents != 0;
    for (auto& s : sources_) {
      if (!s.fd) continue;
      const auto it = std::find_if(polled.begin() + 1, polled.end(),
                                   [&](const pollfd& p) { return p.fd == s.fd.get(); });
      if (stopping) {
        // Forward what is already there, then give the pipe up.
        for (std::size_t drained = 0; drained < max_drain && read_some(s);) drained += 64 * 1024;
      } else if (it != polled.end() && it->revents != 0) {
        read_some(s);
      }
      if (stopping || !s.fd) {
        if (!s.partial.empty()) emit(s.partial);
        s.partial.clear();
        s.fd.reset();
      }
    }
    if (stopping) return;
  }
}

bool log_pump::read_some(source& s) {
  std::array<char, 64 * 1024> chunk;
  ssize_t n;
  do {
    n = ::read(s.fd.get(), chunk.data(), chunk.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;  // nothing for now
  if (n <= 0) {  // closed, or failed: either way nothing more will come
    s.fd.reset();
    return false;
  }
  std::string_view data(chunk.data(), static_cast<std::size_t>(n));
  while (!data.empty()) {
    const auto nl = data.find('\n');
    if (nl == std::string_view::npos) {
      s.partial.append(data);
      if (s.partial.size() >= max_line) {
        emit(s.partial);
        s.partial.clear();
      }
      break;
    }
    s.partial.append(data.substr(0, nl));
    emit(s.partial);
    s.partial.clear();
    data.remove_prefix(nl + 1);
  }
  return true;
}

void log_pump::emit(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (sink_) {
    sink_->line(line);
    return;
  }
  std::string text(line);
  text += '\n';
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(STDERR_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace pickleway::spawn
