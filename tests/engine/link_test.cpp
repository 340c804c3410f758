// framing: link between two real gateways: a producer on the near one, a
// consumer on the far one, and the network between them broken for real
// (tests/support/netns.hpp: two namespaces, a veth pair, nftables). Every
// message must arrive exactly once and in order, with neither peer ever
// restarted; what cannot be saved must be said.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <regex>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/netns.hpp"
#include "support/process.hpp"

using namespace pickleway::test;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  const auto bytes = read_file(path);
  return {bytes.begin(), bytes.end()};
}

// The two ends of a link: the far gateway listens and feeds a sink, the
// near one connects and is fed by a producer of `count` numbered messages,
// `big` of them `big_size` bytes long.
struct link_pair {
  link_pair(int messages, std::string options) : count(messages), link_options(std::move(options)) {}
  ~link_pair() {
    std::error_code left;  // a killed gateway's children may still be writing here
    fs::remove_all(dir, left);
  }
  link_pair(const link_pair&) = delete;
  link_pair& operator=(const link_pair&) = delete;

  fs::path dir = make_temp_dir();
  int count;
  int big = 0;
  int big_size = 1 << 20;
  int progress_every = 250;  // the sink's "sink: received N" lines
  int sink_slow_ms = 0;      // the sink's pause after each message
  std::string link_options;  // the `link: {...}` both ends take
  std::string extra_far, extra_near;  // more endpoint options (tls, auth)

  fs::path report() const { return dir / "report.json"; }

  fs::path far_config(const std::string& listen) const {
    return write_text(dir, "far.yaml", R"(
sessions:
  - name: far
    a: {transport: tcp, listen: ")" + listen + R"(", framing: link, link: )" + link_options +
                                         extra_far + R"(}
    b: {transport: spawn, command: )" +
                                         peer_command({"sink", "--expect", std::to_string(count + big),
                                                       "--progress-every", std::to_string(progress_every),
                                                       "--slow-ms", std::to_string(sink_slow_ms),
                                                       "--report", report().string()}) +
                                         "}\n");
  }

  fs::path near_config(const std::string& connect, const std::string& every_ms) const {
    return write_text(dir, "near.yaml", R"(
sessions:
  - name: near
    a: {transport: spawn, command: )" + peer_command({"flood", "--small", std::to_string(count), "--big",
                                                      std::to_string(big), "--big-size",
                                                      std::to_string(big_size), "--every-ms", every_ms}) +
                                           R"(}
    b: {transport: tcp, connect: ")" + connect + R"(", retry: {initial_ms: 50, max_ms: 200}, framing: link, link: )" +
                                           link_options + extra_near + "}\n");
  }

  // The sink's report: every message, once, in order.
  void check_delivered() const {
    const std::string r = read_text(report());
    CHECK_MESSAGE(r.find(R"("received": )" + std::to_string(count + big) + R"(, "ok": true)") !=
                      std::string::npos,
                  r);
  }
};

// "link: N reconnects, M messages resent" of a summary line.
long reconnects(const std::string& log, const std::string& session) {
  static const std::regex summary(R"(link: (\d+) reconnects?, )");
  const auto at = log.find("session " + session + ": 1 instance");
  if (at == std::string::npos) return -1;
  const std::string line = log.substr(at, log.find('\n', at) - at);
  std::smatch m;
  return std::regex_search(line, m, summary) ? std::stol(m[1]) : -1;
}

}  // namespace

TEST_CASE("two gateways joined by a link carry every message once and in order, and end cleanly") {
  link_pair p(5000, "{}");
  gateway far(p.far_config("127.0.0.1:0"));
  const int port = far.listening_port("far");
  gateway near(p.near_config("127.0.0.1:" + std::to_string(port), "0"));
  REQUIRE(near.wait() == 0);
  REQUIRE(far.wait_for_line("session far#1: ended, a>b 5000 messages"));
  far.signal(SIGTERM);
  REQUIRE(far.wait() == 0);
  p.check_delivered();
  CHECK(reconnects(near.log(), "near") == 0);
  CHECK(near.log().find("link: 0 reconnects, 0 messages resent") != std::string::npos);
}

TEST_CASE("a link carries messages larger than one write, among small ones") {
  // 1 MiB messages are longer than the most the link sends at once.
  link_pair p(2000, "{}");
  p.big = 12;
  gateway far(p.far_config("127.0.0.1:0"));
  const int port = far.listening_port("far");
  gateway near(p.near_config("127.0.0.1:" + std::to_string(port), "0"));
  REQUIRE(near.wait() == 0);
  REQUIRE(far.wait_for_line("session far#1: ended, a>b 2012 messages"));
  far.signal(SIGTERM);
  REQUIRE(far.wait() == 0);
  p.check_delivered();
}

