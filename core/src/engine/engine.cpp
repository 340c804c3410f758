#include "engine/engine.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "engine/metrics_server.hpp"
#include "engine/session_runner.hpp"
#include "log.hpp"

namespace pickleway {
namespace {

// The process's peak resident set: the kernel's high-water mark of this
// program's memory (VmHWM). Not getrusage's ru_maxrss, which also counts
// the memory of the process that started this one before its exec.
std::optional<long> peak_resident_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmHWM:")) return std::stol(line.substr(6));
  return std::nullopt;
}

// Descriptors an instance may hold: a socket or two pipes each side, a
// child's pidfd and its log pipe.
constexpr std::uint64_t descriptors_per_instance = 6;
constexpr std::uint64_t descriptors_of_our_own = 64;  // listeners, the log, plugins

// Raises the open-file limit to the hard limit, as far as the sessions may
// need, and says so once when even that is too low for max_instances.
void raise_open_file_limit(const config& cfg) {
  std::uint64_t needed = descriptors_of_our_own;
  std::string widest;
  for (const auto& s : cfg.sessions) {
    const bool listens = s.a.endpoint->listens() || s.b.endpoint->listens();
    needed += descriptors_per_instance * (listens ? s.max_instances.value : 1);
    if (listens && widest.empty()) widest = s.name;
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed)
    log_line("the open-file limit is " + std::to_string(limit.rlim_cur) +
             " (the hard limit), less than the sessions' max_instances may need (about " +
             std::to_string(needed) + "): raise it (LimitNOFILE= under systemd, ulimit -Hn) or "
             "lower max_instances" + (widest.empty() ? "" : " of session " + widest));
}

constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

std::string rate(std::uint64_t messages, std::uint64_t bytes, double seconds) {
  char text[96];
  std::snprintf(text, sizeof text, "%.0f msg/s %.2f MB/s", static_cast<double>(messages) / seconds,
                static_cast<double>(bytes) / seconds / 1e6);
  return text;
}

}  // namespace

struct engine::impl {
  impl(config c, std::optional<double> stats)
      : cfg(std::move(c)),
        event_loops(cfg.threads.value),
        io(event_loops.main()),
        stats_seconds(stats),
        signals(io, SIGINT, SIGTERM),
        stats_timer(io),
        deadline(io) {}

  // False when the metrics cannot be served: nothing runs then.
  bool start() {
    raise_open_file_limit(cfg);
    if (cfg.metrics_listen.written()) {
      std::string error;
      metrics = metrics_server::listen(io, cfg.metrics_listen.value, [this] { return status(); }, error);
      if (!metrics) {
        log_line(cfg.metrics_listen.where + ": metrics: " + error);
        return false;
      }
      log_line("metrics: serving http://" + metrics->describe() + "/ (and /metrics, /status)");
      metrics->start();
    }
    // None of these coroutines throws; each ends when its wait is cancelled.
    asio::co_spawn(io, on_signal(), asio::detached);
    for (const auto& s : cfg.sessions)
      sessions.push_back(std::make_unique<session_runner>(event_loops, s, cfg.grace, [this] { session_ended(); }));
    for (auto& s : sessions) s->start();
    if (stats_seconds) asio::co_spawn(io, report_stats(), asio::detached);
    return true;
  }

  asio::awaitable<gateway_status> status() const {
    gateway_status g;
    g.version = PICKLEWAY_VERSION;
    g.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (const auto& s : sessions) {
      session_snapshot now = co_await s->snapshot();
      g.sessions.push_back(status_of(*s, std::move(now)));
    }
    co_return g;
  }

  asio::awaitable<void> on_signal() {
    const auto [error, signal] = co_await signals.async_wait(tuple_awaitable);
    if (error) co_return;
    log_line(std::string("shutting down on ") + (signal == SIGINT ? "SIGINT" : "SIGTERM"));
    // The contract: out within grace + 1 s, whatever a peer does.
    deadline.expires_after(cfg.grace + std::chrono::milliseconds(900));
    asio::co_spawn(io, stop_at_deadline(), asio::detached);
    for (auto& s : sessions) s->shutdown();
  }

  asio::awaitable<void> stop_at_deadline() {
    const auto [cancelled] = co_await deadline.async_wait(tuple_awaitable);
    if (!cancelled) event_loops.stop();
  }

