// The firewall filter: its judge over hostile pickles (each refused, naming
// what it imports and where) and over the benign corpus (all let through);
// the allowlist's semantics; the built plugin's options, refusals and drops;
// then real Python processes on both sides of a `pickleway run` session.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "judge.hpp"
#include "policy.hpp"
#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/plugin_driver.hpp"
#include "support/process.hpp"

namespace pickleway::test {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using firewall::ext_mode;
using firewall::judge;
using firewall::policy;

const std::string here = PICKLEWAY_SOURCE_DIR "/plugins/firewall/";

std::vector<std::uint8_t> to_bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<std::uint8_t> from_hex(std::string_view hex) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

// What the judge says of `bytes` under `p`: "" when it passes, else the
// refusal as the filter words it (offsets from the message start).
std::string verdict(const policy& p, std::string_view bytes) {
  judge j(p);
  const auto data = to_bytes(bytes);
  const auto r = j.check(data);
  return r ? firewall::describe(*r, 0) : "";
}

policy with_allowed(std::initializer_list<std::string_view> entries, bool safe = true) {
  policy p;
  p.set_safe_defaults(safe);
  for (const auto e : entries) REQUIRE_FALSE(p.add_allowed(e));
  return p;
}

// A protocol 4 message: STACK_GLOBAL module, name, called with no arguments.
std::string stack_global_call(std::string_view module, std::string_view name) {
  std::string m = "\x80\x04";
  for (const auto s : {module, name}) {
    m += '\x8c';
    m += static_cast<char>(s.size());
    m += s;
  }
  return m + "\x93)R.";
}

struct hostile_case {
  std::string name;
  std::string subject;
  std::size_t offset = 0;
  std::vector<std::uint8_t> bytes;
};

std::vector<hostile_case> hostile_cases() {
  const auto r = run({PICKLEWAY_PYTHON, here + "hostile.py"});
  REQUIRE(r.exit_status == 0);
  std::vector<hostile_case> cases;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    hostile_case c;
    std::string offset, hex;
    std::getline(fields, c.name, '\t');
    std::getline(fields, c.subject, '\t');
    std::getline(fields, offset, '\t');
    std::getline(fields, hex, '\t');
    c.offset = std::stoul(offset);
    c.bytes = from_hex(hex);
    cases.push_back(std::move(c));
  }
  REQUIRE(cases.size() >= 40);
  return cases;
}

// A log sink that keeps its lines.
struct captured_log final : log_sink {
  std::vector<std::string> lines;
  void line(std::string_view text) noexcept override { lines.emplace_back(text); }
};

option_value text(std::string value) { return {std::move(value), "test"}; }

// The temporary directory of one test, removed at its end.
struct temp_dir {
  fs::path path = make_temp_dir();
  ~temp_dir() { fs::remove_all(path); }
};

}  // namespace

// --- The judge ---------------------------------------------------------------

TEST_CASE("every hostile pickle is refused, naming what it imports and the opcode's offset") {
  const policy defaults;  // defaults: safe, ext: deny, persid: deny
  judge j(defaults);      // one judge for all: its buffers are reused
  for (const auto& c : hostile_cases()) {
    CAPTURE(c.name);
    const auto r = j.check(c.bytes);
    REQUIRE(r.has_value());
    CHECK(r->subject == c.subject);
    CHECK(r->offset == c.offset);
  }
}

TEST_CASE("the refusal reads: refused SUBJECT at offset N: CAUSE") {
  const policy defaults;
  CHECK(verdict(defaults, "cos\nsystem\n(S'ls'\ntR.") ==
        "refused os.system at offset 0: global not allowed");
  CHECK(verdict(defaults, std::string("\x80\x02\x82\x07.", 5)) ==
        "refused extension code 7 at offset 2: extension codes are denied");
  CHECK(verdict(defaults, "P1\n.") == "refused persistent id at offset 0: persistent ids are denied");
  CHECK(verdict(defaults, stack_global_call("os\r", "system")) ==
        "refused os\\x0d.system at offset 15: global not allowed");
}

