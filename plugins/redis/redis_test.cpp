// The redis transport against Debian's own redis-server, started by each
// test on a Unix socket in its temporary directory (--port 0, appendonly),
// with real gateways and Python producers and workers.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/process.hpp"

namespace {

using namespace pickleway::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string peer_script = std::string(PICKLEWAY_SOURCE_DIR) + "/plugins/redis/redis_peer.py";
const std::string status_probe = std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/status_probe.py";

std::string peer(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {PICKLEWAY_PYTHON, peer_script};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_checked(argv);
}

// spawn's `command:` for the peer, as a YAML flow list.
std::string redis_peer_command(const std::vector<std::string>& args) {
  std::string list = "[" + std::string(PICKLEWAY_PYTHON) + ", " + peer_script;
  for (const auto& a : args) list += ", \"" + a + "\"";
  return list + "]";
}

class redis_server {
 public:
  explicit redis_server(fs::path dir) : dir_(std::move(dir)) { start(); }
  ~redis_server() { stop(); }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  std::string socket() const { return (dir_ / "redis.sock").string(); }
  std::string address() const { return "unix:" + socket(); }

  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string dir = dir_.string(), sock = socket(), log = (dir_ / "redis.log").string();
      ::execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock.c_str(), "--dir",
               dir.c_str(), "--appendonly", "yes", "--save", "", "--logfile", log.c_str(),
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    REQUIRE(pid_ > 0);
    peer({"ping", socket()});
  }
  // SIGTERM: Redis writes its append-only file out and exits.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
};

std::vector<long> numbers_in(const fs::path& file) {
  std::vector<long> got;
  std::ifstream in(file);
  for (long n; in >> n;) got.push_back(n);
  return got;
}

std::set<long> distinct(const std::vector<fs::path>& files) {
  std::set<long> all;
  for (const auto& f : files)
    for (long n : numbers_in(f)) all.insert(n);
  return all;
}

template <typename Predicate>
bool eventually(Predicate done, std::chrono::seconds deadline = 60s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// "N messages redelivered" of a gateway's summary line; 0 without.
long redelivered(const std::string& log) {
  const auto at = log.find(" messages redelivered");
  if (at == std::string::npos) return 0;
  const auto start = log.rfind(", ", at);
  return std::stol(log.substr(start + 2, at - start - 2));
}

std::string producer_config(const redis_server& r, long count, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"produce", std::to_string(count)};
  args.insert(args.end(), extra.begin(), extra.end());
  return "sessions:\n  - name: producer\n    a: {transport: spawn, command: " + redis_peer_command(args) +
         "}\n" +
         "    b: {transport: redis, address: \"" + r.address() +
         "\", write: {stream: jobs}, retry: {initial_ms: 50, max_ms: 200}}\n";
}

std::string worker_config(const redis_server& r, const fs::path& out, const std::string& delay_ms = "0",
                          const std::string& claim_ms = "1000") {
  return "sessions:\n  - name: worker\n    a: {transport: redis, address: \"" + r.address() +
         "\", read: {stream: jobs, group: workers}, claim_ms: " + claim_ms +
         ", retry: {initial_ms: 50, max_ms: 200}}\n" +
         "    b: {transport: spawn, command: " + redis_peer_command({"work", out.string(), "--delay-ms", delay_ms}) +
         "}\n";
}

// Until a consumer has joined `group` (and so the group exists).
void wait_for_group(const redis_server& r, const std::string& group) {
  REQUIRE(eventually([&] { return !peer({"consumers", r.socket(), "jobs", group}).empty(); }));
}

// `count` worker gateways, each writing the numbers of its messages to a
// file of its own, each message taking `delay_ms`.
struct worker_pool {
  std::vector<fs::path> outs;
  std::vector<std::unique_ptr<gateway>> gateways;

  worker_pool(const fs::path& dir, const redis_server& r, int count, const std::string& delay_ms) {
    for (int k = 0; k < count; ++k) {
      outs.push_back(dir / ("out" + std::to_string(k)));
      gateways.push_back(std::make_unique<gateway>(
          write_text(dir, "worker" + std::to_string(k) + ".yaml", worker_config(r, outs.back(), delay_ms))));
    }
    wait_for_group(r, "workers");
  }
};

}  // namespace

