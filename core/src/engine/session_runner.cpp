#include "engine/session_runner.hpp"

#include <algorithm>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "log.hpp"

namespace pickleway {
namespace {

void add(link_stats& into, const link_stats& s, bool live) {
  into.reconnects += s.reconnects;
  into.resent += s.resent;
  if (!live) return;
  into.unacked += s.unacked;
  into.unacked_bytes += s.unacked_bytes;
}

void add(direction_stats& into, const direction_stats& s) {
  into.messages += s.messages;
  into.bytes += s.bytes;
  into.dropped += s.dropped;
  into.stray_bytes += s.stray_bytes;
}

void add(session_totals& into, const instance_report& r, bool live) {
  add(into.a_to_b, r.a_to_b);
  add(into.b_to_a, r.b_to_a);
  add(into.links, r.links, live);
  into.redeliveries += r.redeliveries;
  for (std::size_t k = 0; k < r.refused.size(); ++k) into.refused[k] += r.refused[k];
}

}  // namespace

session_runner::session_runner(loops& loops, const session_config& session,
                               std::chrono::milliseconds grace, std::function<void()> on_end)
    : loops_(loops),
      io_(loops.main()),
      session_(session),
      grace_(grace),
      on_end_(std::move(on_end)),
      waiter_(io_),
      retry_timer_(io_),
      changed_(io_),
      linked_(session.a.framing.kind == framing_kind::link ||
              session.b.framing.kind == framing_kind::link) {
  ended_totals_.refused.resize(session_.filters.size());
}

session_runner::~session_runner() { waiter_.forget_all(); }

void session_runner::start() {
  listening_side_ = session_.a.endpoint->listens() ? 'a' : session_.b.endpoint->listens() ? 'b' : 0;
  if (!listening_side_) {
    const std::uint64_t n = session_.instances.value;
    for (std::uint64_t slot = 1; slot <= n; ++slot) launch(nullptr, slot);
    return;
  }
  const endpoint_config& e = listening_side_ == 'a' ? session_.a : session_.b;
  std::string error;
  listener_ = e.endpoint->listen(error);
  if (!listener_) {
    const std::string why = std::string("endpoint ") + listening_side_ + " (" + e.transport_name +
                            "): cannot listen: " + error;
    log_line("session " + session_.name + ", " + why);
    ++ended_totals_.failed;
    remember(errc::open_failed, why);
    done_ = true;
    return on_end_();
  }
  log_line("session " + session_.name + ": listening on " + listener_->describe());
  // Nothing the loop awaits throws; the runner outlives the io_context's run.
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

asio::awaitable<void> session_runner::accept_loop() {
  while (!stopping_) {
    // At max_instances further connections wait in the listen backlog.
    if (live_.size() >= session_.max_instances.value) {
      co_await changed_.changed();
      continue;
    }
    if (co_await waiter_.wait(listener_->handle(), false)) co_return;  // stopping
    // Every connection pending, not one a wake-up: a burst of clients is
    // served before the backlog overflows.
    while (!stopping_ && live_.size() < session_.max_instances.value) {
      std::string error;
      std::unique_ptr<opener> accepted = listener_->accept(error);
      if (accepted) {
        launch(std::move(accepted));
        continue;
      }
      if (error.empty()) break;  // none waiting
      // Out of descriptors, say: the listener stays readable, so wait a
      // little before trying again instead of spinning on it.
      log_line("session " + session_.name + ": accept failed: " + error);
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      const auto [cancelled] =
          co_await retry_timer_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      if (cancelled) co_return;
      break;
    }
  }
}

void session_runner::launch(std::unique_ptr<opener> accepted, std::uint64_t slot) {
  const std::uint64_t number = next_number_++;
  const std::uint64_t slots = listening_side_ ? 1 : session_.instances.value;
  const std::string name = listening_side_ || slots > 1 ? session_.name + "#" + std::to_string(number) : session_.name;
  asio::io_context& loop = linked_ ? io_ : loops_.place();
  if (linked_) loops_.placed_on(loop);
  // It ends on its loop, and is accounted for here.
  auto on_end = [this, number](instance_report last) {
    asio::post(io_, [this, number, last = std::move(last)]() mutable { ended(number, std::move(last)); });
  };
  auto i = std::make_shared<instance>(loop, session_, name, number, grace_, &links_, on_end, slot, slots);
  live_.emplace(number, i);
  asio::post(loop, [i, accepted = std::move(accepted), side = listening_side_]() mutable {
    i->start(std::move(accepted), side);
  });
}

void session_runner::ended(std::uint64_t number, instance_report last) {
  const auto it = live_.find(number);
  asio::io_context& loop = it->second->loop();
  loops_.left(loop);
  // The instance goes on its own loop, where its descriptors are watched.
  asio::post(loop, [gone = std::move(it->second)] {});
  live_.erase(it);
  changed_.notify();
  if (last.absorbed) return;  // it only carried a connection to another instance's link
  if (listening_side_)
    log_line("session " + last.name + ": ended" + (last.failed ? " with an error" : "") + ", a>b " +
             std::to_string(last.a_to_b.messages) + " messages, b>a " +
             std::to_string(last.b_to_a.messages) + " messages");
  ++ended_totals_.instances;
  if (last.failed) {
    ++ended_totals_.failed;
    remember(last.cause, last.name + ": " + last.error);
  }
  add(ended_totals_, last, false);
  if (listener_ && !stopping_) return;
  if (live_.empty() && !done_) {
    done_ = true;
    on_end_();
  }
}

void session_runner::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  retry_timer_.cancel();
  waiter_.forget_all();
  changed_.notify();
  listener_.reset();  // closes the listening socket (and removes its file)
  // Instances leave live_ as they end; shut down a snapshot.
  for (const auto& [number, i] : live_) asio::post(i->loop(), [i = i] { i->shutdown(); });
  if (live_.empty() && !done_) {
    done_ = true;
    on_end_();
  }
}

void session_runner::remember(errc cause, const std::string& error) {
  ++ended_totals_.errors[cause];
  if (last_errors_.size() == kept_errors) last_errors_.pop_front();
  last_errors_.push_back(error);
}

session_snapshot session_runner::summed(session_totals ended, std::vector<instance_report> live) {
  session_snapshot s{std::move(ended), {}};
  for (instance_report& r : live) {
    add(s.totals, r, true);
    if (!r.absorbed) s.live.push_back(std::move(r));
  }
  // In the order they started: "s#2" before "s#10".
  std::sort(s.live.begin(), s.live.end(), [](const instance_report& x, const instance_report& y) {
    return x.name.size() != y.name.size() ? x.name.size() < y.name.size() : x.name < y.name;
  });
  return s;
}

asio::awaitable<session_snapshot> session_runner::snapshot() const {
  // Both as of now: one that ends while the loops are visited counts as live.
  session_totals ended = ended_totals_;
  std::map<asio::io_context*, std::vector<std::shared_ptr<instance>>> by_loop;
  for (const auto& [number, i] : live_) by_loop[&i->loop()].push_back(i);
  // Each loop's reports apart, as they are written on that loop's thread.
  auto reports = std::make_shared<std::vector<std::vector<instance_report>>>(by_loop.size());
  loops::visits reads;
  for (auto& [loop, group] : by_loop) {
    auto& into = (*reports)[reads.size()];
    reads.emplace_back(loop, [group = std::move(group), reports, &into] {
      for (const auto& i : group) into.push_back(i->report());
    });
  }
  // Named, not a temporary of the co_await: GCC 12 destroys those twice.
  co_await loops_.visit(std::move(reads));
  std::vector<instance_report> all;
  for (auto& one_loop : *reports)
    for (auto& r : one_loop) all.push_back(std::move(r));
  co_return summed(std::move(ended), std::move(all));
}

session_snapshot session_runner::last_snapshot() const {
  std::vector<instance_report> reports;
  for (const auto& [number, i] : live_) reports.push_back(i->report());
  return summed(ended_totals_, std::move(reports));
}

}  // namespace pickleway
