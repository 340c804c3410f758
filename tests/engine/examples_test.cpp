// The examples in configs/ run as shipped: each names its files relative to
// the repository, where a user runs it from.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "support/corpus.hpp"
#include "support/gateway.hpp"

using namespace pickleway::test;

namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The example with its fixed port replaced, so that tests never collide.
std::filesystem::path with_port(const std::filesystem::path& dir, const std::string& example,
                                const std::string& port) {
  std::string text = read_text(std::string(PICKLEWAY_SOURCE_DIR) + "/configs/" + example);
  const std::string fixed = ":47127";
  const auto at = text.find(fixed);
  REQUIRE(at != std::string::npos);
  text.replace(at, fixed.size(), ":" + port);
  return write_text(dir, example, text);
}

}  // namespace

TEST_CASE("the hardened pair in configs/ bridges the demo over mutual TLS, auth and the firewall") {
  std::filesystem::current_path(PICKLEWAY_SOURCE_DIR);
  const auto dir = make_temp_dir();
  gateway host2(with_port(dir, "secure-host2.yaml", "0"));
  const int port = host2.listening_port("from-host1");
  REQUIRE(port > 0);
  gateway host1(with_port(dir, "secure-host1.yaml", std::to_string(port)));
  CHECK(host1.wait() == 0);
  INFO("host1: " << host1.log());
  CHECK(host1.log().find("session to-host2: 1 instance, a>b 4 messages") != std::string::npos);
  CHECK(host2.wait_for_line("session from-host1#1: ended, a>b 4 messages, b>a 4 messages"));
  INFO("host2: " << host2.log());
  CHECK(host2.log().find("consumer: the stream ended after 4 objects") != std::string::npos);
  host2.signal(SIGTERM);
  CHECK(host2.wait() == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("the resumable pair in configs/ bridges the demo over a link") {
  std::filesystem::current_path(PICKLEWAY_SOURCE_DIR);
  const auto dir = make_temp_dir();
  gateway host2(with_port(dir, "link-host2.yaml", "0"));
  const int port = host2.listening_port("from-host1");
  REQUIRE(port > 0);
  gateway host1(with_port(dir, "link-host1.yaml", std::to_string(port)));
  CHECK(host1.wait() == 0);
  INFO("host1: " << host1.log());
  CHECK(host1.log().find("session to-host2: 1 instance, a>b 4 messages") != std::string::npos);
  CHECK(host1.log().find("link: 0 reconnects, 0 messages resent") != std::string::npos);
  CHECK(host2.wait_for_line("session from-host1#1: ended, a>b 4 messages"));
  INFO("host2: " << host2.log());
  CHECK(host2.log().find("consumer: the stream ended after 4 objects") != std::string::npos);
  host2.signal(SIGTERM);
  CHECK(host2.wait() == 0);
  std::filesystem::remove_all(dir);
}
