#include "plugin_driver.hpp"

#include <poll.h>

#include <cerrno>
#include <thread>

#include <doctest/doctest.h>

#include "option_reader.hpp"

namespace pickleway::test {

using clock = std::chrono::steady_clock;

const plugin_registry& built_plugins() {
  static const auto registry = [] {
    auto r = std::make_unique<plugin_registry>();
    r->load_directory(PICKLEWAY_PLUGIN_DIR);
    return r;
  }();
  return *registry;
}

option_values options(std::initializer_list<std::pair<std::string, option_value>> values) {
  option_values v;
  v.set_where("test");
  for (const auto& [name, value] : values) v.set(name, value);
  return v;
}

std::unique_ptr<transport> make_transport(const std::string& name, const option_values& values,
                                          option_error* error) {
  const loaded_plugin* p = built_plugins().find(plugin_kind::transport, name);
  REQUIRE_MESSAGE(p, "no transport plugin " << name << " in " << PICKLEWAY_PLUGIN_DIR);
  // The defaults the core would give the options not written.
  option_values filled = values;
  fill_defaults(filled, p->descriptor->options);
  option_error refused;
  auto made = p->descriptor->make_transport(filled, refused);
  if (error) {
    *error = refused;
  } else {
    REQUIRE_MESSAGE(made, name << " refused its options: " << refused.option << ": " << refused.message);
  }
  return made;
}

std::unique_ptr<filter_factory> make_filter(const std::string& name, const option_values& values,
                                            option_error* error) {
  const loaded_plugin* p = built_plugins().find(plugin_kind::filter, name);
  REQUIRE_MESSAGE(p, "no filter plugin " << name << " in " << PICKLEWAY_PLUGIN_DIR);
  option_values filled = values;
  fill_defaults(filled, p->descriptor->options);
  option_error refused;
  auto made = p->descriptor->make_filter(filled, refused);
  if (error) {
    *error = refused;
  } else {
    REQUIRE_MESSAGE(made, name << " refused its options: " << refused.option << ": " << refused.message);
  }
  return made;
}

std::unique_ptr<opener> open_endpoint(transport& t, const open_context& context) {
  std::string error;
  auto o = t.open(context, error);
  CHECK_MESSAGE(o, error);
  return o;
}

std::unique_ptr<filter> make_instance(filter_factory& f, const open_context& context) {
  std::string error;
  auto made = f.make(context, error);
  CHECK_MESSAGE(made, error);
  return made;
}

struct poll_watcher::entry {
  int fd;
  std::function<void()> readable;
  std::function<void()> writable;
  bool want_read = false;
  bool want_write = false;
  bool live = true;
};

namespace {

class poll_watch final : public socket_watch {
 public:
  poll_watch(std::weak_ptr<std::vector<std::shared_ptr<poll_watcher::entry>>> entries,
             std::shared_ptr<poll_watcher::entry> e)
      : entries_(std::move(entries)), entry_(std::move(e)) {}
  ~poll_watch() override {
    entry_->live = false;
    if (const auto entries = entries_.lock()) std::erase(*entries, entry_);
  }
  void want_readable(bool on) noexcept override { entry_->want_read = on; }
  void want_writable(bool on) noexcept override { entry_->want_write = on; }