TEST_CASE("a producer gateway puts 20,000 pickles on a stream, each entry one whole message, byte for byte") {
  const auto dir = make_temp_dir();
  redis_server redis(dir);
  gateway producer(write_text(dir, "producer.yaml", producer_config(redis, 20000)));
  REQUIRE(producer.wait(60s) == 0);
  CHECK(producer.log().find("session producer: 1 instance, a>b 20000 messages") != std::string::npos);
  CHECK(peer({"expect-stream", redis.socket(), "jobs", "20000"}) == "ok 20000\n");
  fs::remove_all(dir);
}

TEST_CASE("three worker gateways share the stream through one group: every message once, each worker some") {
  const auto dir = make_temp_dir();
  redis_server redis(dir);
  worker_pool pool(dir, redis, 3, "1");
  const auto& outs = pool.outs;
  auto& workers = pool.gateways;
  gateway producer(write_text(dir, "producer.yaml", producer_config(redis, 3000)));
  REQUIRE(producer.wait(60s) == 0);
  CHECK(eventually([&] { return distinct(outs).size() == 3000; }));
  // SIGTERM: each finishes and acknowledges what it took, then ends cleanly.
  for (auto& w : workers) w->signal(SIGTERM);
  std::size_t total = 0;
  for (std::size_t k = 0; k < workers.size(); ++k) {
    CHECK(workers[k]->wait() == 0);
    const auto got = numbers_in(outs[k]);
    CHECK_MESSAGE(!got.empty(), "worker " << k << " got nothing");
    total += got.size();
  }
  CHECK(total == 3000);  // nobody died: nothing twice
  CHECK(distinct(outs).size() == 3000);
  CHECK(peer({"pending", redis.socket(), "jobs", "workers"}) == "0\n");
  fs::remove_all(dir);
}

TEST_CASE("a live worker keeps the entries it holds, however long past claim_ms they wait for their turn") {
  const auto dir = make_temp_dir();
  redis_server redis(dir);
  // ack: replied holds each request until its reply. The slow server takes
  // all 200 at once and answers one each 15 ms: most of them wait up to
  // six times claim_ms, while an idle server sweeps every claim_ms for
  // entries left that long. (claim_ms leaves a loaded machine room: the
  // slow one's loop may stall for two thirds of it.)
  const auto server_config = [&](const fs::path& out, const std::string& delay_ms) {
    return "sessions:\n  - name: server\n    a: {transport: redis, address: \"" + redis.address() +
           "\", read: {stream: jobs, group: servers}, write: {stream: replies}, ack: replied, "
           "claim_ms: 500}\n    b: {transport: spawn, command: " +
           redis_peer_command({"serve", out.string(), "--delay-ms", delay_ms}) + "}\n";
  };
  const fs::path slow_out = dir / "slow", idle_out = dir / "idle";
  gateway slow(write_text(dir, "slow.yaml", server_config(slow_out, "15")));
  wait_for_group(redis, "servers");
  gateway producer(write_text(dir, "producer.yaml", producer_config(redis, 200)));
  REQUIRE(producer.wait(60s) == 0);
  REQUIRE(eventually([&] { return numbers_in(slow_out).size() >= 5; }));
  gateway idle(write_text(dir, "idle.yaml", server_config(idle_out, "0")));
  CHECK(eventually([&] {
    return run_captured({PICKLEWAY_PYTHON, peer_script, "expect-replies", redis.socket(), "replies", "200"})
               .exit_status == 0;
  }));
  slow.signal(SIGTERM);
  idle.signal(SIGTERM);
  CHECK(slow.wait() == 0);
  CHECK(idle.wait() == 0);
  CHECK_MESSAGE(redelivered(idle.log()) == 0, idle.log());
  CHECK(numbers_in(idle_out).empty());  // nothing taken over
  CHECK(numbers_in(slow_out).size() == 200);
  CHECK(peer({"pending", redis.socket(), "jobs", "servers"}) == "0\n");
  fs::remove_all(dir);
}