TEST_CASE("a link rides out its link set down and up mid-stream") {
  two_hosts net;
  link_pair p(2500, "{keepalive_ms: 200}");
  const std::string far_address = net.address(side::b) + ":7000";
  gateway far(p.far_config(far_address), {}, net.in(side::b));
  REQUIRE(far.wait_for_line("session far: listening on "));
  gateway near(p.near_config(far_address, "1"), {}, net.in(side::a));
  REQUIRE(far.wait_for_line("sink: received 500"));
  net.link_down();
  // The silence is noticed (3 x keepalive_ms), the connect retried.
  REQUIRE(near.wait_for_line("link broken: nothing heard for 600 ms"));
  net.link_up();
  REQUIRE(near.wait(60s) == 0);
  REQUIRE(far.wait_for_line("session far#1: ended"));
  p.check_delivered();
  CHECK(reconnects(near.log(), "near") >= 1);
}

TEST_CASE("a silent partition is noticed by the keepalive, and the link resumes when it heals") {
  two_hosts net;
  link_pair p(2500, "{keepalive_ms: 200}");
  const std::string far_address = net.address(side::b) + ":7000";
  gateway far(p.far_config(far_address), {}, net.in(side::b));
  REQUIRE(far.wait_for_line("session far: listening on "));
  gateway near(p.near_config(far_address, "1"), {}, net.in(side::a));
  REQUIRE(far.wait_for_line("sink: received 500"));
  const auto cut = std::chrono::steady_clock::now();
  net.partition();
  // No RST, no ICMP: only the keepalive can tell, on both sides.
  REQUIRE(near.wait_for_line("link broken: nothing heard for 600 ms"));
  REQUIRE(far.wait_for_line("link broken: nothing heard for 600 ms"));
  CHECK(std::chrono::steady_clock::now() - cut < 5s);
  net.heal();
  REQUIRE(near.wait(60s) == 0);
  REQUIRE(far.wait_for_line("session far#1: ended"));
  p.check_delivered();
  CHECK(reconnects(near.log(), "near") >= 1);
}

TEST_CASE("a link survives TCP resets, again and again") {
  two_hosts net;
  link_pair p(3000, "{keepalive_ms: 200}");
  p.big = 30;  // 600 KB each, so that resets can cut one mid-frame
  p.big_size = 600 * 1000;
  const std::string far_address = net.address(side::b) + ":7000";
  gateway far(p.far_config(far_address), {}, net.in(side::b));
  REQUIRE(far.wait_for_line("session far: listening on "));
  gateway near(p.near_config(far_address, "1"), {}, net.in(side::a));
  for (const char* progress : {"sink: received 250", "sink: received 1000", "sink: received 1750"}) {
    REQUIRE(far.wait_for_line(progress));
    net.reset_connections();
  }
  // And a spell in which every segment, connects included, gets a RST.
  REQUIRE(far.wait_for_line("sink: received 2250"));
  net.reject();
  REQUIRE(near.wait_for_line("link broken"));
  net.heal();
  REQUIRE(near.wait(60s) == 0);
  REQUIRE(far.wait_for_line("session far#1: ended"));
  p.check_delivered();
  CHECK(reconnects(near.log(), "near") >= 4);
}

TEST_CASE("a break inside a message: it comes again whole, and what came of it before is not passed on twice") {
  two_hosts net;
  // 4 MiB messages to a slow sink: the far gateway holds part of the next
  // one when the connection is reset.
  link_pair p(0, "{keepalive_ms: 200}");
  p.big = 12;
  p.big_size = 4 << 20;
  p.progress_every = 1;
  p.sink_slow_ms = 150;
  const std::string far_address = net.address(side::b) + ":7000";
  gateway far(p.far_config(far_address), {}, net.in(side::b));
  REQUIRE(far.wait_for_line("session far: listening on "));
  gateway near(p.near_config(far_address, "0"), {}, net.in(side::a));
  for (const char* progress : {"sink: received 2\n", "sink: received 5\n", "sink: received 8\n"}) {
    REQUIRE(far.wait_for_line(progress));
    net.reset_connections();
    REQUIRE(far.next_line("bytes of it that came before"));
  }
  REQUIRE(near.wait(60s) == 0);
  REQUIRE(far.wait_for_line("session far#1: ended"));
  p.check_delivered();
  CHECK(reconnects(near.log(), "near") >= 3);
}

