// `metrics: {listen: HOST:PORT}`: a running gateway's /metrics, read by
// Prometheus' own parser (Debian's python3-prometheus-client) and checked
// against the summary line; /status; the page at / as a real headless
// Chromium renders it; and what the server does with requests it does
// not serve.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/process.hpp"

using namespace pickleway::test;

namespace {

const std::string probe = std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/status_probe.py";
const std::string peer = std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/peer.py";

// Two listening sessions behind one metrics port: `echo` (a firewall on
// its path) answers each object with itself, `other` too.
std::string two_sessions() {
  const std::string echo = "{transport: spawn, command: [" + std::string(PICKLEWAY_PYTHON) + ", " + peer + ", echo]}";
  return "metrics: {listen: \"127.0.0.1:0\"}\n"
         "grace: 500ms\n"
         "sessions:\n"
         "  - name: echo\n"
         "    a: {transport: tcp, listen: \"127.0.0.1:0\", framing: length}\n"
         "    b: " + echo + "\n"
         "    filters:\n"
         "      - firewall: {}\n"
         "  - name: other\n"
         "    a: {transport: tcp, listen: \"127.0.0.1:0\", framing: length}\n"
         "    b: " + echo + "\n";
}

int metrics_port(gateway& g) {
  const auto line = g.wait_for_line("metrics: serving http://127.0.0.1:");
  REQUIRE(line);
  static const std::regex port(R"(http://127\.0\.0\.1:(\d+)/)");
  std::smatch m;
  REQUIRE(std::regex_search(*line, m, port));
  return std::stoi(m[1]);
}

// The probe runs on Debian's python3, whose packages it needs.
std::string probe_run(const std::vector<std::string>& args) {
  std::vector<std::string> argv{PICKLEWAY_DEBIAN_PYTHON, probe};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_checked(argv);
}

// Sends `request` as it is and returns the whole answer.
std::string http_exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(static_cast<std::uint16_t>(port));
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0);
  for (std::size_t done = 0; done < request.size();) {
    const ssize_t n = ::send(fd, request.data() + done, request.size() - done, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before it read all
    done += static_cast<std::size_t>(n);
  }
  std::string answer;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) answer.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return answer;
}

struct driven_gateway {
  std::filesystem::path dir = make_temp_dir();
  gateway g{write_text(dir, "two.yaml", two_sessions())};
  int port = metrics_port(g);
  std::string url = "http://127.0.0.1:" + std::to_string(port);

  driven_gateway() {
    const int echo = g.listening_port("echo"), other = g.listening_port("other");
    REQUIRE(probe_run({"drive", std::to_string(echo), std::to_string(other)}) == "driven\n");
  }
  ~driven_gateway() {
    std::error_code left;
    std::filesystem::remove_all(dir, left);
  }
};

}  // namespace

TEST_CASE("/metrics, read by Prometheus' parser, counts what the summary line counts") {
  driven_gateway d;
  std::map<std::string, long> value;
  std::istringstream lines(probe_run({"metrics", d.url}));
  std::string content_type;
  REQUIRE(std::getline(lines, content_type));
  CHECK(content_type == "content-type text/plain; version=0.0.4; charset=utf-8");
  for (std::string name; lines >> name;) lines >> value[name];

  CHECK(value.at("pickleway_messages_total{direction=a>b,session=echo}") == 300);
  CHECK(value.at("pickleway_messages_total{direction=b>a,session=echo}") == 300);
  CHECK(value.at("pickleway_messages_total{direction=a>b,session=other}") == 0);
  CHECK(value.at("pickleway_instances{session=echo}") == 0);
  CHECK(value.at("pickleway_instances_total{result=ok,session=echo}") == 3);
  CHECK(value.at("pickleway_instances_total{result=failed,session=echo}") == 1);
  CHECK(value.at("pickleway_instances_total{result=failed,session=other}") == 1);
  CHECK(value.at("pickleway_errors_total{cause=filter_failed,session=echo}") == 1);
  CHECK(value.at("pickleway_errors_total{cause=bad_length,session=other}") == 1);
  CHECK(value.at("pickleway_filter_refused_total{filter=firewall,session=echo}") == 1);

  d.g.signal(SIGTERM);
  REQUIRE(d.g.wait() == 1);  // two instances failed
  static const std::regex summary(
      R"(session (\w+): (\d+) instances?, a>b (\d+) messages (\d+) bytes, b>a (\d+) messages (\d+) bytes, (\d+) failed)");
  int sessions = 0;
  for (std::sregex_iterator m(d.g.log().begin(), d.g.log().end(), summary), end; m != end; ++m, ++sessions) {
    const std::string s = (*m)[1];
    CAPTURE(s);
    CHECK(std::stol((*m)[2]) == value.at("pickleway_instances_total{result=ok,session=" + s + "}") +
                                    value.at("pickleway_instances_total{result=failed,session=" + s + "}"));
    CHECK(std::stol((*m)[3]) == value.at("pickleway_messages_total{direction=a>b,session=" + s + "}"));
    CHECK(std::stol((*m)[4]) == value.at("pickleway_bytes_total{direction=a>b,session=" + s + "}"));
    CHECK(std::stol((*m)[5]) == value.at("pickleway_messages_total{direction=b>a,session=" + s + "}"));
    CHECK(std::stol((*m)[6]) == value.at("pickleway_bytes_total{direction=b>a,session=" + s + "}"));
    CHECK(std::stol((*m)[7]) == value.at("pickleway_instances_total{result=failed,session=" + s + "}"));
  }
  CHECK(sessions == 2);
}