TEST_CASE("a worker gateway SIGKILLed mid-stream: the others take over its entries, the duplicates only its in-flight ones, counted") {
  const auto dir = make_temp_dir();
  redis_server redis(dir);
  worker_pool pool(dir, redis, 3, "2");
  const auto& outs = pool.outs;
  auto& workers = pool.gateways;
  gateway producer(write_text(dir, "producer.yaml", producer_config(redis, 3000)));
  REQUIRE(eventually([&] { return numbers_in(outs[0]).size() >= 100; }));
  workers[0]->signal(SIGKILL);
  CHECK(workers[0]->wait() == 128 + SIGKILL);
  REQUIRE(producer.wait(60s) == 0);
  CHECK(eventually([&] { return distinct(outs).size() == 3000; }));
  workers[1]->signal(SIGTERM);
  workers[2]->signal(SIGTERM);
  CHECK(workers[1]->wait() == 0);
  CHECK(workers[2]->wait() == 0);

  std::map<long, int> seen;
  for (const auto& f : outs)
    for (long n : numbers_in(f)) ++seen[n];
  const auto killed = numbers_in(outs[0]);
  const std::set<long> killed_took(killed.begin(), killed.end());
  long duplicates = 0;
  for (const auto& [n, times] : seen) {
    if (times == 1) continue;
    duplicates += times - 1;
    CHECK_MESSAGE(killed_took.contains(n), "message " << n << " came twice, not from the killed worker");
  }
  const long counted = redelivered(workers[1]->log()) + redelivered(workers[2]->log());
  CHECK(counted > 0);  // the killed one's entries were taken over
  CHECK_MESSAGE(duplicates <= counted, duplicates << " duplicates, " << counted << " redeliveries counted");
  CHECK(peer({"pending", redis.socket(), "jobs", "workers"}) == "0\n");
  fs::remove_all(dir);
}

TEST_CASE("ack: replied, a worker killed mid-request: its request is processed again and every request gets a reply") {
  const auto dir = make_temp_dir();
  redis_server redis(dir);
  const auto server_config = [&](const fs::path& out, const std::string& die) {
    std::vector<std::string> args = {"serve", out.string()};
    if (!die.empty()) args.insert(args.end(), {"--die-at", die});
    return std::string(die.empty() ? "metrics: {listen: \"127.0.0.1:0\"}\n" : "") + "sessions:\n  - name: server\n    a: {transport: redis, address: \"" + redis.address() +
           "\", read: {stream: jobs, group: servers}, write: {stream: replies}, ack: replied, "
           "claim_ms: 1000}\n    b: {transport: spawn, command: " + redis_peer_command(args) + "}\n";
  };
  const fs::path dying_out = dir / "dying", steady_out = dir / "steady";
  gateway dying(write_text(dir, "dying.yaml", server_config(dying_out, "5")));
  gateway steady(write_text(dir, "steady.yaml", server_config(steady_out, "")));
  wait_for_group(redis, "servers");
  gateway producer(write_text(dir, "producer.yaml", producer_config(redis, 200)));
  REQUIRE(producer.wait(60s) == 0);
  // Its child killed itself on its fifth request: the instance failed.
  CHECK(dying.wait() == 1);
  const auto died_on = numbers_in(dying_out);
  REQUIRE(died_on.size() == 5);
  CHECK(eventually([&] {
    const auto done = numbers_in(steady_out);
    return std::find(done.begin(), done.end(), died_on.back()) != done.end();
  }));
  CHECK(eventually([&] {
    return run_captured({PICKLEWAY_PYTHON, peer_script, "expect-replies", redis.socket(), "replies", "200"})
               .exit_status == 0;
  }));
  // The takeover is counted in the metrics as in the summary line.
  const auto serving = steady.wait_for_line("metrics: serving http://");
  REQUIRE(serving);
  const std::string url = serving->substr(serving->find("http://"), serving->find("/ (") - serving->find("http://"));
  const std::string metrics = run_checked({PICKLEWAY_PYTHON, "-c",
      "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
      url + "/metrics"});
  const std::string sample = "pickleway_redis_redeliveries_total{session=\"server\"} ";
  const auto at = metrics.find(sample);
  REQUIRE_MESSAGE(at != std::string::npos, metrics);
  const long scraped = std::stol(metrics.substr(at + sample.size()));
  CHECK(scraped > 0);
  // And on the status page, as a browser renders it.
  const std::string page = run_checked({PICKLEWAY_DEBIAN_PYTHON, status_probe, "page", url,
                                        (dir / "status-page.png").string()});
  CHECK_MESSAGE(page.find(" redelivered " + std::to_string(scraped) + "\n") != std::string::npos, page);
  steady.signal(SIGTERM);
  CHECK(steady.wait() == 0);
  CHECK(redelivered(steady.log()) == scraped);
  CHECK(peer({"pending", redis.socket(), "jobs", "servers"}) == "0\n");
  fs::remove_all(dir);
}

