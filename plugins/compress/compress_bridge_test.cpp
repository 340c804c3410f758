// Two real pickleway processes bridged over TCP with compress on both ends,
// as on two hosts:
//
//   peer.py produce <-> [near: a spawn, b tcp connect]
//                       <-> relay <->
//                       [far: b tcp listen, a spawn] <-> peer.py echo
//
// The relay, in this test, counts the bytes on the wire each way. The
// producer checks every echo against what it sent.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "pickleway/fd_stream.hpp"
#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/process.hpp"

namespace pickleway::test {
namespace {

using clock = std::chrono::steady_clock;

// A TCP relay on 127.0.0.1: takes one connection, connects it onward, and
// moves bytes both ways (non-blocking, so neither direction can stall the
// other), passing each half-close on. Counts what it moved.
class relay {
 public:
  explicit relay(int target_port) : target_port_(target_port) {
    listener_ = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener_);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
    REQUIRE(::listen(listener_.get(), 1) == 0);
    socklen_t length = sizeof at;
    REQUIRE(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&at), &length) == 0);
    port_ = ntohs(at.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~relay() {
    stop_ = true;
    thread_.join();
  }
  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  int port() const { return port_; }
  // Waits until both directions have ended; false at the deadline.
  bool wait(std::chrono::milliseconds deadline = 30s) {
    std::unique_lock lock(mutex_);
    return ended_.wait_for(lock, deadline, [this] { return done_; });
  }
  std::uint64_t forward() const { return moved_[0]; }   // connecting side -> target
  std::uint64_t backward() const { return moved_[1]; }  // target -> connecting side

 private:
  struct way {
    int from;
    int to;
    std::vector<std::uint8_t> buffer;
    bool eof = false;
    bool closed = false;  // the half-close was passed on
  };

  void run() {
    unique_fd client, target;
    const auto end = clock::now() + 60s;
    while (!stop_ && !client) {
      if (clock::now() > end) return finish();
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) > 0)
        client = unique_fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    }
    if (!client) return finish();
    target = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    at.sin_port = htons(static_cast<std::uint16_t>(target_port_));
    if (::connect(target.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) return finish();
    for (const int fd : {client.get(), target.get()}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
    std::array<way, 2> ways{way{client.get(), target.get(), {}},
                            way{target.get(), client.get(), {}}};
    std::array<std::uint8_t, 65536> chunk{};
    while (!stop_ && !(ways[0].closed && ways[1].closed)) {
      std::vector<pollfd> waits;
      for (const auto& w : ways) {
        if (!w.eof && w.buffer.size() < (1u << 20)) waits.push_back({w.from, POLLIN, 0});
        if (!w.buffer.empty()) waits.push_back({w.to, POLLOUT, 0});
      }
      if (::poll(waits.data(), waits.size(), 50) < 0 && errno != EINTR) break;
      bool failed = false;
      for (std::size_t i = 0; i < ways.size(); ++i) {
        auto& w = ways[i];
        if (!w.eof && w.buffer.size() < (1u << 20)) {
          const ssize_t n = ::read(w.from, chunk.data(), chunk.size());
          if (n > 0) {
            w.buffer.insert(w.buffer.end(), chunk.begin(), chunk.begin() + n);
            moved_[i] += static_cast<std::uint64_t>(n);
          } else if (n == 0) {
            w.eof = true;
          } else if (errno != EAGAIN && errno != EINTR) {
            failed = true;  // a reset: the relay ends, as a wire would
          }
        }
        if (!w.buffer.empty()) {
          const ssize_t n = ::send(w.to, w.buffer.data(), w.buffer.size(), MSG_NOSIGNAL);
          if (n > 0) {
            w.buffer.erase(w.buffer.begin(), w.buffer.begin() + n);
          } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            failed = true;
          }
        }
        if (w.eof && w.buffer.empty() && !w.closed) {
          ::shutdown(w.to, SHUT_WR);
          w.closed = true;
        }
      }
      if (failed) break;
    }
    finish();
  }

  void finish() {
    const std::lock_guard lock(mutex_);
    done_ = true;
    ended_.notify_all();
  }

  int target_port_;
  int port_ = 0;
  unique_fd listener_;
  std::thread thread_;
  std::atomic<bool> stop_{false};  // the test is done with it
  std::mutex mutex_;
  std::condition_variable ended_;
  bool done_ = false;
  std::array<std::atomic<std::uint64_t>, 2> moved_{};
};

std::string read_report(const std::filesystem::path& path) {
  const auto bytes = read_file(path);
  return {bytes.begin(), bytes.end()};
}

// `codec` alone, or with the rest of compress's options: "zstd, min_size: 1GiB".
std::string filters(const std::string& codec) {
  return codec.empty() ? "" : "    filters: [{compress: {codec: " + codec + "}}]\n";
}

