// The plugin SDK as a user meets it: pickleway installed to a prefix,
// the example plugins built out of tree against it, and run from YAML.
#include <doctest/doctest.h>

#include <csignal>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/process.hpp"

using namespace pickleway::test;

namespace {

// Runs a shell command line; its exit status, its output kept for messages.
run_result shell(const std::string& line) { return run({"sh", "-c", line + " 2>&1"}); }

}  // namespace

TEST_CASE("plugins built out of tree against the installed SDK run from YAML") {
  const auto dir = make_temp_dir();
  const auto prefix = dir / "prefix";
  const auto installed = shell(quote(PICKLEWAY_CMAKE) + " --install " + quote(PICKLEWAY_BUILD_DIR) +
                               " --prefix " + quote(prefix.string()));
  REQUIRE_MESSAGE(installed.exit_status == 0, installed.out);

  // The installed pickleway finds its bundled plugins with no options.
  const auto listed = run({(prefix / "bin/pickleway").string(), "plugins"});
  CHECK(listed.out.find("transport\tspawn\t1.0.0\t" + (prefix / "lib/pickleway/plugins").string()) !=
        std::string::npos);

  const auto examples = dir / "examples";
  const auto built = shell(quote(PICKLEWAY_CMAKE) + " -S " + quote(PICKLEWAY_SOURCE_DIR "/plugins/examples") +
                           " -B " + quote(examples.string()) + " -DCMAKE_PREFIX_PATH=" +
                           quote(prefix.string()) + " && " + quote(PICKLEWAY_CMAKE) + " --build " +
                           quote(examples.string()));
  REQUIRE_MESSAGE(built.exit_status == 0, built.out);

  // A recording of 50 messages, replayed by the `file` transport through
  // the `tap` filter to a consumer.
  const auto recording = dir / "recorded.pickles";
  REQUIRE(run({PICKLEWAY_PYTHON, "-c",
               "import collections, pickle, sys\nwith open(sys.argv[1], 'wb') as f:\n"
               "    for i in range(50):\n"
               "        f.write(pickle.dumps(collections.OrderedDict(seq=i) if i == 7 else {'seq': i}, 5))\n",
               recording.string()})
              .exit_status == 0);
  const auto report = dir / "report.json";
  const auto copies = dir / "copies.pickles";
  const auto config = write_text(dir, "replay.yaml", R"(
plugin_path: [examples]
sessions:
  - name: replay
    a: {transport: file, read: )" + recording.string() + R"(}
    b: {transport: spawn, command: )" + peer_command({"sink", "--report", report.string()}) + R"(}
    filters:
      - tap: {path: )" + copies.string() + R"(}
      - names
)");
  const auto ran = shell(quote((prefix / "bin/pickleway").string()) + " run " + quote(config.string()));
  CHECK_MESSAGE(ran.exit_status == 0, ran.out);
  // `names`, a machine of its own on the SDK's model of the unpickler.
  CHECK(ran.out.find("names: a>b message 8: collections.OrderedDict\n") != std::string::npos);
  CHECK(ran.out.find("names: a>b message 7:\n") != std::string::npos);
  const auto got = read_file(report);
  CHECK(std::string(got.begin(), got.end()).find(R"("received": 50, "ok": true)") != std::string::npos);
  // What the tap copied is the same stream, message for message.
  CHECK(read_file(copies) == read_file(recording));
  const auto dis = run({(prefix / "bin/pickleway").string(), "dis", copies.string()});
  CHECK(dis.exit_status == 0);
  CHECK(dis.out.find("=== message 50 at offset ") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a plugin body that throws inside guarded ends only its own instance, with the text; other sessions carry on") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto healthy_report = dir / "healthy.json";
  SUBCASE("while handling a message") {
    const auto config = write_text(dir, "throw.yaml", R"(
plugin_path: [)" PICKLEWAY_ODD_PLUGIN_DIR R"(]
sessions:
  - name: faulty
    a: {transport: spawn, command: )" + peer_command({"flood", "--small", "10"}) + R"(}
    b: {transport: spawn, command: )" + peer_command({"sink", "--report", report.string()}) + R"(}
    filters: [thrower: {when: message}]
  - name: healthy
    a: {transport: spawn, command: )" + peer_command({"flood", "--small", "1000"}) + R"(}
    b: {transport: spawn, command: )" + peer_command({"sink", "--expect", "1000", "--report", healthy_report.string()}) + R"(}
)");
    gateway g(config);
    CHECK(g.wait() == 1);
    CHECK(g.log().find("session faulty, endpoint a (spawn): offset ") != std::string::npos);
    CHECK(g.log().find(": thrown on message 3") != std::string::npos);
    const auto faulty = read_file(report);
    CHECK(std::string(faulty.begin(), faulty.end()).find(R"("received": 2, "ok": true)") != std::string::npos);
  }
  SUBCASE("while making its filter for an instance") {
    const auto config = write_text(dir, "throw.yaml", R"(
plugin_path: [)" PICKLEWAY_ODD_PLUGIN_DIR R"(]
sessions:
  - name: faulty
    a: {transport: spawn, command: )" + peer_command({"flood", "--small", "10"}) + R"(}
    b: {transport: spawn, command: )" + peer_command({"sink"}) + R"(}
    filters: [thrower: {when: make}]
  - name: healthy
    a: {transport: spawn, command: )" + peer_command({"flood", "--small", "1000"}) + R"(}
    b: {transport: spawn, command: )" + peer_command({"sink", "--expect", "1000", "--report", healthy_report.string()}) + R"(}
)");
    gateway g(config);
    CHECK(g.wait() == 1);
    CHECK(g.log().find("session faulty, filter thrower: thrown while making the filter") != std::string::npos);
  }
  const auto healthy = read_file(healthy_report);
  CHECK(std::string(healthy.begin(), healthy.end()).find(R"("received": 1000, "ok": true)") != std::string::npos);
  std::filesystem::remove_all(dir);
}
