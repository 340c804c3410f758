// The tcp transport through its built plugin: real sockets on loopback
// (127.0.0.1 and [::1]), listeners bound to port 0 and read back from
// describe(), python3 programs as peers.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "pickleway/fd_stream.hpp"
#include "support/plugin_driver.hpp"
#include "support/process.hpp"
#include "support/python_process.hpp"

namespace {

using namespace pickleway;
using namespace pickleway::test;

option_value text(std::string s) { return {std::move(s), "test"}; }
option_value number(std::int64_t n) { return {n, "test"}; }
option_value section(option_values values) {
  return {std::make_shared<option_values>(std::move(values)), "test"};
}

// A tcp listener and the address it got ("127.0.0.1:43125").
struct listening {
  std::unique_ptr<transport> endpoint;
  std::unique_ptr<listener> socket;
  std::string address;
};

listening listen_on(const std::string& at) {
  listening l;
  l.endpoint = make_transport("tcp", options({{"listen", text(at)}}));
  REQUIRE(l.endpoint->listens());
  std::string error;
  l.socket = l.endpoint->listen(error);
  REQUIRE_MESSAGE(l.socket, error);
  const std::string described = l.socket->describe();
  REQUIRE(described.rfind("tcp ", 0) == 0);
  l.address = described.substr(4);
  return l;
}

std::string port_of(const std::string& address) { return address.substr(address.rfind(':') + 1); }

// Both ends of one connection made through the plugin.
connection connect_to(listening& l, const std::string& address) {
  auto endpoint = make_transport("tcp", options({{"connect", text(address)}}));
  REQUIRE_FALSE(endpoint->listens());
  auto o = open_endpoint(*endpoint, {});
  connection c;
  std::string error;
  c.client = open_now(*o, error);  // completes into the backlog, before any accept
  REQUIRE_MESSAGE(c.client, error);
  c.server = accept_now(*l.socket, error);
  REQUIRE_MESSAGE(c.server, error);
  return c;
}

// The descriptor behind a stream with nothing to read: the one its read
// asks to wait on.
int descriptor_of(byte_stream& s) {
  std::uint8_t byte = 0;
  const auto r = s.read({&byte, 1});
  REQUIRE(r.status == io_status::would_block);
  return r.wait_handle;
}


bool ipv6_loopback_available() {
  const unique_fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 at{};
  at.sin6_family = AF_INET6;
  at.sin6_addr = in6addr_loopback;
  return fd && ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0;
}

// A loopback port that refuses connections until listen() is called on it:
// bound, so that nothing else takes it meanwhile.
struct reserved_port {
  unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  std::string address;

  reserved_port() {
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0);
    socklen_t size = sizeof at;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&at), &size) == 0);
    address = "127.0.0.1:" + std::to_string(ntohs(at.sin_port));
  }
};

struct recording_log final : log_sink {
  std::vector<std::string> lines;
  void line(std::string_view text) noexcept override { lines.emplace_back(text); }
};

}  // namespace

TEST_CASE("A tcp listener bound to port 0 names the port it got") {
  auto l = listen_on("127.0.0.1:0");
  CHECK(l.endpoint->describe() == "tcp listen 127.0.0.1:0");
  CHECK(l.address.rfind("127.0.0.1:", 0) == 0);
  CHECK(std::stoi(port_of(l.address)) > 0);
}

TEST_CASE("A tcp listener with no connection waiting gives no opener and no error") {
  auto l = listen_on("127.0.0.1:0");
  std::string error;
  CHECK(l.socket->accept(error) == nullptr);
  CHECK(error.empty());
}

TEST_CASE("tcp connector and listener exchange bytes both ways, with half-close") {
  auto l = listen_on("127.0.0.1:0");
  auto c = connect_to(l, l.address);
  CHECK(c.client->peer() == l.address);
  CHECK(c.server->peer().rfind("127.0.0.1:", 0) == 0);
  CHECK(c.server->peer() != l.address);
  exchange_with_half_close(c);
}

TEST_CASE("tcp works over IPv6 loopback, written [::1]:PORT") {
  if (!ipv6_loopback_available()) {
    MESSAGE("skipped: ::1 is not available on this machine");
    return;
  }
  auto l = listen_on("[::1]:0");
  REQUIRE(l.address.rfind("[::1]:", 0) == 0);
  auto c = connect_to(l, l.address);
  CHECK(c.client->peer() == l.address);
  CHECK(c.server->peer().rfind("[::1]:", 0) == 0);
  exchange_with_half_close(c);
}

TEST_CASE("tcp connects to a name, resolved when connecting") {
  auto l = listen_on("127.0.0.1:0");
  // localhost may resolve to ::1 first, where nothing listens: each
  // address is tried in turn.
  auto c = connect_to(l, "localhost:" + port_of(l.address));
  CHECK(c.client->peer() == l.address);
  exchange_with_half_close(c);
}