// The far gateway: `command` (a YAML flow list) on a, the wire on b,
// listening. A failed instance gets half a second to wind down.
std::string far_config(const std::string& codec, const std::string& command,
                       const std::string& wire_framing = "length") {
  std::string yaml = "grace: 500ms\nsessions:\n  - name: far\n";
  yaml += "    a: {transport: spawn, command: " + command + "}\n";
  yaml += "    b: {transport: tcp, listen: \"127.0.0.1:0\", framing: " + wire_framing + "}\n";
  return yaml + filters(codec);
}

// The near gateway: `command` on a, the wire on b, connecting to `port`.
std::string near_config(const std::string& codec, int port, const std::string& command) {
  std::string yaml = "grace: 500ms\nsessions:\n  - name: near\n";
  yaml += "    a: {transport: spawn, command: " + command + "}\n";
  yaml += "    b: {transport: tcp, connect: \"127.0.0.1:" + std::to_string(port) +
          "\", framing: length, retry: {attempts: 3}}\n";
  return yaml + filters(codec);
}

// The command line of one of tools/python's demo programs.
std::string demo_command(const std::string& program) {
  return std::string("[") + PICKLEWAY_PYTHON + ", " + PICKLEWAY_SOURCE_DIR + "/tools/python/" +
         program + "]";
}

struct wire_count {
  std::uint64_t forward = 0;
  std::uint64_t backward = 0;
};

// One bridged run through the relay, every message checked end to end.
wire_count bridged_run(const std::string& near_codec, const std::string& far_codec) {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  gateway far(write_text(dir, "far.yaml", far_config(far_codec, peer_command({"echo"}))));
  relay wire(far.listening_port("far"));
  gateway near(
      write_text(dir, "near.yaml",
                 near_config(near_codec, wire.port(),
                             peer_command({"produce", "--small", "3000", "--big", "4", "--big-size",
                                           "300000", "--report", report.string()}))));
  INFO("near: " << near.log());
  INFO("far: " << far.log());
  CHECK(near.wait() == 0);
  CHECK(read_report(report).find(R"("sent": 3004, "received": 3004, "ok": true)") !=
        std::string::npos);
  CHECK(wire.wait());
  CHECK(far.wait_for_line("session far#1: ended"));
  far.signal(SIGTERM);
  CHECK(far.wait() == 0);
  std::filesystem::remove_all(dir);
  return {wire.forward(), wire.backward()};
}

}  // namespace

TEST_CASE("two gateways bridged with compress carry every message intact in fewer bytes") {
  const wire_count plain = bridged_run("", "");
  REQUIRE(plain.forward > 0);
  for (const char* codec : {"zstd", "lz4", "zlib"}) {
    SUBCASE(codec) {
      const wire_count packed = bridged_run(codec, codec);
      MESSAGE(std::string(codec) << ": on the wire a>b " << packed.forward << " bytes ("
                                 << plain.forward << " without compress), b>a " << packed.backward
                                 << " (" << plain.backward << ")");
      CHECK(packed.forward * 3 < plain.forward);
      CHECK(packed.backward * 3 < plain.backward);
    }
  }
}

TEST_CASE("a lockstep producer gets each reply at once through two compressing gateways") {
  // The demo's producer sends one object and waits for its reply before the
  // next: any message held back by a compressor would stall it.
  for (const char* codec : {"zstd", "lz4", "zlib"}) {
    SUBCASE(codec) {
      const auto dir = make_temp_dir();
      gateway far(write_text(dir, "far.yaml", far_config(codec, demo_command("demo_consumer.py"))));
      gateway near(write_text(
          dir, "near.yaml",
          near_config(codec, far.listening_port("far"), demo_command("demo_producer.py"))));
      INFO("near: " << near.log());
      CHECK(near.wait(20s) == 0);
      CHECK(near.log().find("producer receives {'ack': 4, 'type': 'dict', 'size': 2}") !=
            std::string::npos);
      CHECK(far.wait_for_line("session far#1: ended, a>b 4 messages, b>a 4 messages"));
      far.signal(SIGTERM);
      CHECK(far.wait() == 0);
      std::filesystem::remove_all(dir);
    }
  }
}

TEST_CASE("bridged gateways refuse a codec mismatch and a missing compress filter") {
  struct mismatch {
    const char* name;
    std::string near_codec, far_codec;
    std::string far_says;  // the far gateway's error
  };
  const mismatch cases[] = {
      {"zstd near, lz4 far", "zstd", "lz4",
       "compress: message 1 was compressed with zstd, but this compress filter uses lz4: both "
       "gateways must name the same codec"},
      {"no compress near", "", "zlib",
       "compress: message 1 from the peer is not compressed: it is a plain pickle (protocol 5)"},
      // Without the filter, the far gateway's core refuses what is no pickle.
      {"no compress far", "zstd", "", "message 1 is not one whole pickle for endpoint a (spawn)"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      const auto dir = make_temp_dir();
      gateway far(write_text(dir, "far.yaml", far_config(c.far_codec, peer_command({"echo"}))));
      gateway near(write_text(dir, "near.yaml",
                              near_config(c.near_codec, far.listening_port("far"),
                                          peer_command({"produce", "--small", "20"}))));
      const auto line = far.wait_for_line(c.far_says);
      CHECK_MESSAGE(line, far.log());
      if (line)
        CHECK(line->find("session far#1, endpoint b (tcp): offset 0: ") != std::string::npos);
      // The near side's producer never sees its echoes: it fails too.
      const auto near_status = near.wait();
      CHECK(near_status.has_value());
      CHECK(near_status != 0);
      far.signal(SIGTERM);
      CHECK(far.wait() == 1);
      std::filesystem::remove_all(dir);
    }
  }
}

