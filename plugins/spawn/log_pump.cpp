#include "log_pump.hpp"

#include <array>
#include <cstdint>

namespace pickleway::spawn {

namespace {

// A line longer than this is passed on in pieces, so a child that writes
// without newlines cannot make the pump hold unbounded memory.
constexpr std::size_t max_line = 64 * 1024;

// One read; the loop calls again while there is more. The same amount is
// read per wake-up, so one chatty child cannot hold the loop for long.
constexpr std::size_t chunk_size = 64 * 1024;

// After the child is gone, at most this much is still forwarded from each
// pipe: a descendant that escaped the kill may keep writing forever.
constexpr std::size_t max_drain = 1024 * 1024;

}  // namespace

std::unique_ptr<log_pump> log_pump::start(std::vector<unique_fd> pipes, log_sink* sink,
                                          watcher& loop, std::string& error) {
  std::unique_ptr<log_pump> pump(new log_pump(sink));
  for (auto& fd : pipes) {
    if (const auto e = set_nonblocking(fd.get())) {
      error = e.message();
      return nullptr;
    }
    auto s = std::make_unique<source>();
    s->fd = std::move(fd);
    source* const raw = s.get();
    s->watching = loop.watch_readable(raw->fd.get(), [p = pump.get(), raw] { p->readable(*raw); });
    if (!s->watching) {
      error = "the core's loop cannot watch its pipe";
      return nullptr;
    }
    pump->sources_.push_back(std::move(s));
  }
  return pump;
}

log_pump::~log_pump() {
  for (auto& s : sources_) {
    if (!s->fd) continue;
    // Forward what is already there, then give the pipe up.
    guarded([&](std::string_view) { s->partial.clear(); }, [&] {
      for (std::size_t drained = 0; drained < max_drain && read_some(*s);) drained += chunk_size;
      close(*s);
    });
    s->watching.reset();
    s->fd.reset();
  }
}

void log_pump::readable(source& s) noexcept {
  guarded([&](std::string_view) { s.partial.clear(); }, [&] {
    read_some(s);
    if (!s.fd) close(s);
  });
}

bool log_pump::read_some(source& s) {
  std::array<char, chunk_size> chunk;
  ssize_t n;
  do {
    n = ::read(s.fd.get(), chunk.data(), chunk.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;  // nothing for now
  if (n <= 0) {  // closed, or failed: either way nothing more will come
    s.watching.reset();  // before its descriptor closes
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

void log_pump::close(source& s) {
  if (!s.partial.empty()) emit(s.partial);
  s.partial.clear();
  s.watching.reset();
  s.fd.reset();
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