TEST_CASE("One MiB crosses a tcp connection intact, both ways at once") {
  auto l = listen_on("127.0.0.1:0");
  auto c = connect_to(l, l.address);
  std::string up(1 << 20, '\0');
  std::string down(1 << 20, '\0');
  for (std::size_t i = 0; i < up.size(); ++i) {
    up[i] = static_cast<char>(i * 7 % 251);
    down[i] = static_cast<char>(i * 13 % 241);
  }
  const auto [at_server, at_client] = carry(*c.client, *c.server, up, down);
  CHECK(at_server.size() == up.size());
  CHECK(at_server == up);
  CHECK(at_client.size() == down.size());
  CHECK(at_client == down);
}

TEST_CASE("tcp sockets are non-blocking, close-on-exec and TCP_NODELAY") {
  auto l = listen_on("127.0.0.1:0");
  CHECK((::fcntl(l.socket->handle(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((::fcntl(l.socket->handle(), F_GETFL) & O_NONBLOCK) != 0);
  auto c = connect_to(l, l.address);
  for (byte_stream* s : {c.client.get(), c.server.get()}) {
    const int fd = descriptor_of(*s);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    int on = 0;
    socklen_t size = sizeof on;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &size) == 0);
    CHECK(on != 0);
  }
}

TEST_CASE("A tcp connector retries with backoff until the server listens") {
  reserved_port port;
  auto endpoint = make_transport(
      "tcp",
      options({{"connect", text(port.address)},
               {"retry", section(options({{"initial_ms", number(10)}, {"max_ms", number(15)}}))}}));
  recording_log log;
  auto o = open_endpoint(*endpoint, {"retry", 1, &log});

  // Steps the opener to its next backoff: a failed attempt.
  const auto next_backoff = [&](bool timed_out) {
    auto s = o->step(timed_out);
    while (s.what == open_step::kind::wait && s.handle >= 0) {
      REQUIRE(wait_ready(s.handle, s.writable, 5s));
      s = o->step(false);
    }
    REQUIRE_MESSAGE(s.what == open_step::kind::wait, s.error);
    return s.timeout;
  };
  const auto first = next_backoff(false);
  CHECK(first == 10ms);
  std::this_thread::sleep_for(first);  // the timer the opener asked for, as the core keeps it
  CHECK(next_backoff(true) == 15ms);   // doubled, up to max_ms
  REQUIRE(log.lines.size() == 1);      // the same cause twice is logged once
  CHECK(log.lines[0].rfind("tcp connect " + port.address +
                               ": Connection refused (attempt 1); retrying (backoff from",
                           0) == 0);

  REQUIRE(::listen(port.fd.get(), 1) == 0);
  std::string error;
  auto client = open_now(*o, error);
  REQUIRE_MESSAGE(client, error);
  REQUIRE(log.lines.size() == 2);
  CHECK(log.lines[1] ==
        "tcp connect " + port.address + ": connected to " + port.address + " at attempt 3");
  REQUIRE(wait_ready(port.fd.get(), false, 5s));
  const unique_fd server(::accept4(port.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(server);
  REQUIRE(write_all(*client, "after retrying"));
  REQUIRE(wait_ready(server.get(), false, 5s));
  char buffer[64] = {};
  CHECK(::recv(server.get(), buffer, sizeof buffer, MSG_DONTWAIT) == 14);  // one small segment
  CHECK(std::string(buffer) == "after retrying");
}

TEST_CASE("A tcp connector that runs out of attempts says where, why and how often") {
  reserved_port port;
  auto endpoint =
      make_transport("tcp", options({{"connect", text(port.address)},
                                     {"retry", section(options({{"initial_ms", number(1)},
                                                                {"max_ms", number(2)},
                                                                {"attempts", number(3)}}))}}));
  auto o = open_endpoint(*endpoint, {});
  std::string error;
  CHECK(open_now(*o, error) == nullptr);
  CHECK(error == "tcp connect " + port.address + ": Connection refused (attempt 3 of 3)");
}

TEST_CASE("A python3 client talks to a tcp listener") {
  auto l = listen_on("127.0.0.1:0");
  const std::string client = R"(
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"hello from python")
s.shutdown(socket.SHUT_WR)
data = b""
while chunk := s.recv(65536):
    data += chunk
sys.stdout.write(data.decode())
)";
  run_result result;
  std::jthread peer([&] { result = run({PICKLEWAY_PYTHON, "-c", client, port_of(l.address)}); });
  std::string error;
  auto server = accept_now(*l.socket, error);
  REQUIRE_MESSAGE(server, error);
  std::string got;
  REQUIRE(read_to_end(*server, got));
  CHECK(got == "hello from python");
  REQUIRE(write_all(*server, "hello from pickleway"));
  REQUIRE_FALSE(server->close_write());
  peer.join();
  CHECK(result.exit_status == 0);
  CHECK(result.out == "hello from pickleway");
}

TEST_CASE("A tcp connector talks to a python3 server") {
  python_process python(R"(
import socket
server = socket.create_server(("127.0.0.1", 0))
server.settimeout(10)
print(server.getsockname()[1], flush=True)
connection, _ = server.accept()
connection.settimeout(10)
data = b""
while chunk := connection.recv(65536):
    data += chunk
connection.sendall(data.upper())
connection.shutdown(socket.SHUT_WR)
connection.recv(1)
)");
  const std::string address = "127.0.0.1:" + python.line();
  auto endpoint = make_transport("tcp", options({{"connect", text(address)}}));
  auto o = open_endpoint(*endpoint, {});
  std::string error;
  auto client = open_now(*o, error);
  REQUIRE_MESSAGE(client, error);
  REQUIRE(write_all(*client, "shout this"));
  REQUIRE_FALSE(client->close_write());
  std::string got;
  REQUIRE(read_to_end(*client, got));
  CHECK(got == "SHOUT THIS");
  client.reset();
  CHECK(python.finish() == 0);
}

TEST_CASE("tcp takes tls, and refuses a CA file that does not exist, naming the option") {
  // tls_test.cpp tests TLS itself; here only that the option is read.
  option_error error;
  const auto refused = make_transport(
      "tcp",
      options({{"connect", text("127.0.0.1:7000")},
               {"tls", section(options({{"ca", text("/nonexistent/pickleway-ca.pem")}}))}}),
      &error);
  CHECK(refused == nullptr);
  CHECK(error.option == "tls.ca");
  CHECK(error.message ==
        "tls.ca: cannot load /nonexistent/pickleway-ca.pem: No such file or directory");
}

TEST_CASE("tcp takes exactly one of listen and connect, and checks the rest") {
  option_error error;
  SUBCASE("both") {
    CHECK(make_transport(
              "tcp",
              options({{"listen", text("127.0.0.1:0")}, {"connect", text("127.0.0.1:7000")}}),
              &error) == nullptr);
    CHECK(error.message == "give 'listen' or 'connect', not both");
  }
  SUBCASE("neither") {
    CHECK(make_transport("tcp", options({}), &error) == nullptr);
    CHECK(error.option.empty());
    CHECK(error.message == "one of 'listen' or 'connect' is required");
  }
  SUBCASE("retry on a listener") {
    CHECK(make_transport(
              "tcp", options({{"listen", text("127.0.0.1:0")}, {"retry", section(options({}))}}),
              &error) == nullptr);
    CHECK(error.option == "retry");
  }
  SUBCASE("max_ms below initial_ms") {
    CHECK(make_transport("tcp",
                         options({{"connect", text("127.0.0.1:7000")},
                                  {"retry", section(options({{"initial_ms", number(500)},
                                                             {"max_ms", number(100)}}))}}),
                         &error) == nullptr);
    CHECK(error.message == "max_ms must not be less than initial_ms");
  }
  SUBCASE("connect to port 0") {
    CHECK(make_transport("tcp", options({{"connect", text("127.0.0.1:0")}}), &error) == nullptr);
    CHECK(error.option == "connect");
  }
  SUBCASE("backlog on a connector, or out of range") {
    CHECK(make_transport("tcp", options({{"connect", text("127.0.0.1:7000")}, {"backlog", number(10)}}),
                         &error) == nullptr);
    CHECK(error.message == "backlog applies to 'listen' only");
    CHECK(make_transport("tcp", options({{"listen", text("127.0.0.1:0")}, {"backlog", number(0)}}),
                         &error) == nullptr);
    CHECK(error.message == "backlog must be from 1 to 1000000");
  }
  SUBCASE("an IPv6 address without brackets") {
    CHECK(make_transport("tcp", options({{"connect", text("::1:7000")}}), &error) == nullptr);
    CHECK(error.option == "connect");
  }
}

TEST_CASE("A listening tcp endpoint is not opened by open()") {
  auto endpoint = make_transport("tcp", options({{"listen", text("127.0.0.1:0")}}));
  auto o = open_endpoint(*endpoint, {});
  std::string error;
  CHECK(open_now(*o, error) == nullptr);
  CHECK(error == "tcp listen 127.0.0.1:0: a listening endpoint opens by accepting, not by open()");
}

TEST_CASE("A tcp listener on a port in use says so") {
  auto first = listen_on("127.0.0.1:0");
  auto endpoint = make_transport("tcp", options({{"listen", text(first.address)}}));
  std::string error;
  CHECK(endpoint->listen(error) == nullptr);
  CHECK(error == "tcp " + first.address + ": Address already in use");
}
