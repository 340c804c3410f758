// The unix transport through its built plugin: real sockets in a fresh
// directory under /tmp and in the abstract namespace, a python3 peer.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "pickleway/fd_stream.hpp"
#include "support/plugin_driver.hpp"
#include "support/process.hpp"

namespace {

using namespace pickleway;
using namespace pickleway::test;

option_value text(std::string s) { return {std::move(s), "test"}; }
option_value number(std::int64_t n) { return {n, "test"}; }
option_value section(option_values values) {
  return {std::make_shared<option_values>(std::move(values)), "test"};
}

// A fresh directory, removed with whatever is left in it.
struct temp_dir {
  std::string path;
  temp_dir() {
    char name[] = "/tmp/pickleway-unix-XXXXXX";
    REQUIRE(::mkdtemp(name));
    path = name;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// A name in the abstract namespace no other test run uses.
std::string abstract_name() {
  static int count = 0;
  return "@pickleway-test-" + std::to_string(::getpid()) + "-" + std::to_string(++count);
}

std::unique_ptr<listener> listen_at(
    const std::string& path, std::string& error,
    std::initializer_list<std::pair<std::string, option_value>> more = {}) {
  option_values values = options(more);
  values.set("listen", text(path));
  auto endpoint = make_transport("unix", values);
  REQUIRE(endpoint->listens());
  return endpoint->listen(error);
}

std::unique_ptr<listener> listen_at(const std::string& path) {
  std::string error;
  auto l = listen_at(path, error);
  REQUIRE_MESSAGE(l, error);
  CHECK(l->describe() == "unix " + path);
  return l;
}

// Both ends of one connection made through the plugin.
std::unique_ptr<byte_stream> connect_to(const std::string& path) {
  auto endpoint = make_transport("unix", options({{"connect", text(path)}}));
  CHECK(endpoint->describe() == "unix connect " + path);
  auto o = open_endpoint(*endpoint, {});
  std::string error;
  auto client = open_now(*o, error);  // completes into the backlog, before any accept
  REQUIRE_MESSAGE(client, error);
  return client;
}

connection connect_to(listener& l, const std::string& path) {
  connection c;
  c.client = connect_to(path);
  std::string error;
  c.server = accept_now(l, error);
  REQUIRE_MESSAGE(c.server, error);
  return c;
}


bool is_socket_file(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// Leaves a socket file nobody listens on, as a crashed server does.
void make_stale_socket(const std::string& path) {
  const unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un at{};
  at.sun_family = AF_UNIX;
  path.copy(at.sun_path, sizeof at.sun_path - 1);
  REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0);
}

struct recording_log final : log_sink {
  std::vector<std::string> lines;
  void line(std::string_view text) noexcept override { lines.emplace_back(text); }
};

}  // namespace

TEST_CASE("unix connector and listener exchange bytes both ways, with half-close") {
  temp_dir dir;
  std::string path;
  SUBCASE("on a socket file") { path = dir / "x.sock"; }
  SUBCASE("on an abstract name") { path = abstract_name(); }
  auto l = listen_at(path);
  auto c = connect_to(*l, path);
  CHECK(c.client->peer() == path);
  CHECK(c.server->peer() == path);
  exchange_with_half_close(c);
}

TEST_CASE("An abstract unix socket leaves no file behind") {
  const std::string name = abstract_name();
  auto l = listen_at(name);
  auto c = connect_to(*l, name);
  CHECK_FALSE(std::filesystem::exists(name));  // not taken for a relative path
}

TEST_CASE("One MiB crosses a unix connection intact, both ways at once") {
  temp_dir dir;
  auto l = listen_at(dir / "big.sock");
  auto c = connect_to(*l, dir / "big.sock");
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

TEST_CASE("A stale unix socket file is replaced") {
  temp_dir dir;
  const std::string path = dir / "stale.sock";
  make_stale_socket(path);
  REQUIRE(is_socket_file(path));
  auto l = listen_at(path);
  auto c = connect_to(*l, path);
  exchange_with_half_close(c);
}

TEST_CASE("A unix socket a live server accepts on is refused") {
  temp_dir dir;
  std::string path;
  SUBCASE("on a socket file") { path = dir / "live.sock"; }
  SUBCASE("on an abstract name") { path = abstract_name(); }
  auto live = listen_at(path);
  std::string error;
  CHECK(listen_at(path, error) == nullptr);
  CHECK(error == "unix " + path + ": in use by another process");
  CHECK(connect_to(path) != nullptr);  // the live one still answers
}

TEST_CASE("A unix listen path that is not a socket is refused and left alone") {
  temp_dir dir;
  const std::string path = dir / "notes.txt";
  std::ofstream(path) << "keep me";
  std::string error;
  CHECK(listen_at(path, error) == nullptr);
  CHECK(error == "unix " + path + ": exists and is not a socket");
  std::ifstream in(path);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "keep me");
}

TEST_CASE("A unix listener applies its mode to the socket file") {
  temp_dir dir;
  const std::string path = dir / "mode.sock";
  std::int64_t mode = 0;
  SUBCASE("0600") { mode = 0600; }
  SUBCASE("0660") { mode = 0660; }
  SUBCASE("0777") { mode = 0777; }
  std::string error;
  auto l = listen_at(path, error, {{"mode", number(mode)}});
  REQUIRE_MESSAGE(l, error);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == mode);
}

TEST_CASE("A unix listener removes its socket file, but not one put in its place") {
  temp_dir dir;
  const std::string path = dir / "gone.sock";
  auto l = listen_at(path);
  REQUIRE(is_socket_file(path));
  SUBCASE("its own file") {
    l.reset();
    CHECK_FALSE(std::filesystem::exists(path));
  }
  SUBCASE("a file in its place") {
    REQUIRE(::unlink(path.c_str()) == 0);
    std::ofstream(path) << "someone else's";
    l.reset();
    CHECK(std::filesystem::exists(path));
  }
}

TEST_CASE("A unix connector retries until the server listens") {
  temp_dir dir;
  const std::string path = dir / "later.sock";
  auto endpoint = make_transport(
      "unix",
      options({{"connect", text(path)}, {"retry", section(options({{"initial_ms", number(5)}}))}}));
  recording_log log;
  auto o = open_endpoint(*endpoint, {"retry", 1, &log});
  const auto first = o->step(false);
  REQUIRE(first.what == open_step::kind::wait);
  CHECK(first.handle == -1);  // a backoff timer: the attempt failed
  CHECK(first.timeout == 5ms);
  REQUIRE(log.lines.size() == 1);
  CHECK(log.lines[0].rfind("unix connect " + path +
                               ": No such file or directory (attempt 1); retrying (backoff from",
                           0) == 0);

  auto l = listen_at(path);
  std::string error;
  auto client = open_now(*o, error);
  REQUIRE_MESSAGE(client, error);
  REQUIRE(log.lines.size() == 2);
  CHECK(log.lines[1] == "unix connect " + path + ": connected to " + path + " at attempt 2");
  auto server = accept_now(*l, error);
  REQUIRE_MESSAGE(server, error);
  connection c{std::move(client), std::move(server)};
  exchange_with_half_close(c);
}

TEST_CASE("A unix connector that runs out of attempts says where, why and how often") {
  temp_dir dir;
  const std::string path = dir / "never.sock";
  SUBCASE("no file") {}
  SUBCASE("a stale socket file") { make_stale_socket(path); }
  auto endpoint = make_transport(
      "unix",
      options({{"connect", text(path)},
               {"retry", section(options({{"initial_ms", number(1)}, {"attempts", number(2)}}))}}));
  auto o = open_endpoint(*endpoint, {});
  std::string error;
  CHECK(open_now(*o, error) == nullptr);
  const std::string cause =
      is_socket_file(path) ? "Connection refused" : "No such file or directory";
  CHECK(error == "unix connect " + path + ": " + cause + " (attempt 2 of 2)");
}

TEST_CASE("A python3 client talks to a unix listener") {
  temp_dir dir;
  const std::string path = dir / "python.sock";
  auto l = listen_at(path);
  const std::string client = R"(
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"hello from python")
s.shutdown(socket.SHUT_WR)
data = b""
while chunk := s.recv(65536):
    data += chunk
sys.stdout.write(data.decode())
)";
  run_result result;
  std::jthread peer([&] { result = run({PICKLEWAY_PYTHON, "-c", client, path}); });
  std::string error;
  auto server = accept_now(*l, error);
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

