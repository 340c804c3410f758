#include "engine/engine.hpp"

#include <sys/resource.h>

#include <cstdio>

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include "engine/session_runner.hpp"
#include "log.hpp"

namespace pickleway {
namespace {

std::string rate(std::uint64_t messages, std::uint64_t bytes, double seconds) {
  char text[96];
  std::snprintf(text, sizeof text, "%.0f msg/s %.2f MB/s", static_cast<double>(messages) / seconds,
                static_cast<double>(bytes) / seconds / 1e6);
  return text;
}

std::string refusal(const std::string& where, const std::string& what) {
  return where + ": " + what + ": not supported by this version yet";
}

}  // namespace

std::optional<std::string> not_yet_supported(const config& c) {
  if (c.metrics_listen.written()) return refusal(c.metrics_listen.where, "metrics");
  // Without `threads`, one event loop runs everything, as it always has.
  if (c.threads.written() && c.threads.value > 1)
    return refusal(c.threads.where, "threads above 1");
  for (const auto& s : c.sessions)
    if (s.instances.value > 1) return refusal(s.instances.where, "instances above 1");
  return std::nullopt;
}

struct engine::impl {
  impl(config c, std::optional<double> stats)
      : cfg(std::move(c)), stats_seconds(stats), signals(io, SIGINT, SIGTERM), stats_timer(io),
        deadline(io) {}

  void start() {
    signals.async_wait([this](const std::error_code& e, int signal) {
      if (e) return;
      log_line(std::string("shutting down on ") + (signal == SIGINT ? "SIGINT" : "SIGTERM"));
      shutdown();
    });
    for (const auto& s : cfg.sessions)
      sessions.push_back(std::make_unique<session_runner>(io, s, cfg.grace, [this] { session_ended(); }));
    for (auto& s : sessions) s->start();
    if (stats_seconds) schedule_stats();
  }

  void session_ended() {
    for (const auto& s : sessions)
      if (!s->done()) return;
    // Every session is over: nothing more to wait for.
    signals.cancel();
    stats_timer.cancel();
    deadline.cancel();
  }

  void shutdown() {
    // The contract: out within grace + 1 s, whatever a peer does.
    deadline.expires_after(cfg.grace + std::chrono::milliseconds(900));
    deadline.async_wait([this](const std::error_code& e) {
      if (!e) io.stop();
    });
    for (auto& s : sessions) s->shutdown();
  }

  void schedule_stats() {
    stats_timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(*stats_seconds)));
    stats_timer.async_wait([this](const std::error_code& e) {
      if (e) return;
      for (std::size_t i = 0; i < sessions.size(); ++i) {
        const session_totals now = sessions[i]->totals();
        session_totals& before = last_stats.at(i);
        log_line("session " + sessions[i]->config().name + ": a>b " +
                 rate(now.a_to_b.messages - before.a_to_b.messages,
                      now.a_to_b.bytes - before.a_to_b.bytes, *stats_seconds) +
                 ", b>a " +
                 rate(now.b_to_a.messages - before.b_to_a.messages,
                      now.b_to_a.bytes - before.b_to_a.bytes, *stats_seconds));
        before = now;
      }
      schedule_stats();
    });
    last_stats.resize(sessions.size());
  }

  int finish() {
    bool failed = false;
    for (const auto& s : sessions) {
      const session_totals t = s->totals();
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
      log_line(line);
    }
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) == 0)
      log_line("peak memory " + std::to_string(usage.ru_maxrss) + " KiB");
    return failed ? 1 : 0;
  }

  asio::io_context io;
  config cfg;
  std::optional<double> stats_seconds;
  asio::signal_set signals;
  asio::steady_timer stats_timer;
  asio::steady_timer deadline;
  std::vector<std::unique_ptr<session_runner>> sessions;
  std::vector<session_totals> last_stats;
};

engine::engine(config cfg, std::optional<double> stats_seconds)
    : impl_(std::make_unique<impl>(std::move(cfg), stats_seconds)) {}

engine::~engine() = default;

int engine::run() {
  impl_->start();
  impl_->io.run();
  return impl_->finish();
}

}  // namespace pickleway
