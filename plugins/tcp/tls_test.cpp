// TLS on the tcp transport: the plugin driven in process against itself
// and against Python's ssl module, then `pickleway run` processes bridged
// over TLS, socat as a TLS client of a listener, and `pickleway check` on
// bad files.
//
// The certificates are made once per test run by the openssl command, in
// a temporary directory: a CA, a server certificate for localhost,
// 127.0.0.1 and ::1, a client certificate, a second CA nobody trusts with
// a server certificate of its own, and a certificate for another name.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "pickleway/fd_stream.hpp"
#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/plugin_driver.hpp"
#include "support/process.hpp"
#include "support/python_process.hpp"

namespace pickleway::test {
namespace {

using clock = std::chrono::steady_clock;

const std::filesystem::path& cert_dir() {
  static const std::filesystem::path dir = [] {
    const auto made = make_temp_dir();
    const std::string script = R"(set -e
exec 2>/dev/null
cd "$1"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
ca() {
  openssl req -x509 $ec -keyout $1.key -out $1.pem -subj /CN=$1 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
}
leaf() {
  openssl req -x509 $ec -keyout $1.key -out $1.pem -subj /CN=$1 -CA $2.pem -CAkey $2.key \
    -addext "subjectAltName=$3" -addext basicConstraints=CA:FALSE
}
ca ca
ca other-ca
leaf server ca "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf client ca "DNS:client"
leaf stranger other-ca "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf elsewhere ca "DNS:elsewhere.example"
printf 'not a certificate\n' > garbage.pem
)";
    const auto r = run({"sh", "-c", script, "sh", made.string()});
    REQUIRE_MESSAGE(r.exit_status == 0, "the openssl command could not make the certificates");
    return made;
  }();
  return dir;
}

std::string pem(const std::string& name) { return (cert_dir() / name).string(); }

option_value text(std::string s) { return {std::move(s), "test"}; }

// A `tls` section: option name to value (verify_peer and timeout_ms typed).
option_value tls(std::initializer_list<std::pair<std::string, std::string>> values) {
  auto section = std::make_shared<option_values>();
  for (const auto& [name, value] : values) {
    if (name == "verify_peer")
      section->set(name, {value == "true", "test"});
    else if (name == "timeout_ms")
      section->set(name, {static_cast<std::int64_t>(std::stoll(value)), "test"});
    else
      section->set(name, text(value));
  }
  return {section, "test"};
}

option_value server_tls() { return tls({{"cert", pem("server.pem")}, {"key", pem("server.key")}}); }

struct tls_listener {
  std::unique_ptr<transport> endpoint;
  std::unique_ptr<listener> socket;
  std::string port;
};

tls_listener listen_tls(option_value tls_section, const std::string& at = "127.0.0.1:0") {
  tls_listener l;
  l.endpoint = make_transport("tcp", options({{"listen", text(at)}, {"tls", tls_section}}));
  std::string error;
  l.socket = l.endpoint->listen(error);
  REQUIRE_MESSAGE(l.socket, error);
  const std::string described = l.socket->describe();
  l.port = described.substr(described.rfind(':') + 1);
  return l;
}

// Both ends of one connection, each opener run to its end at once (the
// client's in a thread of its own, as the handshake needs both), with
// what each said when it failed.
struct tls_pair {
  std::unique_ptr<byte_stream> client, server;
  std::string client_error, server_error;
  std::chrono::milliseconds client_took{};
};

tls_pair handshake(tls_listener& l, const std::string& host, option_value client_tls) {
  auto connector = make_transport(
      "tcp", options({{"connect", text(host + ":" + l.port)}, {"tls", std::move(client_tls)}}));
  tls_pair p;
  auto o = open_endpoint(*connector, {});
  std::jthread client([&] {
    const auto start = clock::now();
    p.client = open_now(*o, p.client_error);
    p.client_took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
  });
  p.server = accept_now(*l.socket, p.server_error);
  client.join();
  return p;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Reads until EOF or failure; the last result says which.
io_result drain(byte_stream& s, std::string& out, std::chrono::milliseconds deadline = 10s) {
  const auto end = clock::now() + deadline;
  std::uint8_t buffer[4096];
  for (;;) {
    const auto r = s.read({buffer, sizeof buffer});
    if (r.status == io_status::done) {
      out.append(reinterpret_cast<const char*>(buffer), r.bytes);
    } else if (r.status != io_status::would_block) {
      return r;
    } else if (!wait_ready(r.wait_handle, r.wait_writable,
                           std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now()))) {
      return io_result::failure(std::make_error_code(std::errc::timed_out));
    }
  }
}

bool ipv6_loopback_available() {
  const unique_fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 at{};
  at.sin6_family = AF_INET6;
  at.sin6_addr = in6addr_loopback;
  return fd && ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0;
}

// A python3 ssl server on 127.0.0.1, run with the arguments CERT KEY
// VERSION (its highest TLS version, "TLSv1_3"): prints its port, and serves
// one connection with `serve`, Python code with `conn` (the SSLSocket).
std::string python_tls_server(const std::string& serve) {
  return R"(
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ctx.maximum_version = getattr(ssl.TLSVersion, sys.argv[3])
server = socket.create_server(("127.0.0.1", 0))
server.settimeout(10)
print(server.getsockname()[1], flush=True)
raw, _ = server.accept()
raw.settimeout(10)
conn = ctx.wrap_socket(raw, server_side=True)
)" + serve;
}

}  // namespace

