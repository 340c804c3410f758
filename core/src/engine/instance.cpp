#include "engine/instance.hpp"

#include <asio/post.hpp>

#include "log.hpp"

namespace pickleway {

// The log_sink plugins get: lines prefixed with the session and instance.
// log_line is thread-safe, so a plugin may call it from its own thread.
class instance::sink final : public log_sink {
 public:
  explicit sink(std::string prefix) : prefix_(std::move(prefix)) {}
  void line(std::string_view text) override { log_line(prefix_ + std::string(text)); }

 private:
  std::string prefix_;
};

instance::instance(asio::io_context& io, const session_config& session, std::string name,
                   std::uint64_t number, std::chrono::milliseconds grace,
                   std::function<void(instance&)> on_end)
    : io_(io),
      session_(session),
      name_(std::move(name)),
      number_(number),
      grace_(grace),
      on_end_(std::move(on_end)),
      log_(std::make_unique<sink>("session " + name_ + ": ")),
      waiter_(io),
      open_waiter_(io),
      open_timer_(io),
      auth_timer_(io),
      grace_timer_(io) {
  a_.config = &session.a;
  a_.label = "endpoint a (" + session.a.transport_name + ")";
  b_.config = &session.b;
  b_.label = "endpoint b (" + session.b.transport_name + ")";
}

instance::~instance() {
  // Descriptors are let go before the streams that own them close them.
  waiter_.forget_all();
  open_waiter_.forget_all();
}

direction_stats instance::stats(direction d) const {
  const auto& p = d == direction::a_to_b ? ab_ : ba_;
  return p ? p->stats() : direction_stats{};
}

void instance::start(std::unique_ptr<opener> accepted, char accepted_side) {
  endpoint_runtime* const listening = !accepted ? nullptr : accepted_side == 'a' ? &a_ : &b_;
  accepted_ = listening;
  if (listening) to_open_.emplace_back(listening, std::move(accepted));
  // The others are asked for an opener only when their turn comes: nothing
  // of theirs starts before the accepted connection passed its handshakes.
  for (endpoint_runtime* e : {&a_, &b_})
    if (e != listening) to_open_.emplace_back(e, nullptr);
  open_next();
}

void instance::open_next() {
  if (shutting_down_) return abort();
  if (to_open_.empty()) return run();
  auto& [endpoint, o] = to_open_.front();
  if (!o) {
    try {
      o = endpoint->config->endpoint->open(open_context{session_.name, number_, log_.get()});
      if (!o) throw std::runtime_error("the transport gave no opener");
    } catch (const std::exception& ex) {
      fail(endpoint->label + ": cannot open: " + ex.what());
      return abort();
    }
  }
  step_opener(false);
}

void instance::step_opener(bool timed_out) {
  endpoint_runtime* const endpoint = to_open_.front().first;
  opener* const o = to_open_.front().second.get();
  // A step may close and reopen descriptors (a connect retry): forget them.
  open_waiter_.forget_all();
  const std::uint64_t generation = ++open_generation_;
  open_step s;
  try {
    s = o->step(timed_out);
  } catch (const std::exception& e) {
    s = open_step::fail(std::string("the transport threw: ") + e.what());
  }
  switch (s.what) {
    case open_step::kind::ready:
      endpoint->stream = std::move(s.stream);
      to_open_.erase(to_open_.begin());
      if (endpoint->stream->child()) watch_child(*endpoint);
      if (endpoint->config->auth) return start_auth(*endpoint);
      return open_next();
    case open_step::kind::failed:
      fail(endpoint->label + ": " + s.error);
      return abort();
    case open_step::kind::wait:
      break;
  }
  auto self = shared_from_this();
  if (s.timeout.count() >= 0) {
    open_timer_.expires_after(s.timeout);
    open_timer_.async_wait([self, generation](const std::error_code& e) {
      if (e || generation != self->open_generation_) return;
      self->step_opener(true);
    });
  }
  if (s.handle >= 0) {
    open_waiter_.wait(s.handle, s.writable, [self, generation](const std::error_code& e) {
      if (e || generation != self->open_generation_) return;
      self->open_timer_.cancel();
      self->step_opener(false);
    });
  }
}

void instance::start_auth(endpoint_runtime& e) {
  // The side that accepted the connection challenges first, as
  // Listener.accept() does; every other endpoint answers first, as Client().
  const auto role = &e == accepted_ ? auth_handshake::role::challenge_first
                                    : auth_handshake::role::answer_first;
  try {
    auth_ = std::make_unique<auth_driver>(e, role);
  } catch (const std::exception& ex) {
    fail(e.label + ": offset 0: authentication failed: " + ex.what());
    return abort();
  }
  authenticating_ = &e;
  const std::uint64_t generation = ++auth_generation_;
  auto self = shared_from_this();
  auth_timer_.expires_after(e.config->auth->timeout);
  auth_timer_.async_wait([self, generation](const std::error_code& error) {
    if (error || generation != self->auth_generation_ || self->done_ || self->shutting_down_) return;
    ++self->auth_generation_;  // the pending wait is void
    self->fail(self->authenticating_->label + ": offset " +
               std::to_string(self->auth_->read_offset()) +
               ": authentication failed: no complete handshake within " +
               std::to_string(self->authenticating_->config->auth->timeout.count()) + " ms");
    self->auth_.reset();
    self->abort();
  });
  step_auth();
}

void instance::step_auth() {
  switch (auth_->advance()) {
    case auth_driver::progress::done:
      ++auth_generation_;
      auth_timer_.cancel();
      auth_.reset();
      authenticating_ = nullptr;
      return open_next();
    case auth_driver::progress::failed:
      ++auth_generation_;
      auth_timer_.cancel();
      fail(authenticating_->label + ": " + auth_->error());
      auth_.reset();
      return abort();
    case auth_driver::progress::waiting:
      break;
  }
  const std::uint64_t generation = auth_generation_;
  auto self = shared_from_this();
  waiter_.wait(auth_->wait_handle(), auth_->wait_writable(),
               [self, generation](const std::error_code& e) {
                 if (e || generation != self->auth_generation_ || self->done_) return;
                 if (self->shutting_down_) return;  // the children's exit ends it
                 self->step_auth();
               });
}

void instance::run() {
  const open_context context{session_.name, number_, log_.get()};
  for (const auto& f : session_.filters) {
    try {
      auto made = f.factory->make(context);
      if (!made) throw std::runtime_error("it made no filter");
      filters_.push_back(std::move(made));
    } catch (const std::exception& e) {
      fail("filter " + f.name + ": " + e.what());
      return abort();
    }
  }
  // a->b runs the filters in list order, b->a in reverse.
  std::vector<filter*> forward, backward;
  for (auto& f : filters_) forward.push_back(f.get());
  backward.assign(forward.rbegin(), forward.rend());

  // The hooks run inside the pump's calls, which the instance outlives:
  // they hold `this`; only the waits they start hold the instance alive.
  const auto make_hooks = [this](std::unique_ptr<pump>* slot) {
    return pump::hooks{
        [this, slot](int fd, bool writable) { wait_for(**slot, fd, writable); },
        [this](const std::string& error) { fail(error); },
        [this](const std::string& line) { log_->line(line); },
        [this] {
          waiter_.forget_closed();
          check_done();
        }};
  };
  ab_ = std::make_unique<pump>(direction::a_to_b, a_, b_, forward, session_.hints, make_hooks(&ab_));
  ba_ = std::make_unique<pump>(direction::b_to_a, b_, a_, backward, session_.hints, make_hooks(&ba_));
  ab_->advance();
  ba_->advance();
}

void instance::wait_for(pump& p, int fd, bool writable) {
  auto self = shared_from_this();
  waiter_.wait(fd, writable, [self, &p](const std::error_code& e) {
    if (e || self->done_) return;
    p.advance();
  });
}

void instance::watch_child(endpoint_runtime& e) {
  ++children_running_;
  await_exit(e);
}

void instance::await_exit(endpoint_runtime& e) {
  auto self = shared_from_this();
  waiter_.wait(e.stream->child()->exit_handle(), false, [self, &e](const std::error_code& error) {
    if (error || self->done_) return;
    const auto outcome = e.stream->child()->reap();
    if (!outcome) return self->await_exit(e);  // not yet: wait on
    --self->children_running_;
    if (!outcome->empty()) self->fail(e.label + ": " + e.stream->peer() + " " + *outcome);
    self->check_done();
  });
}

void instance::fail(const std::string& error) {
  if (!shutting_down_) {
    failed_ = true;
    log_line("session " + name_ + ", " + error);
  }
  // The other direction gets the grace period to end by itself.
  if (!shutting_down_ && !done_) {
    auto self = shared_from_this();
    grace_timer_.expires_after(grace_);
    grace_timer_.async_wait([self](const std::error_code& e) {
      if (!e && !self->done_) self->shutdown();
    });
  }
}

void instance::check_done() {
  if (done_ || children_running_ > 0) return;
  const bool running = ab_ && ba_;
  // Ended: both directions are done; or a shutdown came while opening and
  // the children it spawned have gone.
  if ((running && ab_->ended() && ba_->ended()) || (shutting_down_ && !running)) finish();
}

void instance::shutdown() {
  if (done_ || shutting_down_) return;
  shutting_down_ = true;
  if (children_running_ == 0) return abort();
  for (endpoint_runtime* e : {&a_, &b_})
    if (e->stream && e->stream->child()) e->stream->child()->terminate();
  auto self = shared_from_this();
  grace_timer_.expires_after(grace_);
  grace_timer_.async_wait([self](const std::error_code& e) {
    if (e || self->done_) return;
    for (endpoint_runtime* ep : {&self->a_, &self->b_})
      if (ep->stream && ep->stream->child()) ep->stream->child()->kill();
    self->abort();
  });
}

// Ends the instance now, whatever is in flight.
void instance::abort() {
  if (done_) return;
  finish();
}

void instance::finish() {
  if (done_) return;
  done_ = true;
  open_timer_.cancel();
  auth_timer_.cancel();
  ++auth_generation_;
  grace_timer_.cancel();
  waiter_.forget_all();
  open_waiter_.forget_all();
  to_open_.clear();
  // Streams close (and spawn reaps its child) as they go.
  a_.stream.reset();
  b_.stream.reset();
  auto self = shared_from_this();
  asio::post(io_, [self] { self->on_end_(*self); });
}

}  // namespace pickleway
