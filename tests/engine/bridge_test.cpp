// `pickleway bridge A B [--filter F]...`: one session from the command
// line, run with real peers; its addresses, their YAML (--print-yaml, read
// back by check), and every error, at its argument and character.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "bridge_address.hpp"
#include "config.hpp"
#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/process.hpp"
#include "support/python_process.hpp"

using namespace pickleway;
using namespace pickleway::test;

namespace {

const std::string peer_script = std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/peer.py";

// spawn's MAIN for tests/python/peer.py, quoted for the address.
std::string peer_address(const std::string& args) {
  return "spawn:" + quote(PICKLEWAY_PYTHON) + " " + quote(peer_script) + " " + args;
}

// A stock multiprocessing.connection Client of ADDRESS (a port, or a Unix
// socket's path): sends 200 objects, checks each echo, prints "ok 200".
const char* const client_script = R"(
import sys
from multiprocessing.connection import Client
where = sys.argv[1]
address = ("127.0.0.1", int(where)) if where.isdigit() else where
with Client(address) as c:
    for i in range(200):
        sent = {"seq": i, "data": "x" * (i * 37 % 5000), "tuple": (i, -i)}
        c.send(sent)
        if c.recv() != sent:
            print("mismatch at", i, flush=True)
            sys.exit(1)
print("ok", i + 1, flush=True)
)";

run_result bridge(std::vector<std::string> args) {
  args.insert(args.begin(), "bridge");
  args.insert(args.end(), {"--plugin-path", PICKLEWAY_PLUGIN_DIR});
  return run_pickleway(args);
}

}  // namespace

