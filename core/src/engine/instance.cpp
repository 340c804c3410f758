#include "engine/instance.hpp"

#include <exception>
#include <variant>

#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>

#include <openssl/rand.h>

#include "engine/auth_driver.hpp"
#include "log.hpp"
#include "pickleway/errc.hpp"

namespace pickleway {

using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

// How long a link's hello and welcome may take, once the connection is open.
constexpr std::chrono::seconds hello_timeout{10};

// Whether the coroutine was cancelled from above (a link's resume_ms
// ending its reconnect): then it gives up.
asio::awaitable<bool> cancelled() {
  const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  co_return state.cancelled() != asio::cancellation_type::none;
}

link_wire::link_id random_link_id() {
  link_wire::link_id id{};
  if (::RAND_bytes(id.data(), static_cast<int>(id.size())) != 1)
    throw std::runtime_error("no random bytes for a link id");
  return id;
}

}  // namespace

// The log_sink plugins get: lines prefixed with the session and instance.
// A line there is no memory for is lost, as log_line would lose it.
class instance::sink final : public log_sink {
 public:
  explicit sink(std::string prefix) : prefix_(std::move(prefix)) {}
  void line(std::string_view text) noexcept override {
    guarded([](std::string_view) {}, [&] { log_line(prefix_ + std::string(text)); });
  }

 private:
  std::string prefix_;
};

instance::instance(asio::io_context& io, const session_config& session, std::string name,
                   std::uint64_t number, std::chrono::milliseconds grace, link_registry* links,
                   std::function<void(instance_report)> on_end, std::uint64_t slot,
                   std::uint64_t slots)
    : io_(io),
      session_(session),
      name_(std::move(name)),
      number_(number),
      slot_(slot),
      slots_(slots),
      grace_(grace),
      links_(links),
      on_end_(std::move(on_end)),
      log_(std::make_unique<sink>("session " + name_ + ": ")),
      watcher_(io),
      waiter_(io),
      open_waiter_(io),
      timeout_(io),
      grace_timer_(io),
      kill_timer_(io),
      changed_(io) {
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

open_context instance::context() {
  return {session_.name, number_, log_.get(), &watcher_, slot_, slots_};
}

direction_stats instance::stats(direction d) const {
  const auto& p = d == direction::a_to_b ? ab_ : ba_;
  return p ? p->stats() : direction_stats{};
}

instance_report instance::report() const {
  instance_report r;
  r.name = name_;
  r.a_to_b = stats(direction::a_to_b);
  r.b_to_a = stats(direction::b_to_a);
  for (const endpoint_runtime* e : {&a_, &b_}) {
    if (!e->link) continue;
    const link_stats s = e->link->stats();
    r.links.reconnects += s.reconnects;
    r.links.resent += s.resent;
    r.links.unacked += s.unacked;
    r.links.unacked_bytes += s.unacked_bytes;
  }
  r.redeliveries = redeliveries();
  r.refused.resize(session_.filters.size());
  // a->b runs the filters in list order, b->a in reverse.
  const std::size_t n = r.refused.size();
  if (ab_)
    for (std::size_t i = 0; i < n; ++i) r.refused[i] += ab_->refused()[i];
  if (ba_)
    for (std::size_t i = 0; i < n; ++i) r.refused[n - 1 - i] += ba_->refused()[i];
  r.failed = failed_;
  r.cause = cause_;
  r.error = error_;
  r.absorbed = absorbed_;
  return r;
}

std::uint64_t instance::redeliveries() const {
  std::uint64_t n = 0;
  for (const endpoint_runtime* e : {&a_, &b_})
    if (e->stream) n += e->stream->redeliveries();
  return n + redelivered_before_close_;
}

template <typename Coroutine>
void instance::spawn(Coroutine coroutine) {
  // The coroutine holds the instance alive; one that throws (out of
  // memory) fails the instance rather than the process.
  asio::co_spawn(io_, [self = shared_from_this(), coroutine]() { return coroutine(*self); },
                 [self = shared_from_this()](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     self->fail(errc::engine_failed, std::string("the engine could not go on: ") + ex.what());
                   }
                   self->finish();
                 });
}

void instance::start(std::unique_ptr<opener> accepted, char accepted_side) {
  auto pending = std::make_shared<std::unique_ptr<opener>>(std::move(accepted));
  spawn([pending, accepted_side](instance& self) {
    return self.run(std::move(*pending), accepted_side);
  });
}