// ---- The plugin in process

TEST_CASE("tls connector and listener exchange bytes both ways, with half-close") {
  std::vector<std::string> hosts = {"127.0.0.1", "localhost"};
  if (ipv6_loopback_available())
    hosts.push_back("[::1]");
  else
    MESSAGE("no IPv6 loopback here: [::1] is not tried");
  for (const auto& host : hosts) {
    CAPTURE(host);
    auto l = listen_tls(server_tls(), host == "[::1]" ? "[::1]:0" : "127.0.0.1:0");
    auto p = handshake(l, host, tls({{"ca", pem("ca.pem")}}));
    REQUIRE_MESSAGE(p.client, p.client_error);
    REQUIRE_MESSAGE(p.server, p.server_error);
    connection c{std::move(p.client), std::move(p.server)};
    exchange_with_half_close(c);
  }
}

TEST_CASE("Two MiB cross a tls connection intact, both ways at once") {
  auto l = listen_tls(server_tls());
  auto p = handshake(l, "127.0.0.1", tls({{"ca", pem("ca.pem")}}));
  REQUIRE_MESSAGE(p.client, p.client_error);
  REQUIRE_MESSAGE(p.server, p.server_error);
  std::string forward(2 << 20, '\0'), backward(2 << 20, '\0');
  for (std::size_t i = 0; i < forward.size(); ++i) {
    forward[i] = static_cast<char>(i * 7 % 251);
    backward[i] = static_cast<char>(i * 13 % 241);
  }
  const auto [at_server, at_client] = carry(*p.client, *p.server, forward, backward);
  CHECK(at_server == forward);
  CHECK(at_client == backward);
}

TEST_CASE("A tls connector refuses a server it cannot verify at once, without retrying") {
  struct refusal {
    const char* name;
    const char* server_cert;
    std::string host;
    option_value client;
    const char* reason;
  };
  const refusal cases[] = {
      {"a certificate from a CA it does not trust", "stranger", "127.0.0.1",
       tls({{"ca", pem("ca.pem")}}), "certificate verify failed: unable to get local issuer certificate"},
      {"the system's CAs, which do not know the test CA", "server", "localhost", tls({}),
       "certificate verify failed: unable to get local issuer certificate"},
      {"another host name than server_name", "server", "127.0.0.1",
       tls({{"ca", pem("ca.pem")}, {"server_name", "elsewhere.example"}}),
       "certificate verify failed: hostname mismatch"},
      {"another address than the one connected to", "elsewhere", "127.0.0.1",
       tls({{"ca", pem("ca.pem")}}), "certificate verify failed: IP address mismatch"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      auto l = listen_tls(
          tls({{"cert", pem(std::string(c.server_cert) + ".pem")},
               {"key", pem(std::string(c.server_cert) + ".key")}}));
      // The default retry is forever: only a final failure ends the open.
      auto p = handshake(l, c.host, c.client);
      CHECK_FALSE(p.client);
      CHECK_MESSAGE(contains(p.client_error, "tcp connect " + c.host + ":" + l.port +
                                                 ": TLS handshake with "),
                    p.client_error);
      CHECK_MESSAGE(contains(p.client_error, c.reason), p.client_error);
      CHECK_FALSE(contains(p.client_error, "attempt"));
      CHECK(p.client_took < 3s);
      // The server hears of it as an alert.
      CHECK_FALSE(p.server);
      CHECK_MESSAGE(contains(p.server_error, "alert"), p.server_error);
    }
  }
}

