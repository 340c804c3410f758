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