TEST_CASE("every message of the benign corpus passes") {
  // defaults: safe, plus what the corpus's own code needs, stated here:
  // make_corpus.py's classes live in __main__ (nested ones listed whole);
  // it pickles os.path.join, len, functools.partial, types.SimpleNamespace,
  // type(None) & co. by reference, and bound methods through getattr; its
  // extension codes and persistent ids are its own.
  policy p = with_allowed({"__main__.*", "__main__.Outer.Inner", "__main__.Outer.Inner.Deepest",
                           "posixpath.join", "builtins.len", "builtins.getattr",
                           "builtins.type", "builtins.NotImplemented", "builtins.Ellipsis",
                           "functools.partial", "types.SimpleNamespace", "copyreg.__newobj__"});
  p.set_ext(ext_mode::allow);
  p.set_persid(true);
  judge j(p);
  std::size_t messages = 0;
  std::size_t partial_calls = 0;
  for (const auto& corpus : corpora()) {
    CAPTURE(corpus.name);
    for (const auto& e : corpus.messages) {
      const auto bytes = bytes_view(corpus.stream).subspan(static_cast<std::size_t>(e.offset), e.size);
      const auto r = j.check(bytes);
      ++messages;
      // At protocols 2 and 3, pickle writes an object whose
      // __getnewargs_ex__ has keyword arguments as a call of a
      // functools.partial of its class's __new__.
      const std::string text(bytes.begin(), bytes.end());
      partial_calls += text.find("functools\npartial\n") != std::string::npos &&
                       text.find("KeywordNew") != std::string::npos;
      CAPTURE(e.offset);
      CHECK_MESSAGE(!r, (r ? firewall::describe(*r, 0) : ""));
    }
  }
  CHECK(messages > 6000);
  CHECK(partial_calls == 4);  // two messages at each of protocols 2 and 3
}

TEST_CASE("the corpus's plain data passes with defaults: safe alone") {
  // Protocols 0-5 pickles of builtin and standard types only.
  const std::string values =
      "import collections, datetime, decimal, fractions, uuid, pickle, sys\n"
      "values = [{1, 2}, frozenset({3}), bytearray(b'x'), b'bytes', b'', complex(1, 2),\n"
      "  slice(1, 2), range(3), collections.OrderedDict(a=1), collections.deque([1], 3),\n"
      "  collections.Counter('abca'), collections.defaultdict(list, k=[1]),\n"
      "  datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),\n"
      "  datetime.date(2024, 2, 29), datetime.time(1, 2), datetime.timedelta(3),\n"
      "  decimal.Decimal('1.5'), fractions.Fraction(1, 3),\n"
      "  uuid.UUID('12345678-1234-5678-1234-567812345678')]\n"
      "for p in range(6):\n"
      "  for v in values: print(pickle.dumps(v, p).hex())\n";
  const auto r = run({PICKLEWAY_PYTHON, "-c", values});
  REQUIRE(r.exit_status == 0);
  const policy defaults;
  judge j(defaults);
  std::istringstream lines(r.out);
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    CAPTURE(count);
    const auto bytes = from_hex(line);
    const auto refused = j.check(bytes);
    CHECK_MESSAGE(!refused, (refused ? firewall::describe(*refused, 0) : ""));
  }
  CHECK(count == 6 * 19);
}

