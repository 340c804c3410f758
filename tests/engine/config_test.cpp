// `pickleway check` and `pickleway plugins`: the config is refused at the
// first error with FILE:LINE:COL, and plugins that cannot be used are named.
#include <doctest/doctest.h>

#include <cstdlib>

#include <pickleway/plugin.hpp>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/process.hpp"

using namespace pickleway::test;

namespace {

struct outcome {
  int status;
  std::string out;  // standard output and error together
};

outcome pickleway_cli(const std::vector<std::string>& args) {
  const auto r = run_pickleway(args);
  return {r.exit_status, r.out};
}

// Checks a config and returns what pickleway said.
outcome check(const std::string& yaml) {
  const auto dir = make_temp_dir();
  const auto path = write_text(dir, "session.yaml", yaml);
  auto o = pickleway_cli({"check", path.string(), "--plugin-path", PICKLEWAY_PLUGIN_DIR});
  // Messages name the file: make them comparable.
  for (std::size_t at; (at = o.out.find(path.string())) != std::string::npos;)
    o.out.replace(at, path.string().size(), "session.yaml");
  std::filesystem::remove_all(dir);
  return o;
}

}  // namespace

TEST_CASE("pickleway check accepts every example in configs/") {
  // They name their files relative to the repository, where a user runs them.
  std::filesystem::current_path(PICKLEWAY_SOURCE_DIR);
  std::size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(PICKLEWAY_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    CAPTURE(entry.path());
    const auto o = pickleway_cli({"check", entry.path().string()});
    CHECK(o.status == 0);
    CHECK(o.out.find("ok: ") != std::string::npos);
    ++checked;
  }
  CHECK(checked >= 6);
}

TEST_CASE("pickleway check prints the resolved sessions") {
  const auto o = check(R"(sessions:
  - name: s
    a: {transport: spawn, command: [python3, x.py], on_stray: divert}
    b: {transport: tcp, connect: "127.0.0.1:7000", framing: length, max_message: 1MiB}
)");
  CHECK(o.status == 0);
  CHECK(o.out.find("  a: spawn python3 x.py framing=pickle max_message=67108864 on_stray=divert memo=error\n") !=
        std::string::npos);
  CHECK(o.out.find("  b: tcp connect 127.0.0.1:7000 framing=length max_message=1048576\n") !=
        std::string::npos);
}