TEST_CASE("a gateway without compress that receives compress frames says the session may need it") {
  const std::string hint =
      "looks like a frame of the compress filter: does this session need compress?";
  struct receiver {
    const char* name;
    std::string near_compress;  // the sender's compress options
    std::string far_framing;    // the receiving endpoint's
    std::string far_says;
    std::string opcode;  // what the framer made of the first byte
  };
  const std::string not_a_pickle =
      "message 1 is not one whole pickle for endpoint a (spawn): offset 0: stray bytes where a "
      "message should start";
  const receiver cases[] = {
      // A length-framed receiver hands the frame on; the core refuses it
      // before the pickle endpoint a.
      {"length-framed, compressed frames", "zstd", "length", not_a_pickle, "unknown opcode 0xf1)"},
      {"length-framed, stored frames", "lz4, min_size: 1GiB", "length", not_a_pickle,
       "unknown opcode 0xe2)"},
      // A pickle-framed receiver reads the sender's length and frame as
      // stray bytes.
      {"pickle-framed, compressed frames", "zlib", "pickle",
       "offset 0: stray bytes where a message should start", "unknown opcode 0x00)"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      const auto dir = make_temp_dir();
      gateway far(
          write_text(dir, "far.yaml", far_config("", peer_command({"echo"}), c.far_framing)));
      gateway near(write_text(dir, "near.yaml",
                              near_config(c.near_compress, far.listening_port("far"),
                                          peer_command({"produce", "--small", "20"}))));
      const auto line = far.wait_for_line(c.far_says);
      REQUIRE_MESSAGE(line, far.log());
      CHECK(line->starts_with("pickleway: session far#1, endpoint b (tcp): offset 0: "));
      CHECK_MESSAGE(line->find(c.opcode) != std::string::npos, *line);
      if (c.far_framing == "length")
        CHECK_MESSAGE(line->ends_with("): " + hint), *line);
      else
        CHECK_MESSAGE(line->ends_with("): a 4-byte length (framing: length), then what " + hint),
                      *line);
      CHECK(near.wait().has_value());
      far.signal(SIGTERM);
      CHECK(far.wait() == 1);
      std::filesystem::remove_all(dir);
    }
  }
  SUBCASE("but a gateway that runs compress is not told it might need it") {
    const auto dir = make_temp_dir();
    gateway far(write_text(dir, "far.yaml", far_config("lz4", peer_command({"echo"}))));
    gateway near(write_text(dir, "near.yaml",
                            near_config("zstd", far.listening_port("far"),
                                        peer_command({"produce", "--small", "20"}))));
    const auto line = far.wait_for_line("but this compress filter uses lz4");
    REQUIRE_MESSAGE(line, far.log());
    CHECK(line->find(hint) == std::string::npos);
    CHECK(near.wait().has_value());
    far.signal(SIGTERM);
    CHECK(far.wait() == 1);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("pickleway check refuses compress unless b is length-framed, at the filter") {
  const auto dir = make_temp_dir();
  const auto config = write_text(dir, "bad.yaml", R"(sessions:
  - name: s
    a: {transport: spawn, command: [python3, x.py]}
    b: {transport: tcp, connect: "127.0.0.1:7000"}
    filters:
      - compress: {codec: zstd}
)");
  const auto r = run({"sh", "-c",
                      quote(PICKLEWAY_BINARY) + " check " + quote(config.string()) +
                          " --plugin-path " + quote(PICKLEWAY_PLUGIN_DIR) + " 2>&1"});
  CHECK(r.exit_status == 2);
  CHECK(r.out.find(config.string() + ":6:9: session s, filter compress: endpoint b must have "
                                     "`framing: length`") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("pickleway check accepts the compress examples in configs/") {
  for (const char* name : {"compress.yaml", "host1.yaml", "host2.yaml"}) {
    CAPTURE(name);
    const auto r = run({"sh", "-c",
                        quote(PICKLEWAY_BINARY) + " check " +
                            quote(std::string(PICKLEWAY_SOURCE_DIR) + "/configs/" + name) +
                            " --plugin-path " + quote(PICKLEWAY_PLUGIN_DIR) + " 2>&1"});
    CHECK(r.exit_status == 0);
    CHECK(r.out.find("compress codec=") != std::string::npos);
  }
}

}  // namespace pickleway::test