TEST_CASE("A tls connector with verify_peer false takes any server, and a server_name fits SNI") {
  SUBCASE("verify_peer false") {
    auto l = listen_tls(tls({{"cert", pem("stranger.pem")}, {"key", pem("stranger.key")}}));
    auto p = handshake(l, "127.0.0.1", tls({{"verify_peer", "false"}}));
    REQUIRE_MESSAGE(p.client, p.client_error);
    REQUIRE_MESSAGE(p.server, p.server_error);
    connection c{std::move(p.client), std::move(p.server)};
    exchange_with_half_close(c);
  }
  SUBCASE("server_name localhost while connecting to 127.0.0.1") {
    auto l = listen_tls(server_tls());
    auto p = handshake(l, "127.0.0.1", tls({{"ca", pem("ca.pem")}, {"server_name", "localhost"}}));
    REQUIRE_MESSAGE(p.client, p.client_error);
    REQUIRE_MESSAGE(p.server, p.server_error);
  }
}

TEST_CASE("A tls listener that names a ca requires a client certificate it can verify") {
  auto l = listen_tls(tls({{"cert", pem("server.pem")}, {"key", pem("server.key")}, {"ca", pem("ca.pem")}}));
  SUBCASE("with one, it works") {
    auto p = handshake(l, "localhost",
                       tls({{"ca", pem("ca.pem")}, {"cert", pem("client.pem")}, {"key", pem("client.key")}}));
    REQUIRE_MESSAGE(p.client, p.client_error);
    REQUIRE_MESSAGE(p.server, p.server_error);
    connection c{std::move(p.client), std::move(p.server)};
    exchange_with_half_close(c);
  }
  SUBCASE("without one, it is refused") {
    auto p = handshake(l, "localhost", tls({{"ca", pem("ca.pem")}}));
    CHECK_FALSE(p.server);
    CHECK_MESSAGE(contains(p.server_error, "failed: peer did not return a certificate"),
                  p.server_error);
    // In TLS 1.3 the client's handshake ends before the server has judged
    // its certificate: the refusal comes as the first read's error.
    if (p.client) {
      std::string got;
      const auto r = drain(*p.client, got);
      CHECK(r.status == io_status::failed);
      CHECK_MESSAGE(contains(r.error.message(), "certificate required"), r.error.message());
      CHECK(got.empty());
    }
  }
  SUBCASE("one from a CA it does not trust is refused") {
    auto p = handshake(l, "localhost",
                       tls({{"ca", pem("ca.pem")}, {"cert", pem("stranger.pem")}, {"key", pem("stranger.key")}}));
    CHECK_FALSE(p.server);
    CHECK_MESSAGE(contains(p.server_error,
                           "certificate verify failed: unable to get local issuer certificate"),
                  p.server_error);
  }
}

TEST_CASE("A tls listener's verify_peer: true, written beside its ca, requires a client certificate") {
  auto l = listen_tls(tls({{"cert", pem("server.pem")}, {"key", pem("server.key")}, {"ca", pem("ca.pem")},
                           {"verify_peer", "true"}}));
  auto p = handshake(l, "localhost", tls({{"ca", pem("ca.pem")}}));
  CHECK_FALSE(p.server);
  CHECK_MESSAGE(contains(p.server_error, "failed: peer did not return a certificate"), p.server_error);
}

