// The network fault fixture does what it says to real TCP traffic: an echo
// server in one namespace, a client in the other (tests/python/tcp_probe.py),
// each fault seen from the client's side. Runs as root, as the suite does.
#include <doctest/doctest.h>

#include <csignal>
#include <memory>
#include <sstream>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/netns.hpp"
#include "support/process.hpp"

using namespace pickleway::test;

namespace {

const std::string probe = std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/tcp_probe.py";

// tcp_probe.py's server in side b and its client in side a, told the
// server's port; both start at once.
struct traffic {
  explicit traffic(const two_hosts& net)
      : server(net.in(side::b, {PICKLEWAY_PYTHON, probe, "serve", net.address(side::b)})),
        client(net.in(side::a, {PICKLEWAY_PYTHON, probe, "client", net.address(side::b)})) {
    const auto line = server.read_line();
    REQUIRE(line);
    REQUIRE(line->starts_with("listening "));
    REQUIRE(client.write_line(line->substr(10)));
  }

  // The client's answer to one command (see tcp_probe.py).
  std::string ask(const std::string& command) {
    return client.ask(command).value_or("no answer from the client");
  }

  line_process server;
  line_process client;
};

// Whether `ip netns list` names `ns`.
bool listed(const std::string& ns) {
  std::istringstream lines(run_checked({"ip", "netns", "list"}));
  for (std::string line; std::getline(lines, line);)
    if (line.substr(0, line.find(' ')) == ns) return true;
  return false;
}

}  // namespace

TEST_CASE("two_hosts joins two namespaces of its own, and removes them and all that runs in them") {
  auto net = std::make_unique<two_hosts>();
  const std::string a = net->name(side::a), b = net->name(side::b);
  CHECK(a != b);
  CHECK(net->address(side::a) != net->address(side::b));
  CHECK(listed(a));
  CHECK(listed(b));
  {
    traffic t(*net);
    CHECK(t.ask("open 2") == "ok");
    CHECK(t.ask("echo 2") == "ok");
    CHECK(t.ask("try 2") == "ok");
  }
  // A process left running in a namespace dies with the fixture.
  line_process left(net->in(side::b, {PICKLEWAY_PYTHON, "-c", "import sys; print('up', flush=True); sys.stdin.read()"}));
  REQUIRE(left.read_line() == "up");
  net.reset();
  CHECK(left.wait(5s) == 128 + SIGKILL);
  CHECK_FALSE(listed(a));
  CHECK_FALSE(listed(b));
}

TEST_CASE("link_down cuts the hosts apart and link_up lets the same connection carry on") {
  two_hosts net;
  traffic t(net);
  REQUIRE(t.ask("open 2") == "ok");
  REQUIRE(t.ask("echo 2") == "ok");
  net.link_down();
  CHECK(t.ask("try 0.3") == "ENETUNREACH");  // no route while the link is down
  CHECK(t.ask("echo 0.3") == "timeout");
  net.link_up();
  CHECK(t.ask("echo 5") == "ok");  // what waited in the socket came through
  CHECK(t.ask("try 2") == "ok");
}

TEST_CASE("partition drops everything silently, and a connection it held survives heal") {
  two_hosts net;
  traffic t(net);
  REQUIRE(t.ask("open 2") == "ok");
  REQUIRE(t.ask("echo 2") == "ok");
  net.partition();
  // Neither a RST (ECONNRESET, ECONNREFUSED) nor an ICMP error
  // (EHOSTUNREACH): nothing comes back at all.
  CHECK(t.ask("echo 0.3") == "timeout");
  CHECK(t.ask("try 0.3") == "timeout");
  net.heal();
  CHECK(t.ask("echo 5") == "ok");  // the connection never heard of the partition
  CHECK(t.ask("try 2") == "ok");
}

TEST_CASE("reject refuses new connections and resets an established one when it sends") {
  two_hosts net;
  traffic t(net);
  REQUIRE(t.ask("open 2") == "ok");
  REQUIRE(t.ask("echo 2") == "ok");
  net.reject();
  CHECK(t.ask("try 2") == "ECONNREFUSED");
  CHECK(t.ask("echo 2") == "ECONNRESET");
  CHECK(t.ask("open 2") == "ECONNREFUSED");  // for as long as the rule holds
  net.heal();
  CHECK(t.ask("open 2") == "ok");
  CHECK(t.ask("echo 2") == "ok");
}

TEST_CASE("reset_connections aborts the connections there are, once, and lets new ones through") {
  two_hosts net;
  traffic t(net);
  REQUIRE(t.ask("open 2") == "ok");
  REQUIRE(t.ask("echo 2") == "ok");
  net.reset_connections();
  CHECK(t.ask("echo 2") == "ECONNABORTED");       // side a's end, aborted in place
  CHECK(t.server.read_line(2s) == "ECONNRESET");  // side b's, by a's RST
  CHECK(t.ask("open 2") == "ok");
  CHECK(t.ask("echo 2") == "ok");
}

TEST_CASE("heal undoes every fault at once, the links' and the rules'") {
  two_hosts net;
  traffic t(net);
  net.reject();
  net.link_down();
  REQUIRE(t.ask("try 0.3") == "ENETUNREACH");
  net.heal();
  CHECK(t.ask("open 2") == "ok");
  CHECK(t.ask("echo 2") == "ok");
}

TEST_CASE("two fixtures at once are apart: a fault in one leaves the other alone") {
  two_hosts one, two;
  CHECK(one.name(side::a) != two.name(side::a));
  CHECK(one.address(side::a) != two.address(side::a));
  traffic t1(one), t2(two);
  REQUIRE(t1.ask("open 2") == "ok");
  REQUIRE(t2.ask("open 2") == "ok");
  one.partition();
  CHECK(t1.ask("echo 0.3") == "timeout");
  CHECK(t2.ask("echo 2") == "ok");
  CHECK(t2.ask("try 2") == "ok");
}

TEST_CASE("gateways started in the two namespaces bridge Python processes across the veth") {
  two_hosts net;
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto far_config = write_text(dir, "far.yaml", R"(
sessions:
  - name: far
    a: {transport: tcp, listen: ")" + net.address(side::b) + R"(:0", framing: length}
    b: {transport: spawn, command: )" + peer_command({"echo"}) + R"(}
)");
  gateway far(far_config, {}, net.in(side::b));
  const int port = far.listening_port("far");
  const auto near_config = write_text(dir, "near.yaml", R"(
sessions:
  - name: near
    a: {transport: spawn, command: )" + peer_command({"produce", "--small", "200", "--report", report.string()}) + R"(}
    b: {transport: tcp, connect: ")" + net.address(side::b) + ":" + std::to_string(port) + R"(", framing: length}
)");
  gateway near(near_config, {}, net.in(side::a));
  CHECK(near.wait(20s) == 0);
  INFO("near: " << near.log());
  const auto bytes = read_file(report);
  CHECK(std::string(bytes.begin(), bytes.end()).find(R"("sent": 200, "received": 200, "ok": true)") !=
        std::string::npos);
  CHECK(far.wait_for_line("session far#1: ended, a>b 200 messages, b>a 200 messages"));
  far.signal(SIGTERM);  // reaches pickleway itself: ip netns exec ran it in its own process
  CHECK(far.wait() == 0);
  std::filesystem::remove_all(dir);
}