TEST_CASE("a bad config is refused with FILE:LINE:COL and the cause") {
  struct bad {
    const char* what;
    std::string yaml;
    std::string message;
  };
  const std::string head = "sessions:\n  - name: s\n";
  const std::string spawn_b = "    b: {transport: spawn, command: [python3]}\n";
  const bad cases[] = {
      {"an unknown endpoint option", head + "    a: {transport: spawn, command: [x], colour: red}\n" + spawn_b,
       "session.yaml:3:41: session s, endpoint a (spawn): unknown option 'colour'"},
      {"a wrong type", head + "    a: {transport: spawn, command: python3}\n" + spawn_b,
       "session.yaml:3:36: session s, endpoint a (spawn): option 'command' must be a list of strings"},
      {"a missing required option", head + "    a: {transport: spawn}\n" + spawn_b,
       "session.yaml:3:8: session s, endpoint a (spawn): option 'command' is required"},
      {"an unknown plugin", head + "    a: {transport: carrier-pigeon}\n" + spawn_b,
       "session.yaml:3:20: no transport plugin named 'carrier-pigeon' (searched: "},
      {"a bad address", head + "    a: {transport: tcp, connect: \"::1:80\"}\n" + spawn_b,
       "session.yaml:3:34: session s, endpoint a (tcp): option 'connect': '::1:80' is not an address"},
      {"a bad size", head + "    a: {transport: spawn, command: [x], max_message: 12XB}\n" + spawn_b,
       "session.yaml:3:54: session s, endpoint a: option 'max_message' must be a size"},
      {"on_stray with length framing", head + "    a: {transport: spawn, command: [x], framing: length, on_stray: divert}\n" + spawn_b,
       "session.yaml:3:68: session s, endpoint a: on_stray applies only to framing: pickle"},
      {"a choice-or-list option given neither",
       head + "    a: {transport: spawn, command: [x]}\n" + spawn_b + "    filters: [firewall: {ext: sometimes}]\n",
       "session.yaml:5:31: session s, filters[0] (firewall): option 'ext': 'sometimes' is not one of deny, allow"},
      {"a choice-or-list option given a map",
       head + "    a: {transport: spawn, command: [x]}\n" + spawn_b + "    filters: [firewall: {ext: {a: 1}}]\n",
       "session.yaml:5:31: session s, filters[0] (firewall): option 'ext' must be one of the listed choices, or a list"},
      {"a bad item in a choice-or-list option",
       head + "    a: {transport: spawn, command: [x]}\n" + spawn_b + "    filters: [firewall: {ext: [7, seven]}]\n",
       "session.yaml:5:31: session s, filters[0] (firewall): firewall: ext: `seven` is not an extension code"},
      {"a missing endpoint", head + "    a: {transport: spawn, command: [x]}\n",
       "session.yaml:2:5: session s needs endpoint 'b'"},
      {"an unknown session key", head + "    a: {transport: spawn, command: [x]}\n" + spawn_b + "    colour: red\n",
       "session.yaml:5:5: sessions[0]: unknown key 'colour'"},
      {"a duplicate session name",
       head + "    a: {transport: spawn, command: [x]}\n" + spawn_b + "  - name: s\n    a: {transport: spawn, command: [x]}\n" + spawn_b,
       "session.yaml:5:11: duplicate session name 's'"},
      {"two listening endpoints", head + "    a: {transport: tcp, listen: \"127.0.0.1:1\"}\n    b: {transport: unix, listen: /tmp/x}\n",
       "session.yaml:4:8: session s: only one endpoint of a session may listen"},
      {"a plugin's own refusal", head + "    a: {transport: tcp, listen: \"127.0.0.1:1\", connect: \"127.0.0.1:2\"}\n" + spawn_b,
       "session s, endpoint a (tcp): "},
      {"YAML that does not parse", "sessions: [\n", "session.yaml:2:1: "},
      {"a filter named alone without its required option",
       head + "    a: {transport: spawn, command: [x]}\n" + spawn_b + "    filters: [compress]\n",
       "session.yaml:5:15: session s, filters[0] (compress): option 'codec' is required"},
      {"a filter with an empty option map without its required option",
       head + "    a: {transport: spawn, command: [x]}\n" + spawn_b + "    filters:\n      - log:\n",
       "session.yaml:6:9: session s, filters[0] (log): option 'path' is required"},
      {"auth without framing: length", head + "    a: {transport: spawn, command: [x], auth: {key_env: HOME}}\n" + spawn_b,
       "session.yaml:3:47: session s, endpoint a: auth is valid only with framing: length"},
      {"auth with both key_file and key_env",
       head + "    a: {transport: spawn, command: [x], framing: length, auth: {key_file: k, key_env: HOME}}\n" + spawn_b,
       "session.yaml:3:64: session s, endpoint a: auth takes exactly one of key_file and key_env"},
      {"auth with neither", head + "    a: {transport: spawn, command: [x], framing: length, auth: {timeout_ms: 5}}\n" + spawn_b,
       "session.yaml:3:64: session s, endpoint a: auth takes exactly one of key_file and key_env"},
      {"a missing key file", head + "    a: {transport: spawn, command: [x], framing: length, auth: {key_file: no.key}}\n" + spawn_b,
       "session.yaml:3:75: session s, endpoint a: auth: key_file "},
      {"an unset key variable",
       head + "    a: {transport: spawn, command: [x], framing: length, auth: {key_env: PICKLEWAY_TEST_UNSET}}\n" + spawn_b,
       "session.yaml:3:74: session s, endpoint a: auth: environment variable 'PICKLEWAY_TEST_UNSET' is not set"},
      {"a zero auth timeout",
       head + "    a: {transport: spawn, command: [x], framing: length, auth: {key_env: HOME, timeout_ms: 0}}\n" + spawn_b,
       "session.yaml:3:92: session s, endpoint a: auth: timeout_ms must be at least 1"},
      {"an unknown auth option",
       head + "    a: {transport: spawn, command: [x], framing: length, auth: {key_env: HOME, salt: x}}\n" + spawn_b,
       "session.yaml:3:80: session s, endpoint a: option 'auth': unknown option 'salt'"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto o = check(c.yaml);
    CHECK(o.status == 2);
    CHECK_MESSAGE(o.out.find(c.message) != std::string::npos, o.out);
  }
}

TEST_CASE("a misspelt key or plugin name is refused naming the nearest known one") {
  struct typo {
    const char* what;
    std::string yaml;
    std::string message;
  };
  const std::string head = "sessions:\n  - name: s\n";
  const std::string spawn_a = "    a: {transport: spawn, command: [x]}\n";
  const std::string spawn_b = "    b: {transport: spawn, command: [y]}\n";
  const typo cases[] = {
      {"a transport's option", head + "    a: {transport: spawn, comand: [x]}\n" + spawn_b,
       "session.yaml:3:27: session s, endpoint a (spawn): unknown option 'comand': did you mean 'command'?"},
      {"an option every endpoint takes", head + "    a: {transport: spawn, command: [x], framng: length}\n" + spawn_b,
       "session.yaml:3:41: session s, endpoint a (spawn): unknown option 'framng': did you mean 'framing'?"},
      {"a filter's option", head + spawn_a + spawn_b + "    filters: [log: {path: x.log, formt: text}]\n",
       "session.yaml:5:34: session s, filters[0] (log): unknown option 'formt': did you mean 'format'?"},
      {"an option in a section", head + "    a: {transport: tcp, connect: \"h:1\", retry: {atempts: 3}}\n" + spawn_b,
       "session.yaml:3:49: session s, endpoint a (tcp): option 'retry': unknown option 'atempts': did you mean 'attempts'?"},
      {"a session key", head + spawn_a + spawn_b + "    filter: [log: {path: x.log}]\n",
       "session.yaml:5:5: sessions[0]: unknown key 'filter': did you mean 'filters'?"},
      {"a root key", "thread: 2\n" + head + spawn_a + spawn_b,
       "session.yaml:1:1: unknown key 'thread': did you mean 'threads'?"},
      {"the sessions key", "session:\n  - name: s\n" + spawn_a + spawn_b,
       "session.yaml:1:1: unknown key 'session': did you mean 'sessions'?"},
      {"a transport plugin", head + "    a: {transport: tpc, connect: \"h:1\"}\n" + spawn_b,
       "session.yaml:3:20: no transport plugin named 'tpc' (searched: "},
      {"a filter plugin", head + spawn_a + spawn_b + "    filters: [compres: {codec: zstd}]\n",
       "session.yaml:5:15: no filter plugin named 'compres' (searched: "},
      {"a choice", head + spawn_a + "    b: {transport: tcp, connect: \"h:1\", framing: length}\n" +
                       "    filters: [compress: {codec: zsdt}]\n",
       "session.yaml:5:33: session s, filters[0] (compress): option 'codec': 'zsdt' is not one of zstd, "
       "lz4, zlib: did you mean 'zstd'?"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto o = check(c.yaml);
    CHECK(o.status == 2);
    CHECK_MESSAGE(o.out.find(c.message) != std::string::npos, o.out);
  }
  const auto plugin = check(head + "    a: {transport: tpc, connect: \"h:1\"}\n" + spawn_b);
  CHECK(plugin.out.find("): did you mean 'tcp'?\n") != std::string::npos);
  const auto filter = check(head + spawn_a + spawn_b + "    filters: [compres: {codec: zstd}]\n");
  CHECK(filter.out.find("): did you mean 'compress'?\n") != std::string::npos);
  SUBCASE("and, with no known key near, lists them all") {
    const auto far = check(head + "    a: {transport: spawn, command: [x], colour: red}\n" + spawn_b);
    CHECK(far.out.find("unknown option 'colour' (known: ") != std::string::npos);
    CHECK(far.out.find("did you mean") == std::string::npos);
  }
}

TEST_CASE("pickleway plugins lists the bundled transports with their files") {
  const auto o = pickleway_cli({"plugins"});
  CHECK(o.status == 0);
  const std::pair<const char*, const char*> bundled[] = {
      {"fifo", "1.0.0"}, {"spawn", "1.0.0"}, {"stdio", "1.0.0"}, {"tcp", "1.1.0"}, {"unix", "1.0.0"}};
  for (const auto& [name, version] : bundled)
    CHECK(o.out.find(std::string("transport\t") + name + "\t" + version + "\t" +
                     PICKLEWAY_PLUGIN_DIR + "/pickleway_" + name + ".so") != std::string::npos);
}

TEST_CASE("libraries that are no usable plugin are skipped, each named") {
  const auto o = pickleway_cli({"plugins", "--plugin-path", PICKLEWAY_ODD_PLUGIN_DIR});
  CHECK(o.status == 0);
  CHECK(o.out.find(std::string("warning: ") + PICKLEWAY_ODD_PLUGIN_DIR +
                   "/not_a_plugin.so: not a pickleway plugin") != std::string::npos);
  CHECK(o.out.find(std::string("warning: ") + PICKLEWAY_ODD_PLUGIN_DIR +
                   "/other_abi.so: built for plugin ABI version " +
                   std::to_string(pickleway::abi_version + 1) + ", this pickleway has " +
                   std::to_string(pickleway::abi_version) + ", skipped") !=
        std::string::npos);
  CHECK(o.out.find(std::string("warning: ") + PICKLEWAY_ODD_PLUGIN_DIR +
                   "/bad_default.so: option 'level': its default 'high' is not an integer, "
                   "skipped") != std::string::npos);
  CHECK(o.out.find("from_the_future") == std::string::npos);
  CHECK(o.out.find("filter\tbad_default") == std::string::npos);
  CHECK(o.out.find("transport\ttcp") != std::string::npos);  // the others still load
}

TEST_CASE("pickleway check reads the auth key and names where it came from, never the key") {
  const auto dir = make_temp_dir();
  std::filesystem::create_directories(dir / "keys");
  write_text(dir, "keys/link.key", "not-to-be-printed\n");
  const auto path = write_text(dir, "auth.yaml", R"(sessions:
  - name: s
    a: {transport: tcp, listen: "127.0.0.1:0", framing: length, auth: {key_file: )" +
                                                     (dir / "keys/link.key").string() + R"(}}
    b: {transport: tcp, connect: "127.0.0.1:7000", framing: length, auth: {key_env: PICKLEWAY_TEST_KEY, timeout_ms: 250}}
)");
  ::setenv("PICKLEWAY_TEST_KEY", "also-secret", 1);
  const auto o = pickleway_cli({"check", path.string(), "--plugin-path", PICKLEWAY_PLUGIN_DIR});
  ::unsetenv("PICKLEWAY_TEST_KEY");
  CHECK(o.status == 0);
  CHECK(o.out.find("max_message=67108864 auth=key_file " + (dir / "keys/link.key").string() +
                   " timeout_ms=10000\n") != std::string::npos);
  CHECK(o.out.find("auth=key_env PICKLEWAY_TEST_KEY timeout_ms=250\n") != std::string::npos);
  CHECK(o.out.find("not-to-be-printed") == std::string::npos);
  CHECK(o.out.find("also-secret") == std::string::npos);
  SUBCASE("an empty key file is refused") {
    write_text(dir, "keys/link.key", "");
    const auto empty = pickleway_cli({"check", path.string(), "--plugin-path", PICKLEWAY_PLUGIN_DIR});
    CHECK(empty.status == 2);
    CHECK(empty.out.find("auth.yaml:3:82: session s, endpoint a: auth: key_file " +
                         (dir / "keys/link.key").string() + " is empty") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("pickleway check prints the defaults of the options not written") {
  const auto o = check(R"(sessions:
  - name: s
    a: {transport: spawn, command: [python3, x.py], stderr: discard}
    b: {transport: tcp, connect: "127.0.0.1:7000", framing: length, retry: {initial_ms: 50}}
    filters: [log: {path: "-", format: jsonl}, newline: {a: crlf}]
  - name: l
    a: {transport: unix, listen: /tmp/pickleway-never-made.sock}
    b: {transport: spawn, command: [python3, x.py], env: {A: b}, channel: fds}
    max_instances: 3
)");
  CHECK(o.status == 0);
  CHECK_MESSAGE(o.out.find("  a: spawn python3 x.py (stderr discard) framing=pickle max_message=67108864 "
                           "on_stray=error memo=error\n    defaults: env={} channel=stdio\n") !=
                    std::string::npos,
                o.out);
  // In a section written, the options it leaves out; of one not written, nothing.
  CHECK(o.out.find("    defaults: retry.max_ms=5000 retry.attempts=0\n") != std::string::npos);
  CHECK(o.out.find("tls.") == std::string::npos);
  CHECK(o.out.find("    log defaults: dis=false hex=false hex_limit=256 max_record=1MiB queue=1024\n") !=
        std::string::npos);
  CHECK(o.out.find("    newline defaults: b=lf\n") != std::string::npos);
  CHECK(o.out.find("  instances: 1 (default)\n") != std::string::npos);
  CHECK(o.out.find("  max_instances: 3\n") != std::string::npos);
  // A transport whose every option is written has no defaults line.
  CHECK(o.out.find("unix listen /tmp/pickleway-never-made.sock framing=pickle max_message=67108864 "
                   "on_stray=error memo=error\n  filters") != std::string::npos);
  CHECK(o.out.find("threads: ") != std::string::npos);
  CHECK(o.out.find(" (default: the number of CPUs)\n") != std::string::npos);
}

TEST_CASE("the root's and a session's keys are checked like an endpoint's options") {
  struct bad {
    const char* what;
    std::string yaml;
    std::string message;
  };
  const std::string session = R"(sessions:
  - name: s
    a: {transport: spawn, command: [x]}
    b: {transport: spawn, command: [y]}
)";
  const std::string listening = R"(sessions:
  - name: s
    a: {transport: tcp, listen: "127.0.0.1:0"}
    b: {transport: spawn, command: [y]}
)";
  const bad cases[] = {
      {"metrics without listen", "metrics: {}\n" + session,
       "session.yaml:1:10: key 'metrics': option 'listen' is required"},
      {"metrics at no address", "metrics: {listen: nowhere}\n" + session,
       "session.yaml:1:19: key 'metrics': option 'listen': 'nowhere' is not an address"},
      {"metrics as a word", "metrics: on\n" + session, "session.yaml:1:10: key 'metrics' must be a map"},
      {"no thread", "threads: 0\n" + session, "session.yaml:1:10: threads must be a whole number from 1 to 1024"},
      {"threads as a word", "threads: many\n" + session, "session.yaml:1:10: key 'threads' must be an integer"},
      {"a bad grace", "grace: soon\n" + session, "session.yaml:1:8: grace must be a duration such as 2s or 500ms"},
      {"no instance", session + "    instances: 0\n",
       "session.yaml:5:16: session s: instances must be a whole number from 1"},
      {"instances of a listening session", listening + "    instances: 2\n",
       "session.yaml:5:16: session s: instances applies only to a session without a listening endpoint"},
      {"max_instances as a word", listening + "    max_instances: lots\n",
       "session.yaml:5:20: sessions[0]: key 'max_instances' must be an integer"},
      {"a session without a name", "sessions:\n  - a: {transport: spawn, command: [x]}\n",
       "session.yaml:2:5: sessions[0]: key 'name' is required"},
      {"plugin_path as a word", "plugin_path: here\n" + session,
       "session.yaml:1:14: key 'plugin_path' must be a list of strings"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto o = check(c.yaml);
    CHECK(o.status == 2);
    CHECK_MESSAGE(o.out.find(c.message) != std::string::npos, o.out);
  }
  SUBCASE("and written well, check shows them") {
    const auto o = check("metrics: {listen: \"127.0.0.1:9464\"}\nthreads: 3\n" + session +
                         "    instances: 4\n");
    CHECK(o.status == 0);
    CHECK(o.out.find("  instances: 4\n") != std::string::npos);
    CHECK(o.out.find("\nthreads: 3\nmetrics: listen 127.0.0.1:9464\nok: 1 session(s)\n") !=
          std::string::npos);
  }
}

TEST_CASE("pickleway run runs threads and instances as written") {
  const auto dir = make_temp_dir();
  const std::string session = std::string(R"(sessions:
  - name: s
    a: {transport: spawn, command: [)") + PICKLEWAY_PYTHON + R"(, -c, ""]}
    b: {transport: spawn, command: [)" + PICKLEWAY_PYTHON +
                              R"y(, -c, "import sys; sys.stdin.buffer.read()"]}
)y";
  const auto run_config = [&](const std::string& yaml) {
    const auto path = write_text(dir, "run.yaml", yaml);
    auto r = run_pickleway({"run", path.string(), "--plugin-path", PICKLEWAY_PLUGIN_DIR});
    for (std::size_t at; (at = r.out.find(path.string())) != std::string::npos;)
      r.out.replace(at, path.string().size(), "run.yaml");
    return r;
  };
  SUBCASE("one thread and one instance, written, run as without them") {
    const auto r = run_config("threads: 1\n" + session + "    instances: 1\n");
    CHECK_MESSAGE(r.exit_status == 0, r.out);
    CHECK(r.out.find("session s: 1 instance, a>b 0 messages") != std::string::npos);
  }
  SUBCASE("three instances run side by side on two threads, each named for its place") {
    const auto r = run_config("threads: 2\n" + session + "    instances: 3\n");
    CHECK_MESSAGE(r.exit_status == 0, r.out);
    CHECK_MESSAGE(r.out.find("session s: 3 instances, a>b 0 messages") != std::string::npos, r.out);
  }
  std::filesystem::remove_all(dir);
}