TEST_CASE("A tls listener with verify_peer false asks for a client certificate, and takes a client without one") {
  auto l = listen_tls(tls({{"cert", pem("server.pem")}, {"key", pem("server.key")}, {"ca", pem("ca.pem")},
                           {"verify_peer", "false"}}));
  CHECK(l.endpoint->describe() ==
        "tcp listen 127.0.0.1:0, tls, client certificates from " + pem("ca.pem") + " asked for, not required");
  SUBCASE("a python3 client without a certificate is served") {
    python_process client(R"(
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(sys.argv[2])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
conn = ctx.wrap_socket(raw, server_hostname="localhost")
print(conn.recv(4).decode(), flush=True)
)",
                          {l.port, pem("ca.pem")});
    std::string error;
    auto server = accept_now(*l.socket, error);
    REQUIRE_MESSAGE(server, error);
    REQUIRE(write_all(*server, "pong"));
    CHECK(client.line() == "pong");
    CHECK(client.finish() == 0);
  }
  SUBCASE("a client with a certificate from the ca is served") {
    auto p = handshake(l, "localhost",
                       tls({{"ca", pem("ca.pem")}, {"cert", pem("client.pem")}, {"key", pem("client.key")}}));
    REQUIRE_MESSAGE(p.client, p.client_error);
    REQUIRE_MESSAGE(p.server, p.server_error);
    connection c{std::move(p.client), std::move(p.server)};
    exchange_with_half_close(c);
  }
  SUBCASE("a client certificate that does not verify is refused: the listener asked for it") {
    auto p = handshake(l, "localhost",
                       tls({{"ca", pem("ca.pem")}, {"cert", pem("stranger.pem")}, {"key", pem("stranger.key")}}));
    CHECK_FALSE(p.server);
    CHECK_MESSAGE(contains(p.server_error, "certificate verify failed: unable to get local issuer certificate"),
                  p.server_error);
  }
}

