// Listening sessions: one instance per accepted connection, each with a
// spawned worker of its own, many at once.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>

#include "support/corpus.hpp"
#include "support/gateway.hpp"

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