TEST_CASE("mutants of the corpus that the judge passes import, call and change, as CPython loads them, only what it allows") {
  // Bytes flipped, cut, and spliced in from other messages or from a list
  // of opcodes an attacker reaches for; whatever the judge lets through is
  // loaded by CPython's own unpicklers, whose find_class and
  // persistent_load refuse (and record) anything outside defaults: safe.
  const policy defaults;
  judge j(defaults);
  std::vector<std::vector<std::uint8_t>> seeds;
  for (const auto& corpus : corpora())
    for (const auto& e : corpus.messages)
      if (e.size < 2000) {
        const auto b = bytes_view(corpus.stream).subspan(static_cast<std::size_t>(e.offset), e.size);
        seeds.emplace_back(b.begin(), b.end());
      }
  REQUIRE(seeds.size() > 1000);
  const std::string splices[] = {
      "\x93", "R", "b", "0", "2", "(", "1", "\x94", "h\x00"s, "h\x01", "q\x00"s, "q\x01", "\x81",
      "\x85", "\x86", "s", "a", "t", "\x8c\x02os", "\x8c\x06system", "\x8c\x08" "builtins",
      "\x8c\x04" "eval", "Vos\n", "cbuiltins\ngetattr\n", "cos\nsystem\n"};
  std::mt19937 rng(20240229);
  const auto below = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  temp_dir dir;
  std::ofstream out(dir.path / "passed", std::ios::binary);
  int passed = 0;
  for (int i = 0; i < 30000; ++i) {
    std::vector<std::uint8_t> m = seeds[below(seeds.size())];
    for (std::size_t edits = 1 + below(6); edits-- > 0 && !m.empty();) {
      const auto at = static_cast<std::ptrdiff_t>(below(m.size()));
      switch (below(4)) {
        case 0: m[static_cast<std::size_t>(at)] = static_cast<std::uint8_t>(rng()); break;
        case 1: m.erase(m.begin() + at); break;
        case 2: {
          const auto& s = splices[below(std::size(splices))];
          m.insert(m.begin() + at, s.begin(), s.end());
          break;
        }
        default: {
          const auto& o = seeds[below(seeds.size())];
          const auto from = below(o.size());
          const auto n = below(std::min<std::size_t>(16, o.size() - from) + 1);
          m.insert(m.begin() + at, o.begin() + static_cast<std::ptrdiff_t>(from),
                   o.begin() + static_cast<std::ptrdiff_t>(from + n));
        }
      }
    }
    if (j.check(m)) continue;
    const std::uint32_t size = static_cast<std::uint32_t>(m.size());
    const char length[4] = {static_cast<char>(size), static_cast<char>(size >> 8),
                            static_cast<char>(size >> 16), static_cast<char>(size >> 24)};
    out.write(length, 4);
    out.write(reinterpret_cast<const char*>(m.data()), static_cast<std::streamsize>(m.size()));
    ++passed;
  }
  out.close();
  std::ofstream names(dir.path / "allowed");
  for (const auto& n : firewall::safe_default_names()) names << n << "\n";
  names.close();
  const auto r = run({PICKLEWAY_PYTHON, here + "find_class_check.py", (dir.path / "allowed").string(),
                      (dir.path / "passed").string()});
  REQUIRE(r.exit_status == 0);
  CAPTURE(r.out);
  CHECK(passed > 1000);  // enough mutants get through to say something
  CHECK(r.out.find(" violations 0\n") != std::string::npos);
}

TEST_CASE("module.name allows exactly that name, module.* the names directly in module") {
  const policy p = with_allowed({"pkg.exact", "mod.*"}, false);
  CHECK(verdict(p, "cpkg\nexact\n)R.") == "");
  CHECK(verdict(p, "cpkg\nother\n)R.") == "refused pkg.other at offset 0: global not allowed");
  CHECK(verdict(p, "cmod\nanything\n)R.") == "");
  SUBCASE("a dotted name below module.* is not in it") {
    CHECK(verdict(p, stack_global_call("mod", "a.b")) ==
          "refused mod.a.b at offset 12: global not allowed");
  }
  SUBCASE("nor the module's machinery") {
    CHECK(verdict(p, stack_global_call("mod", "__builtins__")) ==
          "refused mod.__builtins__ at offset 21: global not allowed");
    CHECK(verdict(p, stack_global_call("mod", "__getattr__")) ==
          "refused mod.__getattr__ at offset 20: global not allowed");
    CHECK(verdict(p, stack_global_call("mod", "_private")) == "");
    CHECK(verdict(with_allowed({"mod.__getattr__"}), stack_global_call("mod", "__getattr__")) == "");
  }
  SUBCASE("nor is a submodule") {
    CHECK(verdict(p, "cmod.sub\nx\n)R.") == "refused mod.sub.x at offset 0: global not allowed");
    CHECK(verdict(with_allowed({"mod.sub.*"}), "cmod.sub\nx\n)R.") == "");
  }
  SUBCASE("os.path.* never reaches os.system through posixpath's os") {
    const policy os_path = with_allowed({"os.path.*"});
    CHECK(verdict(os_path, stack_global_call("os.path", "join")) == "");
    CHECK(verdict(os_path, stack_global_call("os.path", "os.system")) ==
          "refused os.path.os.system at offset 22: global not allowed");
  }
}