TEST_CASE("A tls listener gives up on a client silent past tls.timeout_ms") {
  auto l = listen_tls(
      tls({{"cert", pem("server.pem")}, {"key", pem("server.key")}, {"timeout_ms", "300"}}));
  const unique_fd silent(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  at.sin_port = htons(static_cast<std::uint16_t>(std::stoi(l.port)));
  REQUIRE(::connect(silent.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0);
  const auto start = clock::now();
  std::string error;
  CHECK_FALSE(accept_now(*l.socket, error));
  const auto took = clock::now() - start;
  CHECK_MESSAGE(contains(error, "TLS handshake with 127.0.0.1:"), error);
  CHECK_MESSAGE(contains(error, "failed: timed out after 300 ms (tls.timeout_ms)"), error);
  CHECK(took >= 290ms);
  CHECK(took < 5s);
}

// ---- Against Python's ssl module

TEST_CASE("A tls connector reads a peer's close_notify as EOF, and a bare FIN as truncation") {
  SUBCASE("close_notify") {
    python_process server(python_tls_server(R"(
conn.sendall(b"all of it")
conn.unwrap()  # close_notify
)"),
                          {pem("server.pem"), pem("server.key"), "TLSv1_3"});
    auto endpoint = make_transport("tcp", options({{"connect", text("127.0.0.1:" + server.line())},
                                                   {"tls", tls({{"ca", pem("ca.pem")}})}}));
    auto o = open_endpoint(*endpoint, {});
    std::string error;
    auto client = open_now(*o, error);
    REQUIRE_MESSAGE(client, error);
    std::string got;
    const auto r = drain(*client, got);
    CHECK(r.status == io_status::eof);
    CHECK(got == "all of it");
    CHECK_FALSE(client->close_write());  // Python's unwrap() waits for ours
    client.reset();
    CHECK(server.finish() == 0);
  }
  SUBCASE("FIN without close_notify") {
    python_process server(python_tls_server(R"(
conn.sendall(b"part of it")
import os
raw = socket.socket(fileno=os.dup(conn.fileno()))  # under the TLS: no close_notify
raw.settimeout(10)
raw.shutdown(socket.SHUT_WR)
raw.recv(1)
)"),
                          {pem("server.pem"), pem("server.key"), "TLSv1_3"});
    auto endpoint = make_transport("tcp", options({{"connect", text("127.0.0.1:" + server.line())},
                                                   {"tls", tls({{"ca", pem("ca.pem")}})}}));
    auto o = open_endpoint(*endpoint, {});
    std::string error;
    auto client = open_now(*o, error);
    REQUIRE_MESSAGE(client, error);
    std::string got;
    const auto r = drain(*client, got);
    CHECK(got == "part of it");
    REQUIRE(r.status == io_status::failed);
    CHECK(r.error.message() ==
          "the peer closed without TLS close_notify (the stream may be cut short)");
    client.reset();
    CHECK(server.finish() == 0);
  }
}

TEST_CASE("After a tls half-close the peer's answer still reads, in TLS 1.2 and 1.3") {
  // The Python server reads to our close_notify, and only then answers.
  for (const char* version : {"TLSv1_2", "TLSv1_3"}) {
    CAPTURE(version);
    python_process server(python_tls_server(R"(
data = b""
while chunk := conn.recv(65536):
    data += chunk
conn.sendall(conn.version().encode() + b" " + data.upper())
conn.unwrap()
)"),
                          {pem("server.pem"), pem("server.key"), version});
    auto endpoint = make_transport("tcp", options({{"connect", text("127.0.0.1:" + server.line())},
                                                   {"tls", tls({{"ca", pem("ca.pem")}})}}));
    auto o = open_endpoint(*endpoint, {});
    std::string error;
    auto client = open_now(*o, error);
    REQUIRE_MESSAGE(client, error);
    REQUIRE(write_all(*client, "shout this"));
    REQUIRE_FALSE(client->close_write());
    std::string got;
    const auto r = drain(*client, got);
    CHECK(r.status == io_status::eof);
    std::string expected = std::string(version) + " SHOUT THIS";
    expected[5] = '.';  // "TLSv1.2"
    CHECK(got == expected);
    client.reset();
    CHECK(server.finish() == 0);
  }
}

TEST_CASE("A tls listener refuses TLS 1.1") {
  auto l = listen_tls(server_tls());
  const std::string client = R"(
import socket, ssl, sys, warnings
warnings.simplefilter("ignore")
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(sys.argv[2])
try:
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
except (ssl.SSLError, ValueError) as e:
    print("cannot offer TLS 1.1 here:", e)
    sys.exit(3)  # closing the connection: the listener's handshake ends at once
try:
    ctx.wrap_socket(s, server_hostname="localhost")
except ssl.SSLError as e:
    print("refused:", e.reason)
    sys.exit(0)
print("TLS 1.1 was accepted")
sys.exit(1)
)";
  run_result result;
  std::jthread peer([&] { result = run({PICKLEWAY_PYTHON, "-c", client, l.port, pem("ca.pem")}); });
  std::string error;
  auto server = accept_now(*l.socket, error, 5s);
  peer.join();
  if (result.exit_status == 3) {
    MESSAGE("skipped: this Python's OpenSSL cannot offer TLS 1.1: " << result.out);
    return;
  }
  CHECK(result.exit_status == 0);
  CHECK_MESSAGE(contains(result.out, "refused: TLSV1_ALERT_PROTOCOL_VERSION"), result.out);
  CHECK_FALSE(server);
  CHECK_MESSAGE(contains(error, "failed: unsupported protocol"), error);
}

// ---- pickleway processes

namespace {

std::string endpoint_tls(const std::string& options) { return ", tls: {" + options + "}"; }

std::string listener_config(const std::string& command, const std::string& tls_options,
                            const std::string& framing = "length") {
  return "grace: 500ms\nsessions:\n  - name: far\n    a: {transport: spawn, command: " + command +
         "}\n    b: {transport: tcp, listen: \"127.0.0.1:0\", framing: " + framing +
         endpoint_tls(tls_options) + "}\n";
}

std::string connector_config(const std::string& command, const std::string& target,
                             const std::string& tls_options) {
  return "grace: 500ms\nsessions:\n  - name: near\n    a: {transport: spawn, command: " + command +
         "}\n    b: {transport: tcp, connect: \"" + target + "\", framing: length" +
         endpoint_tls(tls_options) + "}\n";
}

std::string server_files() { return "cert: " + pem("server.pem") + ", key: " + pem("server.key"); }
std::string client_files() { return "cert: " + pem("client.pem") + ", key: " + pem("client.key"); }
std::string ca_file() { return "ca: " + pem("ca.pem"); }

}  // namespace

TEST_CASE("two gateways bridged over tls carry every message intact, both ways") {
  struct variant {
    const char* name;
    std::string far_tls, near_tls;
  };
  const variant variants[] = {
      {"server certificate", server_files(), ca_file()},
      {"mutual", server_files() + ", " + ca_file(), ca_file() + ", " + client_files()},
  };
  for (const auto& v : variants) {
    SUBCASE(v.name) {
      const auto dir = make_temp_dir();
      const auto report = dir / "report.json";
      gateway far(write_text(dir, "far.yaml", listener_config(peer_command({"echo"}), v.far_tls)));
      gateway near(write_text(
          dir, "near.yaml",
          connector_config(peer_command({"produce", "--small", "2000", "--big", "3", "--big-size",
                                         "300000", "--report", report.string()}),
                           "localhost:" + std::to_string(far.listening_port("far")), v.near_tls)));
      INFO("near: " << near.log());
      INFO("far: " << far.log());
      CHECK(near.wait() == 0);
      const auto bytes = read_file(report);
      CHECK(contains(std::string(bytes.begin(), bytes.end()),
                     R"("sent": 2003, "received": 2003, "ok": true)"));
      CHECK(far.wait_for_line("session far#1: ended, a>b 2003 messages, b>a 2003 messages"));
      far.signal(SIGTERM);
      CHECK(far.wait() == 0);
      std::filesystem::remove_all(dir);
    }
  }
}

TEST_CASE("a gateway ends at once, status 1, when the tls server or client is refused") {
  struct refusal {
    const char* name;
    std::string far_tls, near_tls;
    const char* near_says;
    const char* far_says;
  };
  const refusal cases[] = {
      {"untrusted server", "cert: " + pem("stranger.pem") + ", key: " + pem("stranger.key"),
       ca_file(), "failed: certificate verify failed: unable to get local issuer certificate",
       "failed: tlsv1 alert unknown ca"},
      {"server_name mismatch", server_files(), ca_file() + ", server_name: elsewhere.example",
       "failed: certificate verify failed: hostname mismatch", "failed: sslv3 alert bad certificate"},
      {"no client certificate", server_files() + ", " + ca_file(), ca_file(),
       "certificate required", "failed: peer did not return a certificate"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      const auto dir = make_temp_dir();
      // The far side's child would leave a mark, and echo with cat.
      const auto mark = dir / "spawned";
      gateway far(write_text(
          dir, "far.yaml",
          listener_config("[sh, -c, 'touch \"$0\" && exec cat', " + mark.string() + "]",
                          c.far_tls)));
      const auto start = clock::now();
      // No retry option: the default retries a refused connect forever.
      gateway near(write_text(
          dir, "near.yaml",
          connector_config(peer_command({"produce", "--small", "5"}),
                           "127.0.0.1:" + std::to_string(far.listening_port("far")), c.near_tls)));
      CHECK(near.wait(10s) == 1);
      CHECK(clock::now() - start < 5s);
      CHECK_MESSAGE(contains(near.log(), "session near, endpoint b (tcp): "), near.log());
      CHECK_MESSAGE(contains(near.log(), c.near_says), near.log());
      CHECK_FALSE(contains(near.log(), "retrying"));
      // The listener spawned nothing for the refused peer: its instance
      // failed in b's handshake, which comes before a is opened.
      CHECK_MESSAGE(far.wait_for_line(c.far_says), far.log());
      CHECK(far.wait_for_line("session far#1: ended with an error, a>b 0 messages, b>a 0 messages"));
      CHECK_FALSE(std::filesystem::exists(mark));
      far.signal(SIGTERM);
      CHECK(far.wait() == 1);
      std::filesystem::remove_all(dir);
    }
  }
}

TEST_CASE("socat as a TLS client of a pickleway listener delivers pickles to a python consumer") {
  if (run({"sh", "-c", "command -v socat"}).exit_status != 0) {
    MESSAGE("skipped: socat is not installed");
    return;
  }
  const auto dir = make_temp_dir();
  const auto input = dir / "in.pickles";
  const auto report = dir / "report.json";
  // Every protocol, small to 100 KB, back to back as one stream.
  REQUIRE(run({PICKLEWAY_PYTHON, "-c",
               "import pickle, sys\n"
               "with open(sys.argv[1], 'wb') as f:\n"
               "    for i in range(120):\n"
               "        f.write(pickle.dumps({'seq': i, 'data': 'x' * (i * 900)}, protocol=i % 6))\n",
               input.string()})
              .exit_status == 0);
  gateway far(write_text(
      dir, "far.yaml",
      listener_config(peer_command({"sink", "--expect", "120", "--report", report.string()}),
                      server_files(), "pickle")));
  const auto port = std::to_string(far.listening_port("far"));
  const auto r = run({"sh", "-c",
                      "socat -t 10 - OPENSSL:127.0.0.1:" + port + ",cafile=" + quote(pem("ca.pem")) +
                          " < " + quote(input.string()) + " 2>&1"});
  INFO("far: " << far.log());
  CHECK_MESSAGE(r.exit_status == 0, r.out);
  CHECK(far.wait_for_line("session far#1: ended, a>b 0 messages, b>a 120 messages"));
  const auto bytes = read_file(report);
  CHECK(contains(std::string(bytes.begin(), bytes.end()), R"("received": 120, "ok": true)"));
  far.signal(SIGTERM);
  CHECK(far.wait() == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("pickleway check loads the tls files, and points at the option that does not load") {
  struct bad {
    const char* name;
    std::string endpoint;
    std::string says;
  };
  const std::string listen = "{transport: tcp, listen: \"127.0.0.1:0\", tls: ";
  const std::string connect = "{transport: tcp, connect: \"127.0.0.1:7000\", tls: ";
  const bad cases[] = {
      {"a missing cert", listen + "{cert: /nonexistent/cert.pem, key: " + pem("server.key") + "}}",
       "tls.cert: cannot load /nonexistent/cert.pem: No such file or directory"},
      {"a cert that is no certificate",
       listen + "{cert: " + pem("garbage.pem") + ", key: " + pem("server.key") + "}}",
       "tls.cert: cannot load " + pem("garbage.pem") + ": no start line"},
      {"a key of another certificate",
       listen + "{cert: " + pem("server.pem") + ", key: " + pem("client.key") + "}}",
       "tls.key: " + pem("client.key") + " is not the key of the certificate in " + pem("server.pem")},
      {"a ca that is no certificate", connect + "{ca: " + pem("garbage.pem") + "}}",
       "tls.ca: cannot load " + pem("garbage.pem") + ": "},
      {"a listener without cert", listen + "{ca: " + pem("ca.pem") + "}}",
       "tls on a listener needs `cert` and `key`"},
      {"verify_peer true on a listener without a ca", listen + "{" + server_files() + ", verify_peer: true}}",
       "tls.verify_peer: a listener verifies client certificates against its `ca`, and names none"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      const auto dir = make_temp_dir();
      const auto config = write_text(dir, "bad.yaml",
                                     "sessions:\n  - name: s\n    a: {transport: stdio}\n    b: " +
                                         c.endpoint + "\n");
      const auto r = run({"sh", "-c",
                          quote(PICKLEWAY_BINARY) + " check " + quote(config.string()) +
                              " --plugin-path " + quote(PICKLEWAY_PLUGIN_DIR) + " 2>&1"});
      CHECK(r.exit_status == 2);
      // Located at the value of the option the message names, else at the
      // tls map; the endpoint's map starts after "    b: " (column 8).
      std::size_t at = c.endpoint.find("tls: ") + 5;
      if (c.says.starts_with("tls.")) {
        const std::string key = c.says.substr(4, c.says.find_first_of(" :") - 4);
        at = c.endpoint.find(key + ": ", at) + key.size() + 2;
      }
      const auto column = 8 + at;
      CHECK_MESSAGE(contains(r.out, config.string() + ":4:" + std::to_string(column) +
                                        ": session s, endpoint b (tcp): " + c.says),
                    r.out);
      std::filesystem::remove_all(dir);
    }
  }
  SUBCASE("good files are described") {
    const auto dir = make_temp_dir();
    const auto config = write_text(
        dir, "good.yaml",
        "sessions:\n  - name: s\n    a: {transport: stdio}\n    b: " + connect + "{" + ca_file() +
            ", " + client_files() + "}}\n");
    const auto r = run({"sh", "-c",
                        quote(PICKLEWAY_BINARY) + " check " + quote(config.string()) +
                            " --plugin-path " + quote(PICKLEWAY_PLUGIN_DIR) + " 2>&1"});
    CHECK(r.exit_status == 0);
    CHECK_MESSAGE(contains(r.out, "tcp connect 127.0.0.1:7000, tls, verifying the server as "
                                  "127.0.0.1 against " + pem("ca.pem")),
                  r.out);
    std::filesystem::remove_all(dir);
  }
}

}  // namespace pickleway::test
