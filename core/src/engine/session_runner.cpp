#include "engine/session_runner.hpp"

#include <algorithm>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
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

}  // namespace

session_runner::session_runner(asio::io_context& io, const session_config& session,
                               std::chrono::milliseconds grace, std::function<void()> on_end)
    : io_(io),
      session_(session),
      grace_(grace),
      on_end_(std::move(on_end)),
      waiter_(io),
      retry_timer_(io),
      changed_(io) {
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
  auto i = std::make_shared<instance>(io_, session_, name, number, grace_, &links_,
                                      [this](instance& done) { ended(done); }, slot, slots);
  live_.insert(i);
  i->start(std::move(accepted), listening_side_);
}

void session_runner::ended(instance& i) {
  if (i.absorbed()) {  // it only carried a connection to another instance's link
    for (auto it = live_.begin(); it != live_.end(); ++it)
      if (it->get() == &i) {
        live_.erase(it);
        break;
      }
    changed_.notify();
    return;
  }
  if (listening_side_) {
    const auto ab = i.stats(direction::a_to_b), ba = i.stats(direction::b_to_a);
    log_line("session " + i.name() + ": ended" + (i.failed() ? " with an error" : "") + ", a>b " +
             std::to_string(ab.messages) + " messages, b>a " + std::to_string(ba.messages) +
             " messages");
  }
  ++ended_totals_.instances;
  if (i.failed()) {
    ++ended_totals_.failed;
    remember(i.cause(), i.name() + ": " + i.error());
  }
  const auto refused = i.refused();
  for (std::size_t k = 0; k < refused.size(); ++k) ended_totals_.refused[k] += refused[k];
  add(ended_totals_.a_to_b, i.stats(direction::a_to_b));
  add(ended_totals_.b_to_a, i.stats(direction::b_to_a));
  add(ended_totals_.links, i.links(), false);
  ended_totals_.redeliveries += i.redeliveries();
  for (auto it = live_.begin(); it != live_.end(); ++it)
    if (it->get() == &i) {
      live_.erase(it);
      break;
    }
  changed_.notify();
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
  const auto snapshot = live_;
  for (const auto& i : snapshot) i->shutdown();
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

session_totals session_runner::totals() const {
  session_totals t = ended_totals_;
  for (const auto& i : live_) {
    add(t.a_to_b, i->stats(direction::a_to_b));
    add(t.b_to_a, i->stats(direction::b_to_a));
    add(t.links, i->links(), true);
    t.redeliveries += i->redeliveries();
    const auto refused = i->refused();
    for (std::size_t k = 0; k < refused.size(); ++k) t.refused[k] += refused[k];
  }
  return t;
}

std::vector<instance_status> session_runner::instances() const {
  std::vector<instance_status> all;
  for (const auto& i : live_) {
    if (i->absorbed()) continue;
    all.push_back({i->name(), i->stats(direction::a_to_b), i->stats(direction::b_to_a), i->links(),
                   i->failed()});
  }
  // In the order they started: "s#2" before "s#10".
  std::sort(all.begin(), all.end(), [](const instance_status& x, const instance_status& y) {
    return x.name.size() != y.name.size() ? x.name.size() < y.name.size() : x.name < y.name;
  });
  return all;
}

}  // namespace pickleway