TEST_CASE("a nested class is listed whole, whichever way the protocol reaches it") {
  const policy p = with_allowed({"m.Outer", "m.Outer.Inner"}, false);
  // Protocol 4: STACK_GLOBAL with the qualified name.
  CHECK(verdict(p, stack_global_call("m", "Outer.Inner")) == "");
  CHECK(verdict(p, stack_global_call("m", "Outer.Other")) ==
        "refused m.Outer.Other at offset 18: global not allowed");
  // Protocols 0-3: getattr(m.Outer, 'Inner'), judged as m.Outer.Inner.
  const std::string via_getattr =
      "\x80\x02\x63\x62uiltins\ngetattr\ncm\nOuter\nX\x05\x00\x00\x00Inner\x86R)R."s;
  CHECK(verdict(p, via_getattr) == "");
  std::string other = via_getattr;
  other.replace(other.find("Inner"), 5, "Other");
  CHECK(verdict(p, other) == "refused m.Outer.Other at offset 40: global not allowed");
}

TEST_CASE("names are judged after the Python 2 mapping at the protocol in force where they are imported") {
  // _compat_pickle maps commands.getoutput to subprocess.getoutput: a name
  // that looks harmless to a reader without the mapping.
  const policy p = with_allowed({"commands.*"});
  CHECK(verdict(p, "ccommands\ngetoutput\n(S'ls'\ntR.") ==
        "refused subprocess.getoutput at offset 0: global not allowed");
  CHECK(verdict(p, "\x80\x02\x63\x63ommands\ngetoutput\n)R.") ==
        "refused subprocess.getoutput at offset 2: global not allowed");
  // From protocol 3 on, find_class maps nothing.
  CHECK(verdict(p, "\x80\x03\x63\x63ommands\ngetoutput\n)R.") == "");
  // A PROTO can come again, anywhere: the protocol in force counts.
  CHECK(verdict(p, "\x80\x03\x80\x02\x63\x63ommands\ngetoutput\n)R.") ==
        "refused subprocess.getoutput at offset 4: global not allowed");
  CHECK(verdict(p, std::string("\x80\x04\x8c\x08\x63ommands\x8c\x09getoutput\x80\x02\x93)R.")) ==
        "refused subprocess.getoutput at offset 25: global not allowed");
  CHECK(verdict(policy{}, "c__builtin__\nxrange\n(I3\ntR.") == "");  // builtins.range
}

TEST_CASE("defaults: none lets through only the allowlist") {
  const std::string set_of_list = "c__builtin__\nset\n((lI1\natR.";
  CHECK(verdict(policy{}, set_of_list) == "");
  CHECK(verdict(with_allowed({}, false), set_of_list) ==
        "refused builtins.set at offset 0: global not allowed");
  CHECK(verdict(with_allowed({"builtins.set"}, false), set_of_list) == "");
}

TEST_CASE("ext takes a list of codes, and persid: allow lets persistent ids through") {
  policy p;
  p.set_ext(ext_mode::listed, {7, 300});
  CHECK(verdict(p, std::string("\x80\x02\x82\x07.", 5)) == "");
  CHECK(verdict(p, std::string("\x80\x02\x83\x2c\x01.", 6)) == "");
  CHECK(verdict(p, std::string("\x80\x02\x82\x08.", 5)) ==
        "refused extension code 8 at offset 2: not an allowed extension code");
  p.set_ext(ext_mode::allow);
  CHECK(verdict(p, std::string("\x80\x02\x84\xff\xff\xff\x7f.", 8)) == "");
  CHECK(verdict(p, "P1\n.") == "refused persistent id at offset 0: persistent ids are denied");
  p.set_persid(true);
  CHECK(verdict(p, "P1\n.") == "");
  CHECK(verdict(p, "\x80\x02K\x01Q.") == "");
  // Its object is the application's: BUILD may not change it.
  CHECK(verdict(p, "\x80\x02K\x01Q}b.") ==
        "refused an object at offset 6: BUILD would change an object this message did not make");
}