TEST_CASE("A listening unix endpoint is not opened by open()") {
  auto endpoint = make_transport("unix", options({{"listen", text("/tmp/never-bound.sock")}}));
  auto o = open_endpoint(*endpoint, {});
  std::string error;
  CHECK(open_now(*o, error) == nullptr);
  CHECK(
      error ==
      "unix listen /tmp/never-bound.sock: a listening endpoint opens by accepting, not by open()");
  CHECK_FALSE(std::filesystem::exists("/tmp/never-bound.sock"));
}

TEST_CASE("unix takes exactly one of listen and connect, and checks the rest") {
  option_error error;
  SUBCASE("both") {
    CHECK(make_transport(
              "unix", options({{"listen", text("/tmp/a.sock")}, {"connect", text("/tmp/b.sock")}}),
              &error) == nullptr);
    CHECK(error.message == "give 'listen' or 'connect', not both");
  }
  SUBCASE("neither") {
    CHECK(make_transport("unix", options({{"mode", number(0600)}}), &error) == nullptr);
    CHECK(error.option.empty());
    CHECK(error.message == "one of 'listen' or 'connect' is required");
  }
  SUBCASE("mode on a connector") {
    CHECK(make_transport("unix",
                         options({{"connect", text("/tmp/a.sock")}, {"mode", number(0600)}}),
                         &error) == nullptr);
    CHECK(error.option == "mode");
  }
  SUBCASE("mode on an abstract name") {
    CHECK(make_transport("unix", options({{"listen", text("@name")}, {"mode", number(0600)}}),
                         &error) == nullptr);
    CHECK(error.option == "mode");
  }
  SUBCASE("retry on a listener") {
    CHECK(make_transport(
              "unix", options({{"listen", text("/tmp/a.sock")}, {"retry", section(options({}))}}),
              &error) == nullptr);
    CHECK(error.option == "retry");
  }
  SUBCASE("a path too long for a socket") {
    CHECK(make_transport("unix", options({{"connect", text("/tmp/" + std::string(200, 'x'))}}),
                         &error) == nullptr);
    CHECK(error.option == "connect");
    CHECK(error.message.find("is longer than a socket path may be (107 bytes)") !=
          std::string::npos);
  }
  SUBCASE("an empty path") {
    CHECK(make_transport("unix", options({{"listen", text("")}}), &error) == nullptr);
    CHECK(error.option == "listen");
  }
}