asio::awaitable<void> instance::run(std::unique_ptr<opener> accepted, char accepted_side) {
  endpoint_runtime* const listening = !accepted ? nullptr : accepted_side == 'a' ? &a_ : &b_;
  // The accepted connection first; the others are asked for an opener only
  // when their turn comes, so nothing of theirs starts before it passed
  // its handshakes.
  if (listening && !co_await open(*listening, std::move(accepted), true)) co_return finish();
  if (listening && listening->config->framing.kind == framing_kind::link &&
      !co_await open_link(*listening, true))
    co_return finish();
  open_waiter_.forget_all();
  for (endpoint_runtime* e : {&a_, &b_}) {
    if (e == listening) continue;
    if (shutting_down_) co_return finish();
    std::unique_ptr<opener> o = open_endpoint(*e);
    if (!o) co_return finish();
    if (!co_await open(*e, std::move(o), false)) co_return finish();
    if (e->config->framing.kind == framing_kind::link && !co_await open_link(*e, false))
      co_return finish();
    open_waiter_.forget_all();  // the handshakes' waits: the stream is the pumps' (or the link's) now
  }
  if (shutting_down_ || !make_filters()) co_return finish();

  // a->b runs the filters in list order, b->a in reverse.
  std::vector<filter*> forward, backward;
  for (auto& f : filters_) forward.push_back(f.get());
  backward.assign(forward.rbegin(), forward.rend());
  const auto hooks = [this] {
    return pump::hooks{[this](errc cause, const std::string& error) { fail(cause, error); },
                       [this](const std::string& line) { log_->line(line); },
                       [this] {
                         waiter_.forget_closed();
                         check_done();
                       }};
  };
  ab_ = std::make_unique<pump>(direction::a_to_b, a_, b_, forward, session_.hints, hooks());
  ba_ = std::make_unique<pump>(direction::b_to_a, b_, a_, backward, session_.hints, hooks());
  for (pump* p : {ab_.get(), ba_.get()})
    spawn([p](instance& self) { return p->run(self.waiter_); });
  while (!done_) co_await changed_.changed();
}

asio::awaitable<bool> instance::open(endpoint_runtime& e, std::unique_ptr<opener> o, bool accepted) {
  for (bool timed_out = false;;) {
    // A step may close and reopen descriptors (a connect retry): forget them.
    open_waiter_.forget_all();
    open_step s = o->step(timed_out);
    switch (s.what) {
      case open_step::kind::ready:
        e.stream = std::move(s.stream);
        if (e.stream->child()) {
          ++children_running_;
          spawn([&e](instance& self) { return self.watch_child(e); });
        }
        if (e.config->auth) co_return co_await authenticate(e, accepted);
        co_return true;
      case open_step::kind::failed:
        fail(errc::open_failed, e.label + ": " + s.error);
        co_return false;
      case open_step::kind::wait:
        break;
    }
    timed_out = false;
    if (s.handle >= 0 && s.timeout.count() >= 0) {
      timeout_.expires_after(s.timeout);
      const auto which = co_await (open_waiter_.wait(s.handle, s.writable) ||
                                   timeout_.async_wait(tuple_awaitable));
      timed_out = which.index() == 1;
    } else if (s.handle >= 0) {
      co_await open_waiter_.wait(s.handle, s.writable);
    } else {
      timeout_.expires_after(std::max(s.timeout, std::chrono::milliseconds(0)));
      co_await timeout_.async_wait(tuple_awaitable);
      timed_out = true;
    }
    if (done_ || co_await cancelled()) co_return false;
  }
}

asio::awaitable<bool> instance::authenticate(endpoint_runtime& e, bool accepted) {
  // The side that accepted the connection challenges first, as
  // Listener.accept() does; every other endpoint answers first, as Client().
  const auto role =
      accepted ? auth_handshake::role::challenge_first : auth_handshake::role::answer_first;
  std::unique_ptr<auth_driver> driver;
  try {
    driver = std::make_unique<auth_driver>(e, role);
  } catch (const std::exception& ex) {
    fail(errc::auth_failed, e.label + ": offset 0: authentication failed: " + ex.what());
    co_return false;
  }
  const auto limit = e.config->auth->timeout;
  timeout_.expires_after(limit);  // for the whole handshake
  for (;;) {
    switch (driver->advance()) {
      case auth_driver::progress::done:
        co_return true;
      case auth_driver::progress::failed:
        fail(errc::auth_failed, e.label + ": " + driver->error());
        co_return false;
      case auth_driver::progress::waiting:
        break;
    }
    const auto which = co_await (open_waiter_.wait(driver->wait_handle(), driver->wait_writable()) ||
                                 timeout_.async_wait(tuple_awaitable));
    if (done_ || co_await cancelled()) co_return false;
    if (which.index() == 1) {
      fail(errc::auth_failed, e.label + ": offset " + std::to_string(driver->read_offset()) +
           ": authentication failed: no complete handshake within " +
           std::to_string(limit.count()) + " ms");
      co_return false;
    }
    if (std::get<0>(which)) co_return false;  // cancelled
  }
}