  void session_ended() {
    for (const auto& s : sessions)
      if (!s->done()) return;
    // Every session is over: nothing more to wait for.
    over = true;  // for report_stats, which may be reading a snapshot now
    signals.cancel();
    stats_timer.cancel();
    deadline.cancel();
    if (metrics) metrics->stop();
  }

  asio::awaitable<void> report_stats() {
    last_stats.resize(sessions.size());
    const auto every = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(*stats_seconds));
    while (!over) {
      stats_timer.expires_after(every);
      const auto [cancelled] = co_await stats_timer.async_wait(tuple_awaitable);
      if (cancelled) co_return;
      for (std::size_t i = 0; i < sessions.size(); ++i) {
        const session_snapshot snapshot = co_await sessions[i]->snapshot();
        if (over) co_return;
        const session_totals& now = snapshot.totals;
        session_totals& before = last_stats.at(i);
        std::string line = "session " + sessions[i]->config().name + ": a>b " +
                           rate(now.a_to_b.messages - before.a_to_b.messages,
                                now.a_to_b.bytes - before.a_to_b.bytes, *stats_seconds) +
                           ", b>a " +
                           rate(now.b_to_a.messages - before.b_to_a.messages,
                                now.b_to_a.bytes - before.b_to_a.bytes, *stats_seconds);
        if (sessions[i]->config().a.framing.kind == framing_kind::link ||
            sessions[i]->config().b.framing.kind == framing_kind::link)
          line += ", link: " + std::to_string(now.links.unacked) + " messages (" +
                  std::to_string(now.links.unacked_bytes) + " bytes) unacknowledged";
        log_line(line);
        before = now;
      }
    }
  }

  int finish() {
    bool failed = false;
    for (const auto& s : sessions) {
      const session_totals t = s->last_snapshot().totals;
      failed = failed || t.failed > 0;
      std::string line = "session " + s->config().name + ": " + std::to_string(t.instances) +
                         (t.instances == 1 ? " instance" : " instances") + ", a>b " +
                         std::to_string(t.a_to_b.messages) + " messages " +
                         std::to_string(t.a_to_b.bytes) + " bytes, b>a " +
                         std::to_string(t.b_to_a.messages) + " messages " +
                         std::to_string(t.b_to_a.bytes) + " bytes, " + std::to_string(t.failed) +
                         " failed";
      if (t.a_to_b.stray_bytes + t.b_to_a.stray_bytes)
        line += ", " + std::to_string(t.a_to_b.stray_bytes + t.b_to_a.stray_bytes) +
                " stray bytes diverted";
      if (t.a_to_b.dropped + t.b_to_a.dropped)
        line += ", " + std::to_string(t.a_to_b.dropped + t.b_to_a.dropped) + " messages dropped";
      const bool linked = s->config().a.framing.kind == framing_kind::link ||
                          s->config().b.framing.kind == framing_kind::link;
      if (linked)
        line += ", link: " + std::to_string(t.links.reconnects) +
                (t.links.reconnects == 1 ? " reconnect, " : " reconnects, ") +
                std::to_string(t.links.resent) + " messages resent";
      if (t.redeliveries)
        line += ", " + std::to_string(t.redeliveries) + " messages redelivered";
      log_line(line);
    }
    return failed ? 1 : 0;
  }

  // The config (its plugins' factories) outlives the loops, whose
  // destruction ends what a deadline left suspended (instances, filters).
  config cfg;
  pickleway::loops event_loops;
  asio::io_context& io;  // the main loop
  std::optional<double> stats_seconds;
  asio::signal_set signals;
  asio::steady_timer stats_timer;
  asio::steady_timer deadline;
  std::vector<std::unique_ptr<session_runner>> sessions;
  std::vector<session_totals> last_stats;
  std::unique_ptr<metrics_server> metrics;
  bool over = false;  // every session has ended
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

engine::engine(config cfg, std::optional<double> stats_seconds)
    : impl_(std::make_unique<impl>(std::move(cfg), stats_seconds)) {}

engine::~engine() = default;

int engine::run() {
  if (!impl_->start()) return 1;
  impl_->event_loops.run();
  const int status = impl_->finish();
  // The sessions and the config's filters go first: a log's writer thread
  // drains its queue as it ends, and its peak belongs to the run too.
  impl_.reset();
  if (const auto peak = peak_resident_kib()) log_line("peak memory " + std::to_string(*peak) + " KiB");
  return status;
}

}  // namespace pickleway
