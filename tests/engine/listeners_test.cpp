// Listening sessions: one instance per accepted connection, each with a
// spawned worker of its own, many at once.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/netns.hpp"
#include "support/process.hpp"

using namespace pickleway::test;

namespace {

std::string text(const std::filesystem::path& path) {
  const auto bytes = read_file(path);
  return {bytes.begin(), bytes.end()};
}

// Runs `clients` connections against a listening session and checks that
// every one was served by a worker of its own.
void serve_clients(const std::string& listen, const std::string& via_prefix, int clients,
                   int max_instances) {
  const auto dir = make_temp_dir();
  const auto report = dir / "clients.json";
  std::string where = listen;
  if (where.find("DIR") != std::string::npos) where.replace(where.find("DIR"), 3, dir.string());
  const auto config = write_text(dir, "listen.yaml", R"(
sessions:
  - name: service
    a: {transport: )" + where + R"(}
    b: {transport: spawn, command: )" + peer_command({"echo"}) + R"(}
    max_instances: )" + std::to_string(max_instances) + "\n");
  gateway g(config);
  const auto line = g.wait_for_line("session service: listening on ");
  REQUIRE(line);
  const std::string address = line->substr(line->find(" on ") + 4);  // "tcp 127.0.0.1:N"
  const std::string via = via_prefix + address.substr(address.find(' ') + 1);
  CHECK(run_peer({"clients", "--count", std::to_string(clients), "--small", "100", "--via", via,
                  "--report", report.string()}) == 0);
  CHECK(text(report).find("\"intact\": " + std::to_string(clients) + ", \"ok\": true") !=
        std::string::npos);
  CHECK(g.wait_for_line("session service#" + std::to_string(clients) + ": ended"));
  g.signal(SIGTERM);
  CHECK(g.wait() == 0);
  CHECK(g.log().find("session service: " + std::to_string(clients) +
                     " instances, a>b " + std::to_string(100 * clients) + " messages") !=
        std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST_CASE("a tcp listener serves 50 concurrent clients, each with its own worker") {
  serve_clients(R"(tcp, listen: "127.0.0.1:0")", "tcp:", 50, 64);
}

TEST_CASE("a unix listener serves 50 concurrent clients, each with its own worker") {
  serve_clients("unix, listen: DIR/service.sock", "unix:", 50, 64);
}

TEST_CASE("clients beyond max_instances wait in the backlog and are served in turn") {
  serve_clients(R"(tcp, listen: "127.0.0.1:0")", "tcp:", 12, 3);
}

TEST_CASE("at start pickleway raises its open-file limit to the hard limit, and says when that is too low") {
  const auto dir = make_temp_dir();
  const auto config = [&](int max_instances) {
    return write_text(dir, "wide" + std::to_string(max_instances) + ".yaml", R"(
sessions:
  - name: wide
    a: {transport: tcp, listen: "127.0.0.1:0"}
    b: {transport: spawn, command: [cat]}
    max_instances: )" + std::to_string(max_instances) + "\n");
  };
  for (const int max_instances : {10, 10000}) {
    CAPTURE(max_instances);
    // A soft limit of 256 under a hard limit of 4096, as a service manager may set them.
    gateway g(config(max_instances), {}, {"prlimit", "--nofile=256:4096", "--"});
    REQUIRE(g.wait_for_line("session wide: listening on "));
    std::ifstream limits("/proc/" + std::to_string(g.pid()) + "/limits");
    std::string line;
    while (std::getline(limits, line) && !line.starts_with("Max open files")) {
    }
    CHECK(line.find("4096                 4096") != std::string::npos);
    g.signal(SIGTERM);
    REQUIRE(g.wait() == 0);
    const bool warned = g.log().find("the open-file limit is 4096 (the hard limit), less than") != std::string::npos;
    CHECK(warned == (max_instances == 10000));
  }
  std::filesystem::remove_all(dir);
}

namespace {

// The kernel's count of connections a full listen queue turned away, in
// the namespace `net` made.
long listen_overflows(const pickleway::test::two_hosts& net) {
  std::istringstream netstat(run_checked(net.in(pickleway::test::side::b, {"cat", "/proc/net/netstat"})));
  std::string names, values;
  while (std::getline(netstat, names) && std::getline(netstat, values)) {
    if (!names.starts_with("TcpExt:")) continue;
    std::istringstream n(names), v(values);
    for (std::string name, value; n >> name && v >> value;)
      if (name == "ListenOverflows") return std::stol(value);
  }
  return -1;
}

}  // namespace

namespace {

// The time on a CPU, in nanoseconds, of each thread of process `pid`
// named `name` (the first field of its schedstat).
std::vector<long long> cpu_ns_of_threads(pid_t pid, const std::string& name) {
  std::vector<long long> found;
  const auto tasks = std::filesystem::path("/proc") / std::to_string(pid) / "task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::string comm = text(task.path() / "comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (comm == name) found.push_back(std::stoll(text(task.path() / "schedstat")));
  }
  return found;
}

}  // namespace

TEST_CASE("threads: 2 spreads a listener's instances over two loops, each keeping its messages in order") {
  two_hosts net;
  const auto dir = make_temp_dir();
  const std::string burst = std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/burst.py";
  line_process echo(net.in(side::b, {PICKLEWAY_PYTHON, burst, "echo", "127.0.0.1:7100"}));
  REQUIRE(echo.read_line() == "listening");
  const auto config = write_text(dir, "threads.yaml", R"(
threads: 2
sessions:
  - name: spread
    a: {transport: tcp, listen: "127.0.0.1:7200"}
    b: {transport: tcp, connect: "127.0.0.1:7100"}
)");
  gateway g(config, {}, net.in(side::b));
  REQUIRE(g.wait_for_line("session spread: listening on "));
  // Each client checks its 3,000 messages come back whole and in order.
  const auto clients = run_captured(net.in(side::b, {PICKLEWAY_PYTHON, burst, "clients",
                                                     "127.0.0.1:7200", "--count", "40",
                                                     "--messages", "3000", "--timeout", "60"}));
  CHECK_MESSAGE(clients.exit_status == 0, clients.out);
  CHECK(clients.out.find(R"({"served": 40, "failed": 0)") != std::string::npos);
  // Loop 1 carried instances: it ran for milliseconds, where an idle loop
  // runs for some microseconds. The main thread runs loop 0.
  const auto second = cpu_ns_of_threads(g.pid(), "loop-1");
  REQUIRE(second.size() == 1);
  CHECK_MESSAGE(second[0] > 5'000'000, second[0]);
  CHECK(cpu_ns_of_threads(g.pid(), "loop-2").empty());
  g.signal(SIGTERM);
  CHECK(g.wait() == 0);
  CHECK(g.log().find("session spread: 40 instances, a>b 120000 messages") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a burst of thousands of clients at once is served, none left to overflow the backlog") {
  using namespace pickleway::test;
  two_hosts net;  // a namespace of its own: its own loopback, its own kernel counters
  const auto dir = make_temp_dir();
  const std::string burst = std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/burst.py";
  line_process echo(net.in(side::b, {PICKLEWAY_PYTHON, burst, "echo", "127.0.0.1:7100"}));
  REQUIRE(echo.read_line() == "listening");
  const auto config = write_text(dir, "burst.yaml", R"(
sessions:
  - name: burst
    a: {transport: tcp, listen: "127.0.0.1:7200"}
    b: {transport: tcp, connect: "127.0.0.1:7100"}
    max_instances: 5000
)");
  gateway g(config, {}, net.in(side::b));
  REQUIRE(g.wait_for_line("session burst: listening on "));
  const long before = listen_overflows(net);
  const auto clients = run_captured(net.in(side::b, {PICKLEWAY_PYTHON, burst, "clients",
                                                     "127.0.0.1:7200", "--count", "4000",
                                                     "--timeout", "60"}));
  CHECK_MESSAGE(clients.exit_status == 0, clients.out);
  CHECK(clients.out.find(R"({"served": 4000, "failed": 0)") != std::string::npos);
  CHECK(listen_overflows(net) == before);
  g.signal(SIGTERM);
  CHECK(g.wait() == 0);
  std::filesystem::remove_all(dir);
}
