// The `redis` transport: messages carried on a Redis stream, shared among
// the gateways of a consumer group (docs/scale-out.md).
//
// The endpoint opens once its connections are up and its group exists;
// from then on a Redis that goes away is retried per `retry` without
// ending the instance, and what Redis has not confirmed is sent again.
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include <pickleway/plugin.hpp>

#include "redis_stream.hpp"

namespace {

using namespace pickleway;
using namespace pickleway::redis;

constexpr option_spec read_options[] = {
    {"stream", option_type::string, false, "the stream to read (required)"},
    {"group", option_type::string, false, "the consumer group (required; created if missing)"},
    {"consumer", option_type::string, false,
     "this endpoint's name in the group (default HOSTNAME-PID; -k added with instances: N)"},
};

constexpr option_spec write_options[] = {
    {"stream", option_type::string, false, "the stream to add to (required)"},
    {.name = "maxlen",
     .type = option_type::integer,
     .help = "trim the stream to about this many entries (MAXLEN ~); 0: never",
     .default_value = "0"},
};

constexpr std::string_view ack_choices[] = {"written", "replied"};

constexpr option_spec redis_options[] = {
    {"address", option_type::string, true, "HOST:PORT or unix:PATH"},
    {.name = "read", .type = option_type::section, .help = "{stream, group, consumer}", .section = read_options},
    {.name = "write", .type = option_type::section, .help = "{stream, maxlen}", .section = write_options},
    {.name = "ack",
     .type = option_type::choice,
     .help = "acknowledge an entry once its message is written on, or once its reply came back",
     .choices = ack_choices,
     .default_value = "written"},
    {.name = "claim_ms",
     .type = option_type::integer,
     .help = "take over entries other consumers left pending this long, checking as often",
     .default_value = "30000"},
    {"password_env", option_type::string, false, "environment variable holding the password (AUTH)"},
    {.name = "retry",
     .type = option_type::section,
     .help = "{initial_ms, max_ms, attempts}",
     .section = sockets::retry_options},
};

std::optional<server_address> parse_address(const std::string& text, std::string& why) {
  server_address a;
  a.text = text;
  if (text.rfind("unix:", 0) == 0) {
    a.path = text.substr(5);
    if (a.path.empty()) why = "unix: needs the socket's path, as in unix:/run/redis/redis.sock";
    return why.empty() ? std::optional(a) : std::nullopt;
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    why = "'" + text + "' is not HOST:PORT or unix:PATH";
    return std::nullopt;
  }
  a.host = text.substr(0, colon);
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
  const std::string port = text.substr(colon + 1);
  char* end = nullptr;
  const long n = std::strtol(port.c_str(), &end, 10);
  if (*end != '\0' || n < 1 || n > 65535) {
    why = "'" + port + "' is not a port from 1 to 65535";
    return std::nullopt;
  }
  a.port = static_cast<int>(n);
  return a;
}

std::string default_consumer() {
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) < 0) std::strcpy(host, "localhost");
  return std::string(host) + "-" + std::to_string(::getpid());
}

// Waits for the stream's first connections and handshake.
class redis_opener final : public opener {
 public:
  explicit redis_opener(std::unique_ptr<redis_stream> s) : stream_(std::move(s)) {}
  open_step step(bool) noexcept override {
    return guarded([](std::string_view why) { return open_step::fail(std::string(why)); }, [&] {
      switch (stream_->state()) {
        case redis_stream::phase::ready:
          return open_step::ready(std::move(stream_));
        case redis_stream::phase::failed:
          return open_step::fail(stream_->failure());
        case redis_stream::phase::connecting:
          break;
      }
      return open_step::wait_for(stream_->wait_handle(), false, std::chrono::milliseconds(-1));
    });
  }

 private:
  std::unique_ptr<redis_stream> stream_;
};

class redis_transport final : public transport {
 public:
  explicit redis_transport(settings s) : settings_(std::move(s)) {}

