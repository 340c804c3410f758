// `auth` on length-framed endpoints, against real multiprocessing.connection
// Clients and Listeners: the HMAC-MD5 form of the machine's python3 (3.11)
// and the {sha256} form of a 3.12+ interpreter when one is installed.
#include <doctest/doctest.h>

#include <csignal>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/process.hpp"

using namespace pickleway::test;

namespace {

const std::string auth_peer = PICKLEWAY_SOURCE_DIR "/tests/python/auth_peer.py";

// A CPython 3.12 or later from pyenv, or "" when none is installed.
std::string modern_python() {
  const auto r = run({"sh", "-c",
                      "root=$(pyenv root 2>/dev/null) || exit 0; "
                      "for p in \"$root\"/versions/3.1[2-9]*/bin/python3; do "
                      "[ -x \"$p\" ] && { echo \"$p\"; exit 0; }; done"});
  std::string path = r.out;
  while (!path.empty() && path.back() == '\n') path.pop_back();
  return path;
}

// An interpreter to play the peer, and whether it speaks the {sha256} form
// (3.12+) or the legacy HMAC-MD5 one.
struct interpreter {
  std::string path;
  bool modern = false;
};

bool speaks_sha256(const std::string& path) {
  return run({path, "-c", "import sys; print(sys.version_info >= (3, 12))"}).out == "True\n";
}

// The machine's python3 (HMAC-MD5 when it is 3.11), and a 3.12+ from pyenv
// when present (skipped, saying so, when not).
std::vector<interpreter> pythons() {
  std::vector<interpreter> out{{PICKLEWAY_PYTHON, speaks_sha256(PICKLEWAY_PYTHON)}};
  if (const auto modern = modern_python(); !modern.empty())
    out.push_back({modern, true});
  else
    MESSAGE("no CPython 3.12+ under pyenv: the {sha256} form is not tested against one");
  return out;
}

std::string text(const std::filesystem::path& path) {
  const auto bytes = read_file(path);
  return {bytes.begin(), bytes.end()};
}

// A listening session with auth; endpoint b is spawned afresh per client
// through a shell that first leaves a marker file, so a test can tell
// whether it was ever started.
struct listening_gateway {
  std::filesystem::path dir = make_temp_dir();
  std::filesystem::path marker = dir / "started";
  std::filesystem::path key_file = write_text(dir, "key", "the right key\n");
  std::filesystem::path wrong_key_file = write_text(dir, "wrong", "the wrong key\n");
  std::unique_ptr<gateway> g;
  int port = 0;

