// The command line itself: what pickleway says of itself.
#include <doctest/doctest.h>

#include <pickleway/plugin.hpp>

#include "support/process.hpp"

using namespace pickleway::test;

TEST_CASE("pickleway --version prints the project's version and the plugin ABI") {
  const auto r = run_pickleway({"--version"});
  CHECK(r.exit_status == 0);
  CHECK(r.out == std::string("pickleway ") + PICKLEWAY_VERSION + " (plugin ABI " +
                     std::to_string(pickleway::abi_version) + ")\n");
  SUBCASE("and takes no arguments") {
    const auto extra = run_pickleway({"--version", "now"});
    CHECK(extra.exit_status == 2);
    CHECK(extra.out.find("pickleway: --version takes no arguments") != std::string::npos);
  }
}

TEST_CASE("pickleway help prints a plugin's options from its schema") {
  const auto r = run_pickleway({"help", "tcp", "--plugin-path", PICKLEWAY_PLUGIN_DIR});
  CHECK(r.exit_status == 0);
  CHECK(r.out.find(std::string("transport tcp 1.1.0 (") + PICKLEWAY_PLUGIN_DIR + "/pickleway_tcp.so)\n") !=
        std::string::npos);
  CHECK(r.out.find("  connect: HOST:PORT\n      HOST:PORT to connect to\n") != std::string::npos);
  CHECK(r.out.find("    retry.initial_ms: integer, default 100\n        wait after the first failed "
                   "attempt\n") != std::string::npos);
  SUBCASE("and the core's own keys") {
    const auto session = run_pickleway({"help", "session"});
    CHECK(session.exit_status == 0);
    CHECK(session.out.find("  name: string, required\n") != std::string::npos);
    CHECK(session.out.find("  instances: integer, default 1\n") != std::string::npos);
    const auto endpoint = run_pickleway({"help", "endpoint"});
    CHECK(endpoint.out.find("  framing: pickle|length|link, default pickle\n") != std::string::npos);
    CHECK(endpoint.out.find("  max_message: size, default 64MiB\n") != std::string::npos);
    const auto root = run_pickleway({"help", "config"});
    CHECK(root.out.find("  metrics: map\n") != std::string::npos);
    CHECK(root.out.find("    metrics.listen: HOST:PORT, required\n") != std::string::npos);
  }
  SUBCASE("naming the nearest plugin for a misspelt one") {
    const auto typo = run_pickleway({"help", "tpc", "--plugin-path", PICKLEWAY_PLUGIN_DIR});
    CHECK(typo.exit_status == 2);
    CHECK(typo.out.find("pickleway: no plugin named 'tpc' and no such topic: did you mean 'tcp'?") !=
          std::string::npos);
  }
}