TEST_CASE("Redis restarted mid-stream: both gateways reconnect and nothing is lost") {
  const auto dir = make_temp_dir();
  redis_server redis(dir);
  const fs::path out = dir / "out";
  gateway worker(write_text(dir, "worker.yaml", worker_config(redis, out)));
  wait_for_group(redis, "workers");
  gateway producer(write_text(dir, "producer.yaml",
                              producer_config(redis, 20000, {"--pause-every", "500", "--pause-ms", "50"})));
  REQUIRE(eventually([&] { return numbers_in(out).size() >= 3000; }));
  redis.stop();
  std::this_thread::sleep_for(300ms);
  redis.start();
  CHECK(producer.wait(60s) == 0);
  CHECK(eventually([&] { return distinct({out}).size() == 20000; }));
  worker.signal(SIGTERM);
  CHECK(worker.wait() == 0);
  CHECK(producer.log().find("connection lost") != std::string::npos);
  CHECK_MESSAGE(worker.log().find("reconnected") != std::string::npos, worker.log());
  CHECK(distinct({out}).size() == 20000);
  fs::remove_all(dir);
}

TEST_CASE("instances: 3 on a redis reader appears as three consumers, CONSUMER-1 to CONSUMER-3") {
  const auto dir = make_temp_dir();
  redis_server redis(dir);
  const std::string config = "sessions:\n  - name: worker\n    a: {transport: redis, address: \"" +
                             redis.address() + "\", read: {stream: jobs, group: workers, consumer: c}}\n" +
                             "    b: {transport: spawn, command: " +
                             redis_peer_command({"work", (dir / "out").string()}) + "}\n    instances: 3\n";
  gateway workers(write_text(dir, "workers.yaml", config));
  CHECK(eventually([&] {
    return peer({"consumers", redis.socket(), "jobs", "workers"}) == "c-1\nc-2\nc-3\n";
  }, 20s));
  workers.signal(SIGTERM);
  CHECK(workers.wait() == 0);
  CHECK(workers.log().find("session worker: 3 instances") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a redis endpoint's options are checked where they are written") {
  const auto dir = make_temp_dir();
  const auto check = [&](const std::string& endpoint) {
    const auto path = write_text(dir, "c.yaml",
                                 "sessions:\n  - name: s\n    a: {transport: stdio}\n    b: " + endpoint + "\n");
    return run_pickleway({"check", path.string(), "--plugin-path", PICKLEWAY_PLUGIN_DIR});
  };
  const auto r1 = check("{transport: redis, address: \"unix:/x\", read: {stream: j, group: g}, ack: replied}");
  CHECK(r1.exit_status == 2);
  CHECK_MESSAGE(r1.out.find("ack: replied needs both read") != std::string::npos, r1.out);
  const auto r2 = check("{transport: redis, address: \"localhost\", write: {stream: j}}");
  CHECK(r2.exit_status == 2);
  CHECK_MESSAGE(r2.out.find("'localhost' is not HOST:PORT or unix:PATH") != std::string::npos, r2.out);
  const auto r3 = check("{transport: redis, address: \"127.0.0.1:6379\", read: {group: g}}");
  CHECK(r3.exit_status == 2);
  CHECK_MESSAGE(r3.out.find("read needs stream") != std::string::npos, r3.out);
  fs::remove_all(dir);
}

TEST_CASE("the scale-out pair in configs/ carries the demo through Redis, each request answered") {
  std::filesystem::current_path(PICKLEWAY_SOURCE_DIR);
  const auto dir = make_temp_dir();
  redis_server redis(dir);
  // The examples name Debian's default address; this test's Redis is its own.
  const auto local = [&](const std::string& example) {
    std::ifstream in(std::string(PICKLEWAY_SOURCE_DIR) + "/configs/" + example);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string fixed = "127.0.0.1:6379";
    for (std::size_t at; (at = text.find(fixed)) != std::string::npos;)
      text.replace(at, fixed.size(), "\"" + redis.address() + "\"");
    return write_text(dir, example, text);
  };
  gateway workers(local("redis-worker.yaml"));
  wait_for_group(redis, "workers");
  gateway producer(local("redis-producer.yaml"));
  // Each worker instance counts its own requests: the first reply to come
  // is its worker's first.
  CHECK(producer.wait_for_line("producer receives {'ack': 1, 'type': 'dict', 'size': 2}"));
  for (int k = 0; k < 3; ++k) CHECK(producer.next_line("producer receives {'ack': "));
  producer.signal(SIGTERM);
  CHECK(producer.wait() == 0);
  workers.signal(SIGTERM);
  CHECK(workers.wait() == 0);
  INFO("workers: " << workers.log());
  CHECK(workers.log().find("session worker: 4 instances, a>b 4 messages") != std::string::npos);
  CHECK(peer({"pending", redis.socket(), "jobs", "workers"}) == "0\n");
  fs::remove_all(dir);
}