std::unique_ptr<opener> instance::open_endpoint(endpoint_runtime& e) {
  std::string error;
  auto o = e.config->endpoint->open(context(), error);
  if (!o) fail(errc::open_failed, e.label + ": cannot open: " + (error.empty() ? "the transport gave no opener" : error));
  return o;
}

bool instance::make_filters() {
  const open_context made_for = context();
  for (const auto& f : session_.filters) {
    std::string error;
    auto made = f.factory->make(made_for, error);
    if (!made) {
      fail(errc::filter_failed, "filter " + f.name + ": " + (error.empty() ? "it made no filter" : error));
      return false;
    }
    filters_.push_back(std::move(made));
  }
  return true;
}

asio::awaitable<void> instance::watch_child(endpoint_runtime& e) {
  child_process& child = *e.stream->child();
  for (;;) {
    if (co_await waiter_.wait(child.exit_handle(), false)) co_return;  // the instance ended
    const auto outcome = child.reap();
    if (!outcome) continue;  // not yet: wait on
    --children_running_;
    if (!outcome->empty()) fail(errc::child_failed, e.label + ": " + e.stream->peer() + " " + *outcome);
    check_done();
    co_return;
  }
}

// ---- framing: link

std::shared_ptr<link> instance::make_link(endpoint_runtime& e, const link_wire::link_id& id,
                                          bool connector) {
  link::hooks h;
  // A reconnect holds the instance alive while it runs; the other hooks
  // are called only until finish() stops the link.
  h.reconnect = [self = weak_from_this(), &e]() -> asio::awaitable<link::reconnection> {
    const auto alive = self.lock();
    if (!alive) co_return link::reconnection{};
    co_return co_await alive->reconnect(e);
  };
  h.fail = [this](const std::string& error) { fail(errc::link_failed, error); };
  h.log = [this](const std::string& line) { log_->line(line); };
  h.changed = [this] { check_done(); };
  return std::make_shared<link>(io_, id, connector, e.config->framing.link,
                                e.config->framing.pickle.max_message, e.label, std::move(h));
}

asio::awaitable<bool> instance::send_bytes(endpoint_runtime& e, std::vector<std::uint8_t> bytes,
                                           bool resuming) {
  for (std::size_t done = 0; done < bytes.size();) {
    const io_result r = e.stream->write({bytes.data() + done, bytes.size() - done});
    if (r.status == io_status::done) {
      done += r.bytes;
    } else if (r.status == io_status::would_block) {
      if (co_await open_waiter_.wait(r.wait_handle, r.wait_writable)) co_return false;
    } else {
      if (resuming) co_return false;  // a reconnect broken again: resume_ms decides
      fail(errc::link_failed, e.label + ": link hello: write failed: " +
           (r.error ? r.error : make_error_code(errc::peer_closed)).message());
      co_return false;
    }
  }
  co_return true;
}

template <typename Message>
asio::awaitable<bool> instance::receive_message(endpoint_runtime& e, Message& m,
                                                std::vector<std::uint8_t>& early, bool resuming) {
  std::vector<std::uint8_t> in = std::move(e.early_input);  // what auth read past its end
  e.early_input.clear();
  for (;;) {
    std::string error;
    const std::size_t size = std::is_same_v<Message, link_wire::hello> ? link_wire::hello_size
                                                                       : link_wire::welcome_size;
    switch (link_wire::parse(in, m, error)) {
      case link_wire::parse_status::done:
        early.assign(in.begin() + static_cast<std::ptrdiff_t>(size), in.end());
        co_return true;
      case link_wire::parse_status::bad:
        fail(errc::link_failed, e.label + ": link hello: " + error);
        co_return false;
      case link_wire::parse_status::need_more:
        break;
    }
    std::uint8_t chunk[256];
    const io_result r = e.stream->read(chunk);
    if (r.status == io_status::done) {
      in.insert(in.end(), chunk, chunk + r.bytes);
    } else if (r.status == io_status::would_block) {
      if (co_await open_waiter_.wait(r.wait_handle, r.wait_writable)) co_return false;
    } else {
      if (resuming) co_return false;  // a reconnect broken again: resume_ms decides
      fail(errc::link_failed, e.label + ": link hello: " +
           (r.status == io_status::eof ? std::string(errc_message(errc::peer_closed_connection))
                                       : "read failed: " + r.error.message()));
      co_return false;
    }
  }
}

