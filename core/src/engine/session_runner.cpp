#include "engine/session_runner.hpp"

#include "log.hpp"

namespace pickleway {
namespace {

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
      retry_timer_(io) {}

session_runner::~session_runner() { waiter_.forget_all(); }

void session_runner::start() {
  listening_side_ = session_.a.endpoint->listens() ? 'a' : session_.b.endpoint->listens() ? 'b' : 0;
  if (!listening_side_) return launch(nullptr);
  const endpoint_config& e = listening_side_ == 'a' ? session_.a : session_.b;
  std::string error;
  try {
    listener_ = e.endpoint->listen(error);
  } catch (const std::exception& ex) {
    error = std::string("the transport threw: ") + ex.what();
  }
  if (!listener_) {
    log_line("session " + session_.name + ", endpoint " + listening_side_ + " (" + e.transport_name +
             "): cannot listen: " + error);
    ++ended_totals_.failed;
    done_ = true;
    return on_end_();
  }
  log_line("session " + session_.name + ": listening on " + listener_->describe());
  accept_next();
}

void session_runner::accept_next() {
  if (stopping_ || accepting_ || live_.size() >= session_.max_instances.value) return;
  accepting_ = true;
  waiter_.wait(listener_->handle(), false, [this](const std::error_code& e) {
    accepting_ = false;
    if (e || stopping_) return;
    std::string error;
    std::unique_ptr<opener> accepted;
    try {
      accepted = listener_->accept(error);
    } catch (const std::exception& ex) {
      error = std::string("the transport threw: ") + ex.what();
    }
    if (accepted) {
      launch(std::move(accepted));
    } else if (!error.empty()) {
      // Out of descriptors, say: the listener stays readable, so wait a
      // little before trying again instead of spinning on it.
      log_line("session " + session_.name + ": accept failed: " + error);
      accepting_ = true;
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this](const std::error_code& timer_error) {
        accepting_ = false;
        if (!timer_error) accept_next();
      });
      return;
    }
    accept_next();
  });
}

void session_runner::launch(std::unique_ptr<opener> accepted) {
  const std::uint64_t number = next_number_++;
  const std::string name = listening_side_ ? session_.name + "#" + std::to_string(number) : session_.name;
  auto i = std::make_shared<instance>(io_, session_, name, number, grace_,
                                      [this](instance& done) { ended(done); });
  live_.insert(i);
  i->start(std::move(accepted), listening_side_);
}

void session_runner::ended(instance& i) {
  if (listening_side_) {
    const auto ab = i.stats(direction::a_to_b), ba = i.stats(direction::b_to_a);
    log_line("session " + i.name() + ": ended" + (i.failed() ? " with an error" : "") + ", a>b " +
             std::to_string(ab.messages) + " messages, b>a " + std::to_string(ba.messages) +
             " messages");
  }
  ++ended_totals_.instances;
  if (i.failed()) ++ended_totals_.failed;
  add(ended_totals_.a_to_b, i.stats(direction::a_to_b));
  add(ended_totals_.b_to_a, i.stats(direction::b_to_a));
  for (auto it = live_.begin(); it != live_.end(); ++it)
    if (it->get() == &i) {
      live_.erase(it);
      break;
    }
  if (listener_ && !stopping_) return accept_next();
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
  listener_.reset();  // closes the listening socket (and removes its file)
  // Instances leave live_ as they end; shut down a snapshot.
  const auto snapshot = live_;
  for (const auto& i : snapshot) i->shutdown();
  if (live_.empty() && !done_) {
    done_ = true;
    on_end_();
  }
}

session_totals session_runner::totals() const {
  session_totals t = ended_totals_;
  for (const auto& i : live_) {
    add(t.a_to_b, i->stats(direction::a_to_b));
    add(t.b_to_a, i->stats(direction::b_to_a));
  }
  return t;
}

}  // namespace pickleway