TEST_CASE("pickleway bridge joins a multiprocessing.connection Client to a spawned worker") {
  SUBCASE("over tcp-listen, the port bound to 0 and read from the log") {
    gateway g(pickleway_words{{"bridge", "tcp-listen:127.0.0.1:0,framing=length", peer_address("echo"),
                               "--plugin-path", PICKLEWAY_PLUGIN_DIR}});
    const int port = g.listening_port("bridge");
    python_process client(client_script, {std::to_string(port)});
    CHECK(client.line() == "ok 200");
    CHECK(client.finish() == 0);
    CHECK(g.wait_for_line("session bridge#1: ended, a>b 200 messages, b>a 200 messages"));
    g.signal(SIGTERM);
    CHECK(g.wait() == 0);
  }
  SUBCASE("over unix-listen, with a filter") {
    const auto dir = make_temp_dir();
    const auto socket = (dir / "bridge.sock").string();
    const auto log = (dir / "messages.jsonl").string();
    gateway g(pickleway_words{{"bridge", "unix-listen:" + socket + ",framing=length", peer_address("echo"),
                               "--filter", "log,path=" + log + ",format=jsonl", "--plugin-path",
                               PICKLEWAY_PLUGIN_DIR}});
    REQUIRE(g.wait_for_line("session bridge: listening on unix " + socket));
    python_process client(client_script, {socket});
    CHECK(client.line() == "ok 200");
    CHECK(client.finish() == 0);
    CHECK(g.wait_for_line("session bridge#1: ended, a>b 200 messages, b>a 200 messages"));
    g.signal(SIGTERM);
    CHECK(g.wait() == 0);
    const auto records = read_file(log);
    CHECK(std::count(records.begin(), records.end(), '\n') == 400);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("pickleway bridge between two spawned peers ends as run does, status 0") {
  const auto dir = make_temp_dir();
  const auto report = (dir / "report.json").string();
  const auto r = bridge({peer_address("produce --small 50 --big 2 --big-size 200000 --report " + report),
                         peer_address("echo")});
  CHECK_MESSAGE(r.exit_status == 0, r.out);
  const auto got = read_file(report);
  CHECK(std::string(got.begin(), got.end()).find(R"("sent": 52, "received": 52, "ok": true)") !=
        std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("pickleway bridge --print-yaml prints the session, which check reads back as the same") {
  struct example {
    std::vector<std::string> args;
    std::vector<std::string> resolved;  // lines check prints of it
  };
  const example examples[] = {
      {{"spawn:python3 -c 'print(1, 2)' \"a \\\"b\\\"\" c\\ d ''", "stdio"},
       {"  a: spawn python3 -c 'print(1, 2)' 'a \"b\"' 'c d' '' framing=pickle",
        "  b: stdio framing=pickle"}},
      {{"tcp-listen:[::1]:0,framing=length,max_message=1MiB", "spawn:python3 w.py,stderr=discard"},
       {"  a: tcp listen [::1]:0 framing=length max_message=1048576",
        "  b: spawn python3 w.py (stderr discard) framing=pickle"}},
      {{"unix:@pickleway-test,retry.attempts=3,retry.initial_ms=50", "fifo:/tmp/in.fifo,write=/tmp/out.fifo,create=true"},
       {"  a: unix connect @pickleway-test framing=pickle", "    defaults: retry.max_ms=5000\n",
        "  b: fifo read=/tmp/in.fifo write=/tmp/out.fifo (create) framing=pickle"}},
      {{"unix-listen:/tmp/pickleway-never.sock,mode=0600", "tcp:127.0.0.1:7000,framing=length",
        "--filter", "firewall,allow=[collections.OrderedDict, mymod.*],ext=[1, 2]", "--filter",
        "compress,codec=zlib"},
       {"  filters a>b: firewall allow=2 defaults=safe ext=1,2", " -> compress codec=zlib level=6",
        "  b: tcp connect 127.0.0.1:7000 framing=length"}},
      {{"spawn:python3 w.py,env={A: '1,2', B: x}", "stdio", "--filter", "newline,a=crlf"},
       {"  filters a>b: newline a=crlf b=lf"}},
      // A control character, written escaped in the YAML.
      {{"spawn:printf 'a\tb\r'", "stdio"}, {"  a: spawn printf "}},
  };
  for (const auto& e : examples) {
    CAPTURE(e.args.front());
    std::vector<std::string> args = e.args;
    args.push_back("--print-yaml");
    const auto printed = bridge(args);
    REQUIRE_MESSAGE(printed.exit_status == 0, printed.out);
    CHECK(printed.out.starts_with("sessions:\n  - name: bridge\n"));
    const auto dir = make_temp_dir();
    const auto file = write_text(dir, "bridge.yaml", printed.out);
    const auto checked = run_pickleway({"check", file.string(), "--plugin-path", PICKLEWAY_PLUGIN_DIR});
    CHECK_MESSAGE(checked.exit_status == 0, printed.out << checked.out);
    for (const auto& line : e.resolved) CHECK_MESSAGE(checked.out.find(line) != std::string::npos, checked.out);
    std::filesystem::remove_all(dir);
  }
  SUBCASE("a redis address prints, and runs as that endpoint: here one that cannot connect") {
    const auto printed = bridge({"redis:127.0.0.1:6379,read.stream=jobs,read.group=w", peer_address("echo"),
                                 "--print-yaml"});
    CHECK(printed.exit_status == 0);
    CHECK(printed.out.find("    a:\n      transport: redis\n      address: 127.0.0.1:6379\n      read:\n"
                           "        stream: jobs\n        group: w\n") != std::string::npos);
    const auto dir = make_temp_dir();
    const std::string socket = (dir / "no-redis.sock").string();
    const auto ran = bridge({"redis:unix:" + socket + ",read.stream=jobs,read.group=w,retry.attempts=1",
                             peer_address("echo")});
    CHECK(ran.exit_status == 1);
    CHECK_MESSAGE(ran.out.find("session bridge, endpoint a (redis): redis unix:" + socket +
                               ": cannot connect: No such file or directory (attempt 1 of 1)") != std::string::npos,
                  ran.out);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("the bridge examples of docs/operations.md parse and print") {
  std::ifstream doc(std::string(PICKLEWAY_SOURCE_DIR) + "/docs/operations.md");
  std::size_t examples = 0;
  for (std::string line; std::getline(doc, line);) {
    if (!line.starts_with("pickleway bridge ") || line.find("[--") != std::string::npos) continue;
    CAPTURE(line);
    const auto r = run({"sh", "-c", quote(PICKLEWAY_BINARY) + line.substr(9) + " --print-yaml 2>&1"});
    CHECK_MESSAGE(r.exit_status == 0, r.out);
    CHECK(r.out.starts_with("sessions:\n  - name: bridge\n"));
    ++examples;
  }
  CHECK(examples >= 5);
}

TEST_CASE("spawn's command in a bridge address is split as sh splits words") {
  const auto words = [](const std::string& address) {
    node_origins origins;
    const YAML::Node endpoint = parse_endpoint_address(address, 1, origins);
    std::vector<std::string> out;
    for (const auto& w : endpoint["command"]) out.push_back(w.Scalar());
    return out;
  };
  using list = std::vector<std::string>;
  CHECK(words("spawn:python3  worker.py\t-v") == list{"python3", "worker.py", "-v"});
  CHECK(words("spawn:a 'b c' \"d \\\"e\\\"\" f\\ g '' \"\"") == list{"a", "b c", "d \"e\"", "f g", "", ""});
  CHECK(words("spawn:'a'\"b\"c") == list{"abc"});                     // one word, three quotings
  CHECK(words("spawn:echo '$HOME' \"$HOME\" \\$HOME") == list{"echo", "$HOME", "$HOME", "$HOME"});
  CHECK(words("spawn:x 'a\\b' \"a\\b\" a\\\\b") == list{"x", "a\\b", "a\\b", "a\\b"});
  CHECK(words("spawn:x 'a,b' \"c,d\" e\\,f,stderr=log") == list{"x", "a,b", "c,d", "e,f"});
  CHECK(words("spawn:x \"it's\" 'say \"hi\"'") == list{"x", "it's", "say \"hi\""});
}

TEST_CASE("a bad bridge address is refused at its argument and character, status 2") {
  struct bad {
    std::vector<std::string> args;
    std::string message;  // the first line, after "pickleway: "
    std::string caret;    // the argument and the caret under the character
  };
  const std::string echo = "stdio";
  const bad cases[] = {
      {{"", echo}, "argument 1, character 1: an endpoint is TRANSPORT:MAIN[,key=value]..., and this one is empty",
       "  \n  ^\n"},
      {{":x", echo}, "argument 1, character 1: an endpoint is TRANSPORT:MAIN[,key=value]..., and this one names no transport",
       "  :x\n  ^\n"},
      {{"t p:x", echo}, "argument 1, character 2: a transport name is letters, digits, '-', '_' and '.', not ' '",
       "  t p:x\n   ^\n"},
      {{"tpc:x:1", echo}, "argument 1, character 1: bridge knows the main option of spawn, stdio, tcp, tcp-listen, unix, unix-listen, fifo and redis, not of 'tpc': did you mean 'tcp'?",
       "  tpc:x:1\n  ^\n"},
      {{"stdio:x", echo}, "argument 1, character 6: stdio takes no main option: write stdio or stdio,key=value",
       "  stdio:x\n       ^\n"},
      {{"tcp-listen", echo}, "argument 1, character 11: tcp-listen needs its HOST:PORT: tcp-listen:HOST:PORT",
       "  tcp-listen\n            ^\n"},
      {{"tcp:", echo}, "argument 1, character 5: tcp: the HOST:PORT after 'tcp:' is missing", "  tcp:\n      ^\n"},
      {{"spawn: ,stderr=log", echo}, "argument 1, character 7: spawn: the COMMAND after 'spawn:' is missing",
       "  spawn: ,stderr=log\n        ^\n"},
      {{"spawn:python3 'x", echo}, "argument 1, character 15: a quote (') that is not closed",
       "  spawn:python3 'x\n                ^\n"},
      {{echo, "spawn:a \"b"}, "argument 2, character 9: a quote (\") that is not closed", "  spawn:a \"b\n          ^\n"},
      {{"spawn:a\\", echo}, "argument 1, character 8: a backslash at the end escapes nothing",
       "  spawn:a\\\n         ^\n"},
      {{"tcp:h:1,", echo}, "argument 1, character 9: a key=value is missing after ','", "  tcp:h:1,\n          ^\n"},
      {{"tcp:h:1,,framing=length", echo}, "argument 1, character 9: a key=value is missing after ','",
       "  tcp:h:1,,framing=length\n          ^\n"},
      {{"tcp:h:1,framing", echo}, "argument 1, character 9: 'framing' has no '=': write KEY=VALUE",
       "  tcp:h:1,framing\n          ^\n"},
      {{"tcp:h:1,=length", echo}, "argument 1, character 9: a key is missing before '='", "  tcp:h:1,=length\n          ^\n"},
      {{"tcp:h:1,fram-ing=x", echo}, "argument 1, character 13: a key is letters, digits and '_', parts joined by '.', not '-'",
       "  tcp:h:1,fram-ing=x\n              ^\n"},
      {{"tcp:h:1,retry..attempts=3", echo}, "argument 1, character 15: an empty part in the key 'retry..attempts'",
       "  tcp:h:1,retry..attempts=3\n                ^\n"},
      {{"tcp:h:1,retry.=3", echo}, "argument 1, character 15: an empty part in the key 'retry.'",
       "  tcp:h:1,retry.=3\n                ^\n"},
      {{"tcp:h:1,connect=h:2", echo}, "argument 1, character 9: 'connect' is given twice",
       "  tcp:h:1,connect=h:2\n          ^\n"},
      {{"tcp:h:1,retry=3,retry.attempts=2", echo}, "argument 1, character 17: 'retry' is given a value and keys under it",
       "  tcp:h:1,retry=3,retry.attempts=2\n                  ^\n"},
      {{"tcp:h:1,transport=unix", echo}, "argument 1, character 9: the transport is the word before ':' (tcp), not a key",
       "  tcp:h:1,transport=unix\n          ^\n"},
      {{"spawn:x,env=[a", echo}, "argument 1, character 13: a '[' that is not closed", "  spawn:x,env=[a\n              ^\n"},
      {{"spawn:x,env={a: [}", echo}, "argument 1, character 18: a '}' where ']' closes",
       "  spawn:x,env={a: [}\n                   ^\n"},
      {{"spawn:x,env={a: 'b}", echo}, "argument 1, character 17: a quote (') that is not closed",
       "  spawn:x,env={a: 'b}\n                  ^\n"},
      {{"spawn:x,env={a: b: c}", echo}, "argument 1, character 18: not YAML: end of map flow not found",
       "  spawn:x,env={a: b: c}\n                   ^\n"},
      {{"spawn:x,env=[&a [1], *a]", echo},
       "argument 1, character 14: a YAML anchor used by an alias (&name, *name) is not taken here: write "
       "the value out",
       "  spawn:x,env=[&a [1], *a]\n               ^\n"},
      {{"sp\xc3\xa9wn:x", echo}, "argument 1, character 3: a transport name is letters, digits, '-', '_' and '.', not byte 0xc3",
       "  sp\xc3\xa9wn:x\n    ^\n"},
      {{"spawn:x \xe2\x82 y", echo}, "argument 1, character 9: not UTF-8 text at byte 0xe2",
       "  spawn:x \xe2\x82 y\n          ^\n"},
      {{echo, echo, "--filter", ""}, "argument 4, character 1: a filter is NAME[,key=value]..., and this one is empty", "  \n  ^\n"},
      {{echo, echo, "--filter", "log:x"}, "argument 4, character 4: a filter takes no main option: write log,key=value",
       "  log:x\n     ^\n"},
      {{echo, echo, "--filter", "log,path"}, "argument 4, character 5: 'path' has no '=': write KEY=VALUE",
       "  log,path\n      ^\n"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args.front());
    CAPTURE(c.message);
    const auto r = bridge(c.args);
    CHECK(r.exit_status == 2);
    CHECK_MESSAGE(r.out.starts_with("pickleway: " + c.message), r.out);
    CHECK_MESSAGE(r.out.find(c.caret) != std::string::npos, r.out);
  }
}

TEST_CASE("the config reader's errors about a bridge point at the argument and the character") {
  struct bad {
    std::vector<std::string> args;
    std::string message;
  };
  const bad cases[] = {
      {{"tcp:127.0.0.1:1,colour=red", "stdio"},
       "argument 1, character 17: session bridge, endpoint a (tcp): unknown option 'colour' (known: "},
      {{"stdio", "spawn:x,stdrr=log"},
       "argument 2, character 9: session bridge, endpoint b (spawn): unknown option 'stdrr': did you mean 'stderr'?"},
      {{"tcp:nowhere", "stdio"},
       "argument 1, character 5: session bridge, endpoint a (tcp): option 'connect': 'nowhere' is not an address"},
      {{"tcp:h:1,max_message=big", "stdio"},
       "argument 1, character 21: session bridge, endpoint a: option 'max_message' must be a size"},
      {{"tcp:h:1,retry.atempts=3", "stdio"},
       "argument 1, character 15: session bridge, endpoint a (tcp): option 'retry': unknown option 'atempts': did you mean 'attempts'?"},
      {{"stdio", "spawn:x,env=[a, b]"},
       "argument 2, character 13: session bridge, endpoint b (spawn): option 'env' must be a map of strings"},
      {{"stdio", "spawn:x,env={a: b}c"},  // text that only starts as YAML does is text
       "argument 2, character 13: session bridge, endpoint b (spawn): option 'env' must be a map of strings"},
      {{"stdio", "spawn:x,env={A: [1]}"},
       "argument 2, character 17: session bridge, endpoint b (spawn): option 'env' values must be a single value"},
      {{"tcp-listen:127.0.0.1:0", "unix-listen:/tmp/x.sock"},
       "argument 2, character 1: session bridge: only one endpoint of a session may listen"},
      {{"stdio", "stdio,framing=lenght"},
       "argument 2, character 15: session bridge, endpoint b: option 'framing': 'lenght' is not one of pickle, length, link: did you mean 'length'?"},
      {{"unxi:/tmp/x", "stdio"}, "argument 1, character 1: bridge knows the main option of "},
      {{"unxi,connect=/tmp/x", "stdio"},
       "argument 1, character 1: no transport plugin named 'unxi' (searched: "},
      {{"stdio", "stdio", "--filter", "compress"},
       "argument 4, character 1: session bridge, filters[0] (compress): option 'codec' is required"},
      {{"stdio", "tcp:h:1,framing=length", "--filter", "compress,codec=zsdt"},
       "argument 4, character 16: session bridge, filters[0] (compress): option 'codec': 'zsdt' is not one of zstd, lz4, zlib: did you mean 'zstd'?"},
      {{"stdio", "stdio", "--filter", "compress,codec=zstd"},
       "argument 4, character 1: session bridge, filter compress: endpoint b must have `framing: length`"},
      {{"stdio", "stdio", "--filter", "log,path=-", "--filter", "lgo"},
       "argument 6, character 1: no filter plugin named 'lgo' (searched: "},
  };
  for (const auto& c : cases) {
    CAPTURE(c.message);
    const auto r = bridge(c.args);
    CHECK(r.exit_status == 2);
    CHECK_MESSAGE(r.out.starts_with("pickleway: " + c.message), r.out);
  }
}

TEST_CASE("a bridge command line that is not one is refused with the usage, status 2") {
  struct bad {
    std::vector<std::string> args;
    std::string message;
  };
  const bad cases[] = {
      {{"bridge", "stdio"}, "pickleway: bridge takes two endpoints, A and B\nusage: "},
      {{"bridge", "stdio", "stdio", "stdio"}, "pickleway: bridge takes two endpoints, A and B\nusage: "},
      {{"bridge", "stdio", "stdio", "--filter"}, "pickleway: --filter needs a value\nusage: "},
      {{"bridge", "stdio", "stdio", "--colour"}, "pickleway: unknown option --colour\nusage: "},
      {{"bridge", "stdio", "stdio", "--session", "x"}, "pickleway: bridge runs one session: --session does not apply\n"},
      {{"check", "x.yaml", "--print-yaml"}, "pickleway: --print-yaml is an option of bridge only\nusage: "},
      {{"run", "x.yaml", "--filter", "log"}, "pickleway: --filter is an option of bridge only\nusage: "},
  };
  for (const auto& c : cases) {
    CAPTURE(c.message);
    const auto r = run_pickleway(c.args);
    CHECK(r.exit_status == 2);
    CHECK_MESSAGE(r.out.starts_with(c.message), r.out);
  }
}
