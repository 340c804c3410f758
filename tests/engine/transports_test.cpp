// Every transport carries 10,000 small and 20 x 1 MiB messages both ways,
// intact and in order, between real Python processes.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <csignal>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/process.hpp"

using namespace pickleway::test;

namespace {

// The producer's arguments: 10,000 small and 20 big messages, echoed back.
std::vector<std::string> load(const std::filesystem::path& report, const std::string& via) {
  return {"produce", "--small", "10000", "--big", "20", "--via", via, "--report", report.string()};
}

std::string read_report(const std::filesystem::path& path) {
  const auto bytes = read_file(path);
  return {bytes.begin(), bytes.end()};
}

const std::string all_intact = R"("sent": 10020, "received": 10020, "ok": true)";

}  // namespace

TEST_CASE("spawn carries messages both ways between two spawned Python processes") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto config = write_text(dir, "spawn.yaml", R"(
sessions:
  - name: pair
    a: {transport: spawn, command: )" + peer_command(load(report, "stdio")) + R"(}
    b: {transport: spawn, command: )" + peer_command({"echo"}) + R"(}
)");
  gateway g(config);
  CHECK(g.wait() == 0);
  CHECK(read_report(report).find(all_intact) != std::string::npos);
  CHECK(g.log().find("session pair: 1 instance, a>b 10020 messages") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("spawn with channel: fds keeps a child's prints out of the stream") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto config = write_text(dir, "fds.yaml", R"(
sessions:
  - name: fds
    a: {transport: spawn, command: )" + peer_command(load(report, "stdio")) + R"(}
    b: {transport: spawn, channel: fds, command: )" + peer_command({"echo", "--via", "fds", "--stray", "a stray print"}) + R"(}
)");
  gateway g(config);
  CHECK(g.wait() == 0);
  CHECK(read_report(report).find(all_intact) != std::string::npos);
  CHECK(g.log().find("a stray print") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("stdio serves a Python parent that runs pickleway as its child") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto config = write_text(dir, "stdio.yaml", R"(
plugin_path: [)" + std::string(PICKLEWAY_PLUGIN_DIR) + R"(]
sessions:
  - name: child
    a: {transport: stdio}
    b: {transport: spawn, command: )" + peer_command({"echo"}) + R"(}
)");
  setenv("PICKLEWAY_BINARY", PICKLEWAY_BINARY, 1);
  CHECK(run_peer(load(report, "spawn:" + config.string())) == 0);
  CHECK(read_report(report).find(all_intact) != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("fifo carries messages through a pair of named pipes") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto in = dir / "to-gateway", out = dir / "from-gateway";
  REQUIRE(::mkfifo(in.c_str(), 0600) == 0);
  REQUIRE(::mkfifo(out.c_str(), 0600) == 0);
  const auto config = write_text(dir, "fifo.yaml", R"(
sessions:
  - name: pipes
    a: {transport: fifo, read: )" + in.string() + ", write: " + out.string() + R"(}
    b: {transport: spawn, command: )" + peer_command({"echo"}) + R"(}
)");
  gateway g(config);
  CHECK(run_peer(load(report, "fifo:" + in.string() + "," + out.string())) == 0);
  CHECK(g.wait() == 0);
  CHECK(read_report(report).find(all_intact) != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("unix carries messages over a Unix socket to a connecting client") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto socket = dir / "gateway.sock";
  const auto config = write_text(dir, "unix.yaml", R"(
sessions:
  - name: local
    a: {transport: unix, listen: )" + socket.string() + R"(}
    b: {transport: spawn, command: )" + peer_command({"echo"}) + R"(}
)");
  gateway g(config);
  REQUIRE(g.wait_for_line("session local: listening on"));
  CHECK(run_peer(load(report, "unix:" + socket.string())) == 0);
  CHECK(g.wait_for_line("session local#1: ended, a>b 10020 messages, b>a 10020 messages"));
  g.signal(SIGTERM);
  CHECK(g.wait() == 0);
  CHECK(read_report(report).find(all_intact) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(socket));  // the listener removed its file
  std::filesystem::remove_all(dir);
}

TEST_CASE("tcp carries messages to a connecting client, over IPv4") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto config = write_text(dir, "tcp.yaml", R"(
sessions:
  - name: net
    a: {transport: tcp, listen: "127.0.0.1:0"}
    b: {transport: spawn, command: )" + peer_command({"echo"}) + R"(}
)");
  gateway g(config);
  const int port = g.listening_port("net");
  CHECK(run_peer(load(report, "tcp:127.0.0.1:" + std::to_string(port))) == 0);
  CHECK(g.wait_for_line("session net#1: ended, a>b 10020 messages"));
  g.signal(SIGINT);
  CHECK(g.wait() == 0);
  CHECK(read_report(report).find(all_intact) != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("two pickleway processes bridge Python processes over TCP") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto host2 = write_text(dir, "host2.yaml", R"(
sessions:
  - name: host2
    a: {transport: tcp, listen: "[::1]:0", framing: length}
    b: {transport: spawn, command: )" + peer_command({"echo"}) + R"(}
)");
  gateway far(host2);
  const auto port = far.wait_for_line("session host2: listening on tcp ");
  REQUIRE(port);
  const std::string address = port->substr(port->find("listening on tcp ") + 17);
  const auto host1 = write_text(dir, "host1.yaml", R"(
sessions:
  - name: host1
    a: {transport: spawn, command: )" + peer_command(load(report, "stdio")) + R"(}
    b: {transport: tcp, connect: ")" + address + R"(", framing: length}
)");
  gateway near(host1);
  CHECK(near.wait() == 0);
  CHECK(read_report(report).find(all_intact) != std::string::npos);
  CHECK(far.wait_for_line("session host2#1: ended, a>b 10020 messages, b>a 10020 messages"));
  far.signal(SIGTERM);
  CHECK(far.wait() == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("run --stats logs the rate of each session while it runs") {
  const auto dir = make_temp_dir();
  const auto config = write_text(dir, "stats.yaml", R"(
sessions:
  - name: measured
    a: {transport: spawn, command: )" + peer_command({"flood", "--big", "20"}) + R"(}
    b: {transport: spawn, command: )" + peer_command({"sink", "--slow-ms", "40", "--expect", "20"}) + R"(}
)");
  gateway g(config, {"--stats", "0.1"});
  CHECK(g.wait() == 0);
  const auto line = g.wait_for_line("session measured: a>b ");
  REQUIRE(line);
  CHECK(line->find(" msg/s ") != std::string::npos);
  CHECK(line->find(" MB/s, b>a ") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("run --stats on two loops ends when its sessions do, whenever a reading of them is under way") {
  // At ten thousand readings a second one is under way, visiting the loops,
  // as the last instance ends: the run must end then all the same.
  const auto dir = make_temp_dir();
  const auto config = write_text(dir, "stats.yaml", R"(
threads: 2
sessions:
  - name: brief
    instances: 4
    a: {transport: spawn, command: )" + peer_command({"flood", "--small", "50"}) + R"(}
    b: {transport: spawn, command: )" + peer_command({"sink", "--expect", "50"}) + R"(}
)");
  for (int run = 0; run < 8; ++run) {
    CAPTURE(run);
    gateway g(config, {"--stats", "0.0001"});
    const auto status = g.wait(15s);
    REQUIRE_MESSAGE(status, g.log());
    CHECK(*status == 0);
    CHECK(g.log().find("session brief: 4 instances, a>b 200 messages") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("framing: length speaks multiprocessing.connection's wire format") {
  const auto dir = make_temp_dir();
  const auto config = write_text(dir, "mp.yaml", R"(
sessions:
  - name: mp
    a: {transport: tcp, listen: "127.0.0.1:0", framing: length}
    b: {transport: spawn, command: )" + peer_command({"echo"}) + R"(}
)");
  gateway g(config);
  const int port = g.listening_port("mp");
  // A plain multiprocessing Client (no authkey) sends objects and reads the
  // echoes, among them one over 64 KiB and one of 0 bytes of payload.
  const auto client = run({PICKLEWAY_PYTHON, "-c", R"(
import sys
from multiprocessing.connection import Client
conn = Client(("127.0.0.1", int(sys.argv[1])))
objects = [{"n": i, "blob": b"x" * (i * 5000)} for i in range(20)] + [None, "é" * 100000]
for obj in objects:
    conn.send(obj)
    assert conn.recv() == obj
conn.close()
print("ok", len(objects))
)", std::to_string(port)});
  CHECK(client.exit_status == 0);
  CHECK(client.out == "ok 22\n");
  CHECK(g.wait_for_line("session mp#1: ended, a>b 22 messages, b>a 22 messages"));
  g.signal(SIGTERM);
  CHECK(g.wait() == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("bytes from a length-framed endpoint reach a pickle endpoint only as whole pickles") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto config = write_text(dir, "guard.yaml", R"(
sessions:
  - name: guard
    a: {transport: tcp, listen: "127.0.0.1:0", framing: length}
    b: {transport: spawn, command: )" + peer_command({"sink", "--report", report.string()}) + R"(}
)");
  gateway g(config);
  const int port = g.listening_port("guard");
  const auto client = run({PICKLEWAY_PYTHON, "-c", R"(
import pickle, sys
from multiprocessing.connection import Client
conn = Client(("127.0.0.1", int(sys.argv[1])))
conn.send({"seq": 0})
conn.send_bytes(pickle.dumps({"seq": 1}) + b"trailing")
conn.send({"seq": 2})
conn.close()
)", std::to_string(port)});
  CHECK(client.exit_status == 0);
  CHECK(g.wait_for_line("message 2 is not one whole pickle for endpoint b (spawn): 8 bytes "
                        "follow the pickle's STOP opcode"));
  CHECK(g.wait_for_line("session guard#1: ended with an error, a>b 1 messages"));
  g.signal(SIGTERM);
  CHECK(g.wait() == 1);
  CHECK(read_report(report).find(R"("received": 1, "ok": true)") != std::string::npos);
  std::filesystem::remove_all(dir);
}