TEST_CASE("the status page, in headless Chromium, shows both sessions and their counts") {
  driven_gateway d;
  // Where the screenshot goes: the build folder, beside the tests.
  const std::string screenshot = std::filesystem::current_path() / "status-page.png";
  const std::string shown = probe_run({"page", d.url, screenshot});
  CHECK(shown == "echo a>b 300 b>a 300 failed 1\nother a>b 0 b>a 0 failed 1\n");
  CHECK(std::filesystem::file_size(screenshot) > 10000);

  // /status says the same, per session and per instance.
  const std::string status = http_exchange(d.port, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"));
  CHECK(status.find(R"({"name":"echo","live":0,"ended":4,"failed":1,"a>b":{"messages":300,)") != std::string::npos);
  CHECK(status.find(R"("filters":[{"name":"firewall","refused":1}])") != std::string::npos);
  CHECK(status.find("firewall: refused posix.system") != std::string::npos);
}

TEST_CASE("the metrics server answers only GET of its three paths, and bounds what it reads") {
  const auto dir = make_temp_dir();
  gateway g(write_text(dir, "two.yaml", two_sessions()));
  const int port = metrics_port(g);
  CHECK(http_exchange(port, "GET /nothing HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not Found\r\n"));
  CHECK(http_exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
  CHECK(http_exchange(port, "GET /metrics SPDY/3\r\n\r\n").starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(http_exchange(port, "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n")
            .starts_with("HTTP/1.1 400 Bad Request\r\n"));
  const std::string huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(20000, 'x') + "\r\n\r\n";
  const std::string refused = http_exchange(port, huge);
  CHECK(refused.starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(refused.find("request head longer than 8192 bytes") != std::string::npos);
  // HEAD: the headers alone. A query string is not part of the path.
  const std::string head = http_exchange(port, "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
  CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(head.ends_with("\r\n\r\n"));
  const std::string page = http_exchange(port, "GET / HTTP/1.1\r\n\r\n");
  CHECK(page.find("Content-Type: text/html; charset=utf-8\r\n") != std::string::npos);
  // Self-contained: nothing is loaded from anywhere but this server.
  CHECK(page.find("src=") == std::string::npos);
  CHECK(page.find("href=") == std::string::npos);
  CHECK(page.find("http://") == std::string::npos);
  CHECK(page.find("https://") == std::string::npos);
  // Clients that send nothing are answered 408 after 5 s. While the most
  // served at once (32) are such clients, the next waits in the backlog
  // until they are gone.
  std::vector<int> idle;
  for (std::size_t k = 0; k < 32; ++k) {
    idle.push_back(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(static_cast<std::uint16_t>(port));
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(idle.back(), reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0);
  }
  const auto since = std::chrono::steady_clock::now();
  CHECK(http_exchange(port, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(std::chrono::steady_clock::now() - since >= std::chrono::seconds(4));
  for (const int fd : idle) {
    std::string late;
    char buffer[512];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) late.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    CHECK(late.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
  }
  g.signal(SIGTERM);
  CHECK(g.wait() == 0);
  std::error_code left;
  std::filesystem::remove_all(dir, left);
}

TEST_CASE("a metrics port that cannot be bound stops run before any session starts, status 1") {
  const auto dir = make_temp_dir();
  const int blocker = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(blocker, reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0);
  REQUIRE(::listen(blocker, 1) == 0);
  socklen_t size = sizeof at;
  REQUIRE(::getsockname(blocker, reinterpret_cast<sockaddr*>(&at), &size) == 0);
  const int taken = ntohs(at.sin_port);
  std::string yaml = two_sessions();
  yaml.replace(yaml.find("127.0.0.1:0"), 11, "127.0.0.1:" + std::to_string(taken));
  const auto r = run_pickleway({"run", write_text(dir, "taken.yaml", yaml).string(), "--plugin-path", PICKLEWAY_PLUGIN_DIR});
  ::close(blocker);
  CHECK(r.exit_status == 1);
  CHECK_MESSAGE(r.out.find("taken.yaml:1:10: metrics: cannot listen on 127.0.0.1:" + std::to_string(taken) +
                           ": Address already in use") != std::string::npos, r.out);
  CHECK(r.out.find("listening on") == std::string::npos);
  std::error_code left;
  std::filesystem::remove_all(dir, left);
}

TEST_CASE("a bad metrics address is refused by check at its place, status 2; one not of this host by run, status 1") {
  const auto dir = make_temp_dir();
  const auto config = [&](const std::string& listen) {
    return write_text(dir, "m.yaml", "metrics: {listen: " + listen + "}\n" + two_sessions().substr(two_sessions().find("grace:")));
  };
  for (const char* bad : {"nohost", "127.0.0.1:99999", ":9464", "\"127.0.0.1:9464 x\"", "\"[::1]\""}) {
    CAPTURE(bad);
    const auto r = run_pickleway({"check", config(bad).string(), "--plugin-path", PICKLEWAY_PLUGIN_DIR});
    CHECK(r.exit_status == 2);
    CHECK_MESSAGE(r.out.find("m.yaml:1:19: key 'metrics': option 'listen': ") != std::string::npos, r.out);
    CHECK(r.out.find("is not an address HOST:PORT") != std::string::npos);
  }
  // 192.0.2.1 is TEST-NET-1: an address no host here has.
  const auto r = run_pickleway({"run", config("\"192.0.2.1:9464\"").string(), "--plugin-path", PICKLEWAY_PLUGIN_DIR});
  CHECK(r.exit_status == 1);
  CHECK_MESSAGE(r.out.find("m.yaml:1:10: metrics: cannot listen on 192.0.2.1:9464: Cannot assign requested address") !=
                    std::string::npos, r.out);
  std::error_code left;
  std::filesystem::remove_all(dir, left);
}