TEST_CASE("copyreg's constructors are allowed on allowed classes only") {
  const policy p = with_allowed({"m.C"});
  CHECK(verdict(p, "ccopy_reg\n_reconstructor\n(cm\nC\nc__builtin__\nobject\nNtR}b.") == "");
  CHECK(verdict(p, "\x80\x02\x63\x63opyreg\n__newobj__\ncm\nC\n\x85R}b.") == "");
  CHECK(verdict(p, "\x80\x02\x63m\nC\n)\x81}b.") == "");
  // The base counts too: it is called on the new object.
  CHECK(verdict(p, "ccopy_reg\n_reconstructor\n(cm\nC\ncm\nD\nNtR.") ==
        "refused m.D at offset 31: global not allowed");
  // Arguments that are not a tuple made here are not known.
  CHECK(verdict(p, "ccopy_reg\n_reconstructor\n(cm\nC\nc__builtin__\nobject\nNlR.") ==
        "refused a call at offset 53: arguments that are not a tuple made in this message");
}

// A reused Unpickler keeps its memo from message to message: MEMOIZE then
// stores at another index, and a GET may fetch an earlier message's object.
TEST_CASE("with unpickler: reused, a message that means something else to a reused Unpickler is refused") {
  // Message 1 leaves fractions.Fraction at memo 0. Message 2 memoizes a
  // dict of its own, gets memo 0 and gives it state: to a fresh Unpickler
  // its own dict, to a reused one the class, whose attribute it sets.
  using namespace std::string_literals;
  const std::string first = "\x80\x04" "cfractions\nFraction\nq\x00."s;
  const std::string second = "\x80\x04}\x94" "0h\x00N}\x8c\x06pwned_K\x01s\x86" "b."s;
  std::string hex;
  for (const char ch : first + second) {
    const auto c = static_cast<unsigned char>(ch);
    hex += "0123456789abcdef"[c >> 4];
    hex += "0123456789abcdef"[c & 15];
  }
  const auto loaded = run({PICKLEWAY_PYTHON, "-c",
                           "import io, fractions, pickle, sys\n"
                           "u = pickle.Unpickler(io.BytesIO(bytes.fromhex(sys.argv[1])))\n"
                           "u.load(); u.load()\n"
                           "print(getattr(fractions.Fraction, 'pwned_', None))",
                           hex});
  CHECK(loaded.out == "1\n");  // CPython: the class changed for the whole process

  policy fresh;
  judge for_fresh(fresh);
  CHECK_FALSE(for_fresh.check(to_bytes(first)));
  CHECK_FALSE(for_fresh.check(to_bytes(second)));  // a fresh Unpickler builds its own dict

  policy reused;
  reused.set_reused_unpickler(true);
  judge for_reused(reused);
  CHECK_FALSE(for_reused.check(to_bytes(first)));
  const auto refused = for_reused.check(to_bytes(second));
  REQUIRE(refused);
  CHECK(refused->offset == 21);  // the BUILD
  SUBCASE("each message alone passes: only the memo carried over makes the difference") {
    CHECK(verdict(reused, second) == "");
  }
}

TEST_CASE("with unpickler: reused, a stream a reused Unpickler would misread is refused from its second message") {
  // pickle.dumps per message: each message's memo starts at 0, and the
  // second global from `datetime` takes its module name from the memo.
  const auto made = run({PICKLEWAY_PYTHON, "-c",
                         "import datetime, pickle, sys\n"
                         "for i in range(3):\n"
                         "    sys.stdout.write(pickle.dumps([datetime.date(2020, 1, 1 + i), "
                         "datetime.timedelta(i)], 4).hex() + '\\n')"});
  std::vector<std::vector<std::uint8_t>> messages;
  std::istringstream lines(made.out);
  for (std::string line; std::getline(lines, line);) messages.push_back(from_hex(line));
  REQUIRE(messages.size() == 3);

  policy fresh;
  judge for_fresh(fresh);
  for (const auto& m : messages) CHECK_FALSE(for_fresh.check(m));

  policy reused;
  reused.set_reused_unpickler(true);
  judge for_reused(reused);
  CHECK_FALSE(for_reused.check(messages[0]));
  const auto refused = for_reused.check(messages[1]);
  REQUIRE(refused);
  CHECK(refused->subject == "a computed global");
}