  explicit listening_gateway(const std::string& auth_extra = "") {
    const auto config = write_text(dir, "auth.yaml", R"(
sessions:
  - name: guarded
    a: {transport: tcp, listen: "127.0.0.1:0", framing: length, auth: {key_file: )" +
                                                         key_file.string() + auth_extra + R"(}}
    b: {transport: spawn, command: [sh, -c, 'touch "$0" && exec "$1" "$2" echo', )" +
                                                         marker.string() + ", " + PICKLEWAY_PYTHON +
                                                         ", " + PICKLEWAY_SOURCE_DIR +
                                                         "/tests/python/peer.py]}\n");
    g = std::make_unique<gateway>(config);
    port = g->listening_port("guarded");
  }
  ~listening_gateway() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST_CASE("auth: a multiprocessing Client with the key talks through a listening endpoint") {
  for (const auto& [python, modern] : pythons()) {
    CAPTURE(python);
    listening_gateway lg;
    const auto client = run({python, auth_peer, "client", std::to_string(lg.port),
                              lg.key_file.string(), "12"});
    CHECK(client.exit_status == 0);
    CHECK(client.out == "ok 12\n");
    CHECK(lg.g->wait_for_line("session guarded#1: ended, a>b 12 messages, b>a 12 messages"));
    lg.g->signal(SIGTERM);
    CHECK(lg.g->wait() == 0);
  }
}

TEST_CASE("auth: a Client with the wrong key is refused before anything is spawned") {
  for (const auto& [python, modern] : pythons()) {
    CAPTURE(python);
    listening_gateway lg;
    const auto client = run({python, auth_peer, "client", std::to_string(lg.port),
                             lg.wrong_key_file.string(), "3"});
    // Python's side: the AuthenticationError of a rejected digest.
    CHECK(client.exit_status == 3);
    CHECK(client.out == "AuthenticationError: digest sent was rejected\n");
    const auto line = lg.g->wait_for_line("authentication failed");
    REQUIRE(line);
    CHECK(line->find("session guarded#1, endpoint a (tcp): offset 0: authentication failed: "
                     "the peer's digest does not match the key (peer 127.0.0.1:") != std::string::npos);
    CHECK(lg.g->wait_for_line("session guarded#1: ended with an error, a>b 0 messages, b>a 0 messages"));
    CHECK_FALSE(std::filesystem::exists(lg.marker));
    // The listener goes on: a client with the key is served next.
    const auto good = run({python, auth_peer, "client", std::to_string(lg.port),
                           lg.key_file.string(), "2"});
    CHECK(good.out == "ok 2\n");
    CHECK(lg.g->wait_for_line("session guarded#2: ended, a>b 2 messages"));
    CHECK(std::filesystem::exists(lg.marker));
    lg.g->signal(SIGTERM);
    CHECK(lg.g->wait() == 1);  // an instance failed
  }
}

TEST_CASE("auth: a client that sends nothing is dropped after timeout_ms, nothing spawned") {
  listening_gateway lg(", timeout_ms: 300");
  const auto client = run({PICKLEWAY_PYTHON, auth_peer, "raw", std::to_string(lg.port)});
  CHECK(client.exit_status == 0);
  // It got the challenge, then EOF; no #WELCOME# and nothing else.
  REQUIRE(client.out.starts_with("after challenge b'' in "));
  const double seconds = std::stod(client.out.substr(std::string("after challenge b'' in ").size()));
  CHECK(seconds >= 0.25);
  CHECK(seconds < 5);
  const auto line = lg.g->wait_for_line("authentication failed");
  REQUIRE(line);
  CHECK(line->find("session guarded#1, endpoint a (tcp): offset 0: authentication failed: "
                   "no complete handshake within 300 ms") != std::string::npos);
  CHECK(lg.g->wait_for_line("session guarded#1: ended with an error"));
  CHECK_FALSE(std::filesystem::exists(lg.marker));
  lg.g->signal(SIGTERM);
  CHECK(lg.g->wait() == 1);
}

TEST_CASE("auth: a handshake message over 256 bytes is refused") {
  listening_gateway lg;
  const auto client = run({PICKLEWAY_PYTHON, auth_peer, "raw", std::to_string(lg.port), "300"});
  CHECK(client.exit_status == 0);
  // The oversized message is not read: the connection is closed at its length.
  CHECK(client.out.starts_with("after challenge b'' in "));
  const auto line = lg.g->wait_for_line("authentication failed");
  REQUIRE(line);
  CHECK(line->find("session guarded#1, endpoint a (tcp): offset 0: authentication failed: "
                   "handshake message of 300 bytes exceeds 256") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(lg.marker));
  lg.g->signal(SIGTERM);
  CHECK(lg.g->wait() == 1);
}

TEST_CASE("auth: a connecting endpoint authenticates to a multiprocessing Listener") {
  for (const auto& [python, modern] : pythons()) {
    for (const bool right_key : {true, false}) {
      CAPTURE(python);
      CAPTURE(right_key);
      const auto dir = make_temp_dir();
      const auto key = write_text(dir, "key", "listener key");
      const auto ours = write_text(dir, "ours", right_key ? "listener key" : "another key");
      const auto got = dir / "got";
      // Endpoint a: with the right key an echo; with the wrong one a child
      // that records the first bytes it receives, if any.
      const std::string a =
          right_key ? std::string("[") + PICKLEWAY_PYTHON + ", " + PICKLEWAY_SOURCE_DIR +
                          "/tests/python/peer.py, echo]"
                    : std::string("[") + PICKLEWAY_PYTHON +
                          R"py(, -c, "import sys; d = sys.stdin.buffer.read(1); open(sys.argv[1], 'w').write(repr(d))", )py" +
                          got.string() + "]";
      const auto config = write_text(dir, "connect.yaml", R"(
sessions:
  - name: onward
    a: {transport: spawn, command: )" + a + R"(}
    b: {transport: tcp, connect: "127.0.0.1:{PORT}", framing: length, auth: {key_file: )" + ours.string() + R"(}}
)");
      const auto r = run({python, auth_peer, "listen", key.string(), config.string(),
                          PICKLEWAY_BINARY, PICKLEWAY_PLUGIN_DIR, "7"});
      CHECK(r.exit_status == 0);
      if (right_key) {
        CHECK(r.out.starts_with("ok 7\nexit 0\n"));
        CHECK(r.out.find("session onward: 1 instance, a>b 7 messages") != std::string::npos);
      } else {
        CHECK(r.out.starts_with("AuthenticationError: digest received was wrong\nexit 1\n"));
        // At the offset of the #FAILURE#, past the Listener's challenge.
        CHECK(r.out.find("session onward, endpoint b (tcp): offset " +
                         std::string(modern ? "63" : "35") +
                         ": authentication failed: the peer sent #FAILURE#: it does not have our "
                         "key (peer 127.0.0.1:") != std::string::npos);
        // The child got nothing: it was ended before any byte, or read EOF.
        if (std::filesystem::exists(got)) CHECK(text(got) == "b''");
      }
      std::filesystem::remove_all(dir);
    }
  }
}

TEST_CASE("auth: an endpoint that neither listens nor connects answers first (a spawned child)") {
  // Client -> pickleway (tcp listen, auth) -> child (spawn, auth): pickleway
  // answers the child's challenge, as a Client would, then messages flow.
  const auto dir = make_temp_dir();
  const auto key = write_text(dir, "key", "shared by all three");
  const auto config = write_text(dir, "chain.yaml", R"(
sessions:
  - name: chain
    a: {transport: tcp, listen: "127.0.0.1:0", framing: length, auth: {key_file: )" + key.string() + R"(}}
    b: {transport: spawn, command: [)" + std::string(PICKLEWAY_PYTHON) + ", " + auth_peer +
                                                  ", serve, " + key.string() +
                                                  R"(], framing: length, auth: {key_file: )" + key.string() + R"(}}
)");
  gateway g(config);
  const int port = g.listening_port("chain");
  const auto client = run({PICKLEWAY_PYTHON, auth_peer, "client", std::to_string(port), key.string(), "5"});
  CHECK(client.out == "ok 5\n");
  CHECK(g.wait_for_line("session chain#1: ended, a>b 5 messages, b>a 5 messages"));
  g.signal(SIGTERM);
  CHECK(g.wait() == 0);
  std::filesystem::remove_all(dir);
}