 private:
  std::weak_ptr<std::vector<std::shared_ptr<poll_watcher::entry>>> entries_;
  std::shared_ptr<poll_watcher::entry> entry_;
};

}  // namespace

poll_watcher::poll_watcher() : entries_(std::make_shared<std::vector<std::shared_ptr<entry>>>()) {}
poll_watcher::~poll_watcher() = default;

std::unique_ptr<watch> poll_watcher::watch_readable(int fd, std::function<void()> readable) noexcept {
  auto w = watch_socket(fd, std::move(readable), [] {});
  w->want_readable(true);
  return w;
}

std::unique_ptr<socket_watch> poll_watcher::watch_socket(int fd, std::function<void()> readable,
                                                         std::function<void()> writable) noexcept {
  auto e = std::make_shared<entry>(entry{fd, std::move(readable), std::move(writable)});
  entries_->push_back(e);
  return std::make_unique<poll_watch>(entries_, e);
}

std::size_t poll_watcher::watched() const { return entries_->size(); }

bool poll_watcher::run_once(std::chrono::milliseconds timeout, std::vector<pollfd>* also) {
  const auto snapshot = *entries_;  // a callback may end any watch, its own included
  std::vector<pollfd> polled;
  for (const auto& e : snapshot)
    polled.push_back({e->fd, static_cast<short>((e->want_read ? POLLIN : 0) | (e->want_write ? POLLOUT : 0)), 0});
  if (also) polled.insert(polled.end(), also->begin(), also->end());
  int n;
  do {
    n = ::poll(polled.data(), polled.size(), static_cast<int>(timeout.count()));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  if (also)
    for (std::size_t i = 0; i < also->size(); ++i) (*also)[i].revents = polled[snapshot.size() + i].revents;
  for (std::size_t i = 0; i < snapshot.size(); ++i) {
    const short ready = polled[i].revents;
    if ((ready & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) && snapshot[i]->live && snapshot[i]->want_read)
      snapshot[i]->readable();
    if ((ready & (POLLOUT | POLLERR)) && snapshot[i]->live && snapshot[i]->want_write)
      snapshot[i]->writable();
  }
  return true;
}

bool wait_ready(int handle, bool writable, std::chrono::milliseconds timeout) {
  pollfd p{handle, static_cast<short>(writable ? POLLOUT : POLLIN), 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

namespace {

std::chrono::milliseconds left(clock::time_point end) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now()));
}

}  // namespace

std::unique_ptr<byte_stream> open_now(opener& o, std::string& error,
                                      std::chrono::milliseconds deadline) {
  const auto end = clock::now() + deadline;
  bool timed_out = false;
  for (;;) {
    open_step s = o.step(timed_out);
    if (s.what == open_step::kind::ready) return std::move(s.stream);
    if (s.what == open_step::kind::failed) {
      error = s.error;
      return nullptr;
    }
    if (clock::now() >= end) {
      error = "test deadline passed while opening";
      return nullptr;
    }
    auto wait = left(end);
    if (s.timeout.count() >= 0) wait = std::min(wait, s.timeout);
    if (s.handle >= 0) {
      timed_out = !wait_ready(s.handle, s.writable, wait);
    } else {
      std::this_thread::sleep_for(wait);  // the opener asked for a pure timer
      timed_out = true;
    }
  }
}

std::unique_ptr<byte_stream> accept_now(listener& l, std::string& error,
                                        std::chrono::milliseconds deadline) {
  const auto end = clock::now() + deadline;
  for (;;) {
    auto o = l.accept(error);
    if (o) return open_now(*o, error, left(end));
    if (!error.empty()) return nullptr;
    if (!wait_ready(l.handle(), false, left(end))) {
      error = "test deadline passed while accepting";
      return nullptr;
    }
  }
}

bool write_all(byte_stream& s, std::string_view bytes, std::chrono::milliseconds deadline) {
  const auto end = clock::now() + deadline;
  while (!bytes.empty()) {
    const auto r = s.write({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
    if (r.status == io_status::done) {
      bytes.remove_prefix(r.bytes);
    } else if (r.status == io_status::would_block) {
      if (!wait_ready(r.wait_handle, r.wait_writable, left(end))) return false;
    } else {
      return false;
    }
  }
  return true;
}

bool read_to_end(byte_stream& s, std::string& out, std::chrono::milliseconds deadline) {
  const auto end = clock::now() + deadline;
  std::vector<std::uint8_t> chunk(65536);
  for (;;) {
    const auto r = s.read(chunk);
    if (r.status == io_status::done) {
      out.append(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(r.bytes));
    } else if (r.status == io_status::eof) {
      return true;
    } else if (r.status == io_status::would_block) {
      if (!wait_ready(r.wait_handle, r.wait_writable, left(end))) return false;
    } else {
      return false;
    }
  }
}

std::pair<std::string, std::string> carry(byte_stream& a, byte_stream& b, std::string_view a_to_b,
                                          std::string_view b_to_a) {
  struct direction {
    byte_stream& from;
    byte_stream& to;
    std::string_view left;
    std::string got;
    bool closed = false;
    bool ended = false;
  };
  direction flows[] = {{a, b, a_to_b, {}}, {b, a, b_to_a, {}}};
  std::vector<std::uint8_t> chunk(65536);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!flows[0].ended || !flows[1].ended) {
    std::vector<pollfd> waits;
    bool moved = false;
    for (auto& f : flows) {
      if (!f.left.empty()) {
        const auto r =
            f.from.write({reinterpret_cast<const std::uint8_t*>(f.left.data()), f.left.size()});
        REQUIRE_MESSAGE(r.status != io_status::failed, r.error.message());
        if (r.status == io_status::done) f.left.remove_prefix(r.bytes), moved = true;
        if (r.status == io_status::would_block) waits.push_back({r.wait_handle, POLLOUT, 0});
      } else if (!f.closed) {
        REQUIRE_FALSE(f.from.close_write());
        f.closed = moved = true;
      }
      if (f.ended) continue;
      const auto r = f.to.read(chunk);
      REQUIRE_MESSAGE(r.status != io_status::failed, r.error.message());
      if (r.status == io_status::done)
        f.got.append(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(r.bytes)),
            moved = true;
      if (r.status == io_status::eof) f.ended = moved = true;
      if (r.status == io_status::would_block) waits.push_back({r.wait_handle, POLLIN, 0});
    }
    if (moved) continue;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    REQUIRE_MESSAGE(left.count() > 0, "the transfer did not finish in time");
    REQUIRE(::poll(waits.data(), waits.size(), static_cast<int>(left.count())) > 0);
  }
  return {flows[0].got, flows[1].got};
}

void exchange_with_half_close(connection& c) {
  REQUIRE(write_all(*c.client, "ping from the client"));
  REQUIRE_FALSE(c.client->close_write());
  std::string got;
  REQUIRE(read_to_end(*c.server, got));
  CHECK(got == "ping from the client");

  REQUIRE(write_all(*c.server, "pong from the server"));
  REQUIRE_FALSE(c.server->close_write());
  got.clear();
  REQUIRE(read_to_end(*c.client, got));
  CHECK(got == "pong from the server");
}

}  // namespace pickleway::test