TEST_CASE("a PUT index CPython reads but no pickler writes is refused, not guessed") {
  CHECK(verdict(policy{}, "Vx\np1_0\n.") ==
        "refused message at offset 3: not a whole pickle: malformed text argument in PUT (b'1_0\\n')");
  CHECK(verdict(policy{}, "Vx\np1\r\ng1\r\n.") == "");
}

// --- The plugin --------------------------------------------------------------

TEST_CASE("the filter describes its options and refuses malformed ones") {
  CHECK(make_filter("firewall", options({}))->describe() ==
        "firewall allow=0 defaults=safe ext=deny persid=deny on_deny=error unpickler=fresh");
  CHECK(make_filter("firewall", options({{"allow", {option_value::list{"a.b", "c.*"}, "t"}},
                                         {"defaults", text("none")},
                                         {"ext", {option_value::list{"1", "2", "300"}, "t"}},
                                         {"persid", text("allow")},
                                         {"on_deny", text("drop")},
                                         {"unpickler", text("reused")}}))
            ->describe() ==
        "firewall allow=2 defaults=none ext=1,2,300 persid=allow on_deny=drop unpickler=reused");
  option_error error;
  for (const char* bad : {"os", "os.", ".x", "a..b", "a.*.b", "a b.c"}) {
    CAPTURE(bad);
    CHECK(make_filter("firewall", options({{"allow", {option_value::list{bad}, "t"}}}), &error) ==
          nullptr);
    CHECK(error.option == "allow");
  }
  for (const auto& bad : {option_value::list{"0"}, option_value::list{"1", "x"},
                         option_value::list{"2147483648"}, option_value::list{"7 "},
                         option_value::list{}}) {
    CAPTURE(bad.size());
    CHECK(make_filter("firewall", options({{"ext", {bad, "t"}}}), &error) == nullptr);
    CHECK(error.option == "ext");
  }
}

TEST_CASE("on_deny: error fails the instance with the global and the stream offset") {
  auto factory = make_filter("firewall", options({}));
  auto f = make_instance(*factory, open_context{"test", 1, nullptr});
  const auto hostile = to_bytes("cos\nsystem\n(S'ls'\ntR.");
  const auto benign = to_bytes("\x80\x02]q\x00."s);
  std::string error;
  message ok(benign, 1, 100);
  CHECK(f->on_message(direction::a_to_b, ok, error) == filter_result::pass);
  message bad(hostile, 2, 1000);
  CHECK(f->on_message(direction::b_to_a, bad, error) == filter_result::fail);
  CHECK(error == "firewall: refused os.system at offset 1000: global not allowed");
}

TEST_CASE("on_deny: drop logs and counts each refused message and goes on") {
  auto factory = make_filter("firewall", options({{"on_deny", text("drop")}}));
  captured_log log;
  auto f = make_instance(*factory, open_context{"test", 1, &log});
  const auto hostile = to_bytes("\x80\x02\x63\x62uiltins\neval\nX\x01\x00\x00\x00\x31\x85R."s);
  const auto benign = to_bytes("\x80\x02]q\x00."s);
  std::string error;
  for (std::uint64_t i = 1; i <= 4; ++i) {
    message m(i % 2 ? hostile : benign, i, 10 * i);
    CHECK(f->on_message(direction::a_to_b, m, error) ==
          (i % 2 ? filter_result::drop : filter_result::pass));
  }
  CHECK(error.empty());
  REQUIRE(log.lines.size() == 2);
  CHECK(log.lines[0] ==
        "firewall: refused builtins.eval at offset 12: global not allowed; message 1 a>b dropped");
  CHECK(f->on_end(direction::a_to_b, error) == filter_result::pass);
  CHECK(f->on_end(direction::b_to_a, error) == filter_result::pass);
  REQUIRE(log.lines.size() == 4);
  CHECK(log.lines[2] == "firewall: a>b ended, 2 messages refused and dropped");
  CHECK(log.lines[3] == "firewall: b>a ended, 0 messages refused and dropped");
}