  std::unique_ptr<opener> open(const open_context& context, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<opener>(); },
                   [&]() -> std::unique_ptr<opener> {
      std::string password;
      if (!settings_.password_env.empty()) {
        const char* value = std::getenv(settings_.password_env.c_str());
        if (!value || !*value) {
          error = "redis " + settings_.address.text + ": password_env: " + settings_.password_env +
                  " is not set";
          return nullptr;
        }
        password = value;
      }
      if (!context.watch) {
        error = "redis: the core gave no event loop to watch its connections on";
        return nullptr;
      }
      std::string consumer;
      if (settings_.read) {
        consumer = settings_.read->consumer.empty() ? default_consumer() : settings_.read->consumer;
        if (context.slots > 1) consumer += "-" + std::to_string(context.slot);
      }
      return std::make_unique<redis_opener>(
          std::make_unique<redis_stream>(settings_, consumer, password, context.log, *context.watch));
    });
  }

  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&] {
      std::string d = "redis " + settings_.address.text;
      if (settings_.read) d += " read " + settings_.read->stream + " group " + settings_.read->group;
      if (settings_.write) d += " write " + settings_.write->stream;
      return d + (settings_.ack_replied ? " ack replied" : "");
    });
  }

 private:
  settings settings_;
};

std::unique_ptr<transport> build(const option_values& options, option_error& error) {
  settings s;
  std::string why;
  auto at = parse_address(*options.get_string("address"), why);
  if (!at) {
    error = {"address", why};
    return nullptr;
  }
  s.address = std::move(*at);
  const auto need = [&](const option_values& section, const char* owner, const char* key) -> std::optional<std::string> {
    const auto v = section.get_string(key);
    if (!section.has(key) || !v || v->empty()) {
      error = {owner, std::string(owner) + " needs " + key};
      return std::nullopt;
    }
    return v;
  };
  if (options.has("read")) {
    const option_values& r = *options.get_section("read");
    read_settings rs;
    const auto stream = need(r, "read", "stream");
    if (!stream) return nullptr;
    const auto group = need(r, "read", "group");
    if (!group) return nullptr;
    rs.stream = *stream;
    rs.group = *group;
    if (r.has("consumer")) rs.consumer = *r.get_string("consumer");
    s.read = std::move(rs);
  }
  if (options.has("write")) {
    const option_values& w = *options.get_section("write");
    write_settings ws;
    const auto stream = need(w, "write", "stream");
    if (!stream) return nullptr;
    ws.stream = *stream;
    const std::int64_t maxlen = *w.get_integer("maxlen");
    if (maxlen < 0) {
      error = {"write", "maxlen must be 0 (never trim) or more"};
      return nullptr;
    }
    ws.maxlen = static_cast<std::uint64_t>(maxlen);
    s.write = std::move(ws);
  }
  if (!s.read && !s.write) {
    error = {"address", "a redis endpoint needs read, write or both"};
    return nullptr;
  }
  s.ack_replied = *options.get_string("ack") == "replied";
  if (s.ack_replied && !(s.read && s.write)) {
    error = {"ack", "ack: replied needs both read (the requests) and write (their replies)"};
    return nullptr;
  }
  const std::int64_t claim = *options.get_integer("claim_ms");
  if (claim < 1 || claim > 86'400'000) {
    error = {"claim_ms", "claim_ms must be from 1 to 86400000"};
    return nullptr;
  }
  s.claim = std::chrono::milliseconds(claim);
  if (options.has("password_env")) s.password_env = *options.get_string("password_env");
  const auto retry = sockets::read_retry(options, error);
  if (!retry) return nullptr;
  s.retry = *retry;
  return std::make_unique<redis_transport>(std::move(s));
}

}  // namespace

PICKLEWAY_TRANSPORT_PLUGIN("redis", "1.0.0", "Redis Streams: a consumer group shares the messages, at least once",
                           redis_options, guarded_factory<build>)