TEST_CASE("an outage longer than the replay buffer holds slows the producer, in bounded memory") {
  two_hosts net;
  // 200 KB of messages, a replay buffer of 16 KiB: the producer must wait.
  // One a millisecond, so the stream is still going when the partition
  // comes: a flood is all acknowledged within milliseconds of message 250.
  link_pair p(2000, "{keepalive_ms: 200, replay: 16KiB}");
  const std::string far_address = net.address(side::b) + ":7000";
  gateway far(p.far_config(far_address), {}, net.in(side::b));
  REQUIRE(far.wait_for_line("session far: listening on "));
  gateway near(p.near_config(far_address, "1"), {"--stats", "0.2"}, net.in(side::a));
  REQUIRE(far.wait_for_line("sink: received 250"));
  net.partition();
  REQUIRE(near.wait_for_line("link broken"));
  // While cut off, what the near gateway holds for the far one stays
  // within the replay buffer, and its a>b rate falls to nothing.
  static const std::regex stats(R"(session near: a>b (\d+) msg/s .* link: (\d+) messages \((\d+) bytes\) unacknowledged)");
  bool stalled = false;
  for (int lines = 0; lines < 40 && !stalled; ++lines) {
    const auto line = near.next_line("session near: a>b ", 2s);
    REQUIRE(line);
    std::smatch m;
    REQUIRE(std::regex_search(*line, m, stats));
    CHECK(std::stoul(m[3]) <= 16 * 1024 + 200);
    stalled = std::stoul(m[1]) == 0 && std::stoul(m[2]) > 0;
  }
  CHECK(stalled);
  net.heal();
  REQUIRE(near.wait(60s) == 0);
  REQUIRE(far.wait_for_line("session far#1: ended"));
  p.check_delivered();
}

TEST_CASE("TLS and auth run again on every reconnect of a link") {
  two_hosts net;
  const auto certs = make_temp_dir();
  const std::string ip = net.address(side::b);
  REQUIRE(run({"sh", "-c", R"(set -e; cd "$1"; exec 2>/dev/null
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
openssl req -x509 $ec -keyout ca.key -out ca.pem -subj /CN=ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
openssl req -x509 $ec -keyout server.key -out server.pem -subj /CN=far -CA ca.pem -CAkey ca.key -addext "subjectAltName=IP:$2" -addext basicConstraints=CA:FALSE
printf 'a shared secret' > key
)", "sh", certs.string(), ip}).exit_status == 0);
  const std::string c = certs.string();
  link_pair p(2000, "{keepalive_ms: 200}");
  p.extra_far = ", tls: {cert: " + c + "/server.pem, key: " + c + "/server.key}, auth: {key_file: " + c + "/key}";
  p.extra_near = ", tls: {ca: " + c + "/ca.pem}, auth: {key_file: " + c + "/key}";
  const std::string far_address = ip + ":7000";
  gateway far(p.far_config(far_address), {}, net.in(side::b));
  REQUIRE(far.wait_for_line("session far: listening on "));
  gateway near(p.near_config(far_address, "1"), {}, net.in(side::a));
  REQUIRE(far.wait_for_line("sink: received 500"));
  net.reset_connections();
  REQUIRE(far.wait_for_line("sink: received 1000"));
  net.partition();
  REQUIRE(near.wait_for_line("link broken: nothing heard"));
  net.heal();
  REQUIRE(near.wait(60s) == 0);
  REQUIRE(far.wait_for_line("session far#1: ended"));
  p.check_delivered();
  CHECK(reconnects(near.log(), "near") >= 2);
  fs::remove_all(certs);
}

TEST_CASE("when the far gateway is killed, the link is lost: at once if it restarts, else after resume_ms") {
  SUBCASE("it restarts: it does not know the link") {
    // resume_ms long enough for a gateway to start on a busy machine.
    link_pair p(100000, "{keepalive_ms: 200, resume_ms: 20000}");
    auto far = std::make_unique<gateway>(p.far_config("127.0.0.1:0"));
    const int port = far->listening_port("far");
    gateway near(p.near_config("127.0.0.1:" + std::to_string(port), "1"));
    REQUIRE(far->wait_for_line("sink: received 250"));
    far->signal(SIGKILL);
    far->wait();
    // A new far gateway on the same port, which never heard of the link.
    const auto restarted = write_text(p.dir, "restarted.yaml", R"(
sessions:
  - name: far
    a: {transport: tcp, listen: "127.0.0.1:)" + std::to_string(port) + R"(", framing: link}
    b: {transport: spawn, command: [cat]}
)");
    far = std::make_unique<gateway>(restarted);
    REQUIRE(near.wait(30s) == 1);
    CHECK_MESSAGE(near.log().find("link lost: the far gateway does not know this link") != std::string::npos, near.log());
    CHECK(far->wait_for_line("refused a connection that resumes a link this gateway does not know"));
  }
  SUBCASE("it does not: the count of what was not acknowledged") {
    link_pair p(100000, "{keepalive_ms: 200, resume_ms: 1500}");
    gateway far(p.far_config("127.0.0.1:0"));
    const int port = far.listening_port("far");
    gateway near(p.near_config("127.0.0.1:" + std::to_string(port), "1"));
    REQUIRE(far.wait_for_line("sink: received 250"));
    far.signal(SIGKILL);
    REQUIRE(near.wait(30s) == 1);
    static const std::regex lost(R"(link lost after resume_ms: (\d+) messages \((\d+) bytes\) not acknowledged)");
    std::smatch m;
    const std::string log = near.log();
    REQUIRE(std::regex_search(log, m, lost));
    CHECK(std::stoul(m[1]) > 0);
    CHECK(std::stoul(m[2]) > 0);
  }
}