asio::awaitable<bool> instance::open_link(endpoint_runtime& e, bool accepted) {
  using namespace link_wire;
  std::vector<std::uint8_t> early;
  const auto within = [this](asio::awaitable<bool> step) -> asio::awaitable<bool> {
    timeout_.expires_after(hello_timeout);
    const auto which = co_await (std::move(step) || timeout_.async_wait(tuple_awaitable));
    co_return which.index() == 0 && std::get<0>(which);
  };
  if (!accepted) {
    const hello h{hello_kind::open, random_link_id(), 1};
    std::vector<std::uint8_t> out;
    encode(h, out);
    welcome w;
    const bool said = co_await within(send_bytes(e, std::move(out))) &&
                      co_await within(receive_message(e, w, early));
    if (!said) {
      if (!done_) fail(errc::link_failed, e.label + ": link hello: no welcome within " + std::to_string(hello_timeout.count()) + " s");
      co_return false;
    }
    if (w.status != welcome_status::ok) {
      fail(errc::link_failed, e.label + ": link refused: " +
           (w.status == welcome_status::bad_version ? "the far gateway speaks link version " + std::to_string(w.version)
                                                     : std::string("the far gateway does not know this link")));
      co_return false;
    }
    e.link = make_link(e, h.id, true);
    open_waiter_.forget_all();  // the connection's waits are the link's now
    e.link->attach(std::move(e.stream), w.next_expected, std::move(early));
    co_return true;
  }
  hello h;
  if (!co_await within(receive_message(e, h, early))) {
    if (!done_) fail(errc::link_failed, e.label + ": link hello: none within " + std::to_string(hello_timeout.count()) + " s");
    co_return false;
  }
  if (h.kind == hello_kind::open) {
    std::vector<std::uint8_t> out;
    encode(welcome{version, welcome_status::ok, 1}, out);
    if (!co_await within(send_bytes(e, std::move(out)))) co_return false;
    e.link = make_link(e, h.id, false);
    if (links_) links_->add(h.id, e.link);
    open_waiter_.forget_all();
    e.link->attach(std::move(e.stream), h.next_expected, std::move(early));
    co_return true;
  }
  // A resume: the connection belongs to the instance that holds the link.
  absorbed_ = true;
  const std::shared_ptr<link> target = links_ ? links_->find(h.id) : nullptr;
  std::vector<std::uint8_t> out;
  encode(welcome{version, target ? welcome_status::ok : welcome_status::unknown_link,
                 target ? target->next_expected() : 0},
         out);
  if (!co_await within(send_bytes(e, std::move(out)))) co_return false;
  if (target) {
    open_waiter_.forget_all();
    target->attach(std::move(e.stream), h.next_expected, std::move(early));
  } else {
    log_line("session " + session_.name + ": refused a connection that resumes a link this "
             "gateway does not know (it restarted since?)");
  }
  co_return false;
}

asio::awaitable<bool> instance::resume_hello(endpoint_runtime& e, link_wire::welcome& w,
                                             std::vector<std::uint8_t>& early) {
  std::vector<std::uint8_t> out;
  link_wire::encode(link_wire::hello{link_wire::hello_kind::resume, e.link->id(), e.link->next_expected()}, out);
  co_return co_await send_bytes(e, std::move(out), true) && co_await receive_message(e, w, early, true);
}

asio::awaitable<link::reconnection> instance::reconnect(endpoint_runtime& e) {
  using namespace link_wire;
  link::reconnection r;
  std::unique_ptr<opener> o = open_endpoint(e);
  if (!o) co_return r;
  // The transport, TLS and auth again, as the first time; then a resume.
  if (!co_await open(e, std::move(o), false)) co_return r;
  welcome w;
  timeout_.expires_after(hello_timeout);
  const auto said = co_await (resume_hello(e, w, r.early) || timeout_.async_wait(tuple_awaitable));
  if (said.index() != 0 || !std::get<0>(said)) {
    e.stream.reset();
    r.broken = !done_ && !failed_;  // a reconnect broken again: resume_ms decides
    co_return r;
  }
  if (w.status == welcome_status::unknown_link) {
    e.stream.reset();
    r.unknown = true;
    co_return r;
  }
  open_waiter_.forget_all();  // the connection's waits are the link's now
  r.stream = std::move(e.stream);
  r.peer_next = w.next_expected;
  co_return r;
}