TEST_CASE("configs/firewall.yaml passes pickleway check") {
  const auto r = run({PICKLEWAY_BINARY, "check", PICKLEWAY_SOURCE_DIR "/configs/firewall.yaml",
                      "--plugin-path", PICKLEWAY_PLUGIN_DIR});
  CHECK(r.exit_status == 0);
  CHECK(r.out.find("firewall allow=") != std::string::npos);
}

// --- Real Python processes on both sides of a session ------------------------

namespace {

std::string peer(const std::string& command, const fs::path& path) {
  return std::string("[") + PICKLEWAY_PYTHON + ", " + here + "firewall_peer.py, " + command +
         ", \"" + path.string() + "\"]";
}

std::string file_text(const fs::path& path) {
  const auto bytes = read_file(path);
  return {bytes.begin(), bytes.end()};
}

// A producer with a hostile message among benign ones, a pickle.load
// consumer behind the firewall; pickleway's exit status and log.
std::pair<std::optional<int>, std::string> through_firewall(const fs::path& dir,
                                                            const std::string& on_deny) {
  const auto config = write_text(
      dir, "session.yaml",
      "sessions:\n  - name: guarded\n    a: {transport: spawn, command: " +
          peer("produce", dir / "marker") + "}\n    b: {transport: spawn, command: " +
          peer("consume", dir / "report") + "}\n    filters:\n      - firewall: {on_deny: " +
          on_deny + "}\n");
  gateway g(config);
  const auto status = g.wait();
  return {status, g.log()};
}

}  // namespace

TEST_CASE("the hostile message creates its marker when CPython loads it directly") {
  temp_dir dir;
  REQUIRE(run({PICKLEWAY_PYTHON, here + "firewall_peer.py", "attack", (dir.path / "marker").string()})
              .exit_status == 0);
  CHECK(fs::exists(dir.path / "marker"));
}

TEST_CASE("with on_deny: error the session fails at the hostile message, which never arrives") {
  temp_dir dir;
  const auto [status, log] = through_firewall(dir.path, "error");
  CAPTURE(log);
  CHECK(status == 1);
  // The hostile message is the fourth; open() is io.open.
  const auto where = run({PICKLEWAY_PYTHON, here + "firewall_peer.py", "where",
                          (dir.path / "marker").string()});
  REQUIRE(where.exit_status == 0);
  std::istringstream numbers(where.out);
  std::uint64_t start = 0, import = 0;
  numbers >> start >> import;
  REQUIRE(start > 0);
  CHECK(log.find("session guarded, endpoint a (spawn): offset " + std::to_string(start) +
                 ": firewall: refused io.open at offset " + std::to_string(start + import) +
                 ": global not allowed") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "marker"));
  // The consumer read the three messages before it, then a clean EOF.
  CHECK(file_text(dir.path / "report") == "0\n1\n2\nend\n");
}

TEST_CASE("with on_deny: drop the consumer gets every benign message and the drop is logged") {
  temp_dir dir;
  const auto [status, log] = through_firewall(dir.path, "drop");
  CAPTURE(log);
  CHECK(status == 0);
  CHECK_FALSE(fs::exists(dir.path / "marker"));
  CHECK(file_text(dir.path / "report") == "0\n1\n2\n3\n4\n5\nend\n");
  CHECK(log.find("firewall: refused io.open at offset ") != std::string::npos);
  CHECK(log.find("message 4 a>b dropped") != std::string::npos);
  CHECK(log.find("firewall: a>b ended, 1 message refused and dropped") != std::string::npos);
}

}  // namespace pickleway::test