void instance::fail(errc cause, const std::string& error) {
  if (shutting_down_ || done_) return;
  if (!failed_) {
    cause_ = cause;
    error_ = error;
  }
  failed_ = true;
  log_line("session " + name_ + ", " + error);
  // The other direction gets the grace period to end by itself.
  if (grace_started_) return;
  grace_started_ = true;
  spawn([](instance& self) -> asio::awaitable<void> {
    self.grace_timer_.expires_after(self.grace_);
    const auto [cancelled] = co_await self.grace_timer_.async_wait(tuple_awaitable);
    if (!cancelled && !self.done_) self.shutdown();
  });
}

void instance::check_done() {
  if (done_ || children_running_ > 0) return;
  for (const endpoint_runtime* e : {&a_, &b_})
    if (e->link && !e->link->done()) return;  // messages still to acknowledge
  const bool running = ab_ && ba_;
  // Ended: both directions are done; or a shutdown came while opening and
  // the children it spawned have gone.
  if (shutting_down_ && !running) return finish();
  if (!running || !ab_->ended() || !ba_->ended() || settling_) return;
  settling_ = true;
  spawn([](instance& self) { return self.settle(); });
}

asio::awaitable<void> instance::settle() {
  for (endpoint_runtime* e : {&a_, &b_}) {
    while (e->stream && !done_) {
      const io_result r = e->stream->settle();
      if (r.status == io_status::done) break;
      if (r.status != io_status::would_block) {
        fail(errc::write_failed, e->label + ": " + (r.error ? r.error.message() : "cannot settle"));
        break;
      }
      if (co_await waiter_.wait(r.wait_handle, r.wait_writable)) co_return;  // ended meanwhile
    }
  }
  finish();
}

void instance::shutdown() {
  if (done_ || shutting_down_) return;
  shutting_down_ = true;
  bool draining = false;
  for (endpoint_runtime* e : {&a_, &b_})
    if (e->stream && ab_ && ba_ && e->stream->drain()) draining = true;
  if (!draining) return stop_children();
  // A draining stream ends its pump by itself, and the instance with it;
  // the children are left to finish what they were given meanwhile.
  spawn([](instance& self) -> asio::awaitable<void> {
    self.kill_timer_.expires_after(self.grace_);
    const auto [cancelled] = co_await self.kill_timer_.async_wait(tuple_awaitable);
    if (!cancelled && !self.done_) self.stop_children();
  });
}

void instance::stop_children() {
  if (children_running_ == 0) return finish();
  for (endpoint_runtime* e : {&a_, &b_})
    if (e->stream && e->stream->child()) e->stream->child()->terminate();
  spawn([](instance& self) -> asio::awaitable<void> {
    self.kill_timer_.expires_after(self.grace_);
    const auto [cancelled] = co_await self.kill_timer_.async_wait(tuple_awaitable);
    if (cancelled || self.done_) co_return;
    for (endpoint_runtime* e : {&self.a_, &self.b_})
      if (e->stream && e->stream->child()) e->stream->child()->kill();
    self.finish();
  });
}

void instance::finish() {
  if (done_) return;
  done_ = true;
  // Every coroutine of the instance is in one of these waits, or about to
  // look at done_: cancelled, each returns without touching a stream.
  timeout_.cancel();
  grace_timer_.cancel();
  kill_timer_.cancel();
  waiter_.forget_all();
  open_waiter_.forget_all();
  changed_.notify();
  for (endpoint_runtime* e : {&a_, &b_}) {
    if (!e->link) continue;
    if (links_) links_->remove(e->link->id());
    e->link->stop();
  }
  // Streams close (and spawn reaps its child) as they go.
  redelivered_before_close_ = redeliveries();
  a_.stream.reset();
  b_.stream.reset();
  // After the coroutines' cancelled waits, which go first, so that the
  // report is their last word.
  asio::post(io_, [self = shared_from_this()] { self->on_end_(self->report()); });
}

}  // namespace pickleway
