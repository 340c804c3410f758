// The newline filter: hand-made messages of every text opcode, the corpora,
// FRAME lengths and refusals through the built plugin; then real Python
// processes on both sides of a `pickleway run` session.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>

#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/plugin_driver.hpp"
#include "support/process.hpp"

namespace pickleway::test {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

std::vector<std::uint8_t> to_bytes(std::string_view s) { return {s.begin(), s.end()}; }
std::string to_string(bytes_view b) { return {b.begin(), b.end()}; }

option_value choice(std::string value) { return {std::move(value), "test"}; }

// One instance of the filter, made as the engine makes it.
struct newline {
  std::unique_ptr<filter_factory> factory;
  std::unique_ptr<filter> instance;

  newline(const char* a, const char* b)
      : factory(make_filter("newline", options({{"a", choice(a)}, {"b", choice(b)}}))),
        instance(make_instance(*factory, open_context{"test", 1, nullptr})) {}
};

// What the filter made of one message.
struct outcome {
  filter_result result = filter_result::fail;
  bool replaced = false;
  bool same_memory = false;  // the message still shows the caller's bytes
  std::string bytes;
  std::string error;
};

outcome pass(filter& f, direction d, bytes_view input) {
  message m(input, 1);
  outcome o;
  o.result = f.on_message(d, m, o.error);
  o.replaced = m.replaced();
  o.same_memory = m.bytes().data() == input.data() && m.bytes().size() == input.size();
  o.bytes = to_string(m.bytes());
  return o;
}

outcome pass(filter& f, direction d, const std::string& input) {
  const auto bytes = to_bytes(input);
  return pass(f, d, bytes_view(bytes));
}

// `text` as a CRLF writer writes it, for messages whose only '\n' bytes end
// text arguments.
std::string crlf(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// The opcodes whose argument is a line (two for GLOBAL and INST).
const std::set<std::string> text_opcodes = {"INT",  "LONG", "FLOAT", "STRING", "UNICODE",
                                            "GLOBAL", "INST", "GET", "PUT",    "PERSID"};

// What a CRLF writer writes for a message, told from pickletools' opcode
// list alone: a '\r' before the '\n' that ends each text argument.
std::string crlf_from_genops(bytes_view m, const expected_message& e) {
  std::vector<std::size_t> ends;
  for (std::size_t i = 0; i < e.opcodes.size(); ++i) {
    const auto& o = e.opcodes[i];
    if (!text_opcodes.count(o.name)) continue;
    if (o.name == "GLOBAL" || o.name == "INST") {
      const auto line = m.begin() + static_cast<std::ptrdiff_t>(o.pos) + 1;
      ends.push_back(static_cast<std::size_t>(std::find(line, m.end(), '\n') - m.begin()));
    }
    ends.push_back((i + 1 < e.opcodes.size() ? e.opcodes[i + 1].pos : m.size()) - 1);
  }
  std::string out = to_string(m);
  for (auto it = ends.rbegin(); it != ends.rend(); ++it) {
    REQUIRE(out[*it] == '\n');
    out.insert(*it, 1, '\r');
  }
  return out;
}

bool has_opcode(const expected_message& e, const std::string& name) {
  return std::any_of(e.opcodes.begin(), e.opcodes.end(),
                     [&](const expected_opcode& o) { return o.name == name; });
}

bytes_view message_bytes(const protocol_corpus& c, const expected_message& e) {
  return bytes_view(c.stream).subspan(static_cast<std::size_t>(e.offset), e.size);
}

// An 8-byte little-endian FRAME length.
std::string le64(std::uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}

// What the pure-Python unpickler (strict about FRAME lengths) loads from
// FILE, as repr(); "error: ..." when it refuses.
std::string python_loads(const fs::path& file) {
  const auto r = run({PICKLEWAY_PYTHON, "-c",
                      "import pickle, sys\n"
                      "try: print(repr(pickle._loads(open(sys.argv[1], 'rb').read())))\n"
                      "except Exception as e: print('error:', e)\n",
                      file.string()});
  REQUIRE(r.exit_status == 0);
  return r.out;
}

// The temporary directory of one test, removed at its end.
struct temp_dir {
  fs::path path = make_temp_dir();
  ~temp_dir() { fs::remove_all(path); }
};

std::string file_text(const fs::path& path) {
  const auto bytes = read_file(path);
  return {bytes.begin(), bytes.end()};
}

}  // namespace

TEST_CASE("the filter describes itself and refuses a line end it does not know") {
  CHECK(newline("crlf", "lf").factory->describe() == "newline a=crlf b=lf");
  CHECK(make_filter("newline", options({}))->describe() == "newline a=lf b=lf (pass-through)");
  option_error error;
  CHECK(make_filter("newline", options({{"b", choice("cr")}}), &error) == nullptr);
  CHECK(error.option == "b");
  CHECK(error.message == "newline: `b` is lf or crlf, not `cr`");
}

TEST_CASE("with the same line ends on both sides every message passes untouched") {
  for (const char* side : {"lf", "crlf"}) {
    CAPTURE(side);
    newline f(side, side);
    for (const auto d : {direction::a_to_b, direction::b_to_a}) {
      for (const std::string& m : {"I1\r\n."s, "I1\n."s, "garbage"s}) {
        const auto o = pass(*f.instance, d, m);
        CHECK(o.result == filter_result::pass);
        CHECK(o.same_memory);
        CHECK_FALSE(o.replaced);
      }
    }
  }
}

TEST_CASE("a crlf side's text arguments reach an lf side with LF, and LF goes back as CRLF") {
  // Protocol 0 messages, LF as Python writes them; their only '\n' bytes end
  // text arguments.
  struct sample {
    const char* what;
    std::string lf;
  };
  const sample samples[] = {
      {"INT", "I42\nI01\n\x86."s},
      {"LONG", "L12345678901234567890L\n."s},
      {"FLOAT", "F-2.5e-10\n."s},
      {"STRING", "S'it\\'s \\r\\n'\np0\n."s},
      {"UNICODE", "Vline\\u000a two\\u000d\np0\n."s},
      {"GLOBAL", "cbuiltins\nset\np0\n((lp1\nI10\naI13\natp2\nRp3\n."s},
      {"INST", "(I10\nI13\nifractions\nFraction\np0\n."s},
      {"GET and PUT", "(lp0\nVshared\np1\nag1\na."s},
      {"PERSID", "Pref-7\n."s},
      {"an empty line", "P\n."s},
  };
  newline f("crlf", "lf");
  for (const auto& s : samples) {
    SUBCASE(s.what) {
      const std::string crlf_form = crlf(s.lf);
      const auto to_lf = pass(*f.instance, direction::a_to_b, crlf_form);
      CHECK(to_lf.result == filter_result::pass);
      CHECK(to_lf.replaced);
      CHECK(to_lf.bytes == s.lf);

      const auto to_crlf = pass(*f.instance, direction::b_to_a, s.lf);
      CHECK(to_crlf.result == filter_result::pass);
      CHECK(to_crlf.bytes == crlf_form);

      // A bare LF from the crlf side is accepted as it is.
      const auto bare = pass(*f.instance, direction::a_to_b, s.lf);
      CHECK(bare.result == filter_result::pass);
      CHECK(bare.same_memory);
      CHECK_FALSE(bare.replaced);
    }
  }
  SUBCASE("a protocol 1 message keeps the 0x0a and 0x0d bytes of its binary arguments") {
    // [<itself>, '\r\n\n', 10, 13, '\n\r', set()]: BINPUT 10 and 13,
    // BINUNICODE and BINSTRING holding CR and LF, BININT1 10 and 13, BINGET 10.
    const std::string head = "]q\n(X\x03\x00\x00\x00\r\n\nq\rK\nK\rT\x02\x00\x00\x00\n\r"s;
    const std::string lf = head + "cbuiltins\nset\nq\x1a)Rq\x0bh\ne."s;
    const std::string crlf_form = head + "cbuiltins\r\nset\r\nq\x1a)Rq\x0bh\ne."s;
    CHECK(pass(*f.instance, direction::a_to_b, crlf_form).bytes == lf);
    CHECK(pass(*f.instance, direction::b_to_a, lf).bytes == crlf_form);
  }
  SUBCASE("only the '\\r' just before a line's '\\n' is a line end's") {
    // A Python 2 u'x\r' at protocol 0 is "Vx\r\n": to CRLF it gains a '\r'.
    CHECK(pass(*f.instance, direction::b_to_a, "Vx\r\n."s).bytes == "Vx\r\r\n."s);
    CHECK(pass(*f.instance, direction::a_to_b, "Vx\r\r\n."s).bytes == "Vx\r\n."s);
  }
}

TEST_CASE("every corpus message crosses unchanged, and uncopied, unless it has text arguments") {
  newline f("crlf", "lf");
  std::size_t with_crlf_in_payload = 0;
  std::size_t translated = 0;
  for (const auto& c : corpora()) {
    CAPTURE(c.name);
    for (const auto& e : c.messages) {
      CAPTURE(e.offset);
      const bytes_view m = message_bytes(c, e);
      const bool binary = c.name != "p0";
      if (binary && to_string(m).find("\r\n") != std::string::npos) ++with_crlf_in_payload;

      // Python writes LF: towards the lf side there is never anything to do.
      const auto to_lf = pass(*f.instance, direction::a_to_b, m);
      REQUIRE(to_lf.result == filter_result::pass);
      CHECK(to_lf.same_memory);
      CHECK_FALSE(to_lf.replaced);

      // Towards the crlf side, only text arguments change.
      const auto to_crlf = pass(*f.instance, direction::b_to_a, m);
      REQUIRE_MESSAGE(to_crlf.result == filter_result::pass, to_crlf.error);
      const bool has_text =
          std::any_of(e.opcodes.begin(), e.opcodes.end(),
                      [](const auto& o) { return text_opcodes.count(o.name) > 0; });
      if (!has_text) {
        CHECK(to_crlf.same_memory);
        CHECK_FALSE(to_crlf.replaced);
      } else {
        REQUIRE_FALSE(has_opcode(e, "FRAME"));  // Python frames only protocol 4+, all binary
        CHECK(to_crlf.bytes == crlf_from_genops(m, e));
        ++translated;
      }
    }
  }
  CHECK(with_crlf_in_payload > 0);
  CHECK(translated > 0);
}

TEST_CASE("LF to CRLF and back gives every protocol 0 and 1 corpus message as it was") {
  newline f("crlf", "lf");
  std::size_t messages = 0;
  for (const auto& c : corpora()) {
    if (c.name != "p0" && c.name != "p1" && c.name != "py2") continue;
    CAPTURE(c.name);
    for (const auto& e : c.messages) {
      CAPTURE(e.offset);
      const bytes_view m = message_bytes(c, e);
      const auto there = pass(*f.instance, direction::b_to_a, m);
      REQUIRE_MESSAGE(there.result == filter_result::pass, there.error);
      const auto back = pass(*f.instance, direction::a_to_b, to_bytes(there.bytes));
      REQUIRE_MESSAGE(back.result == filter_result::pass, back.error);
      CHECK(back.bytes == to_string(m));
      ++messages;
    }
  }
  CHECK(messages >= 2000);
}

TEST_CASE("FRAME lengths count the bytes their frames hold after translation") {
  // ([1, 2.5], frozenset()) at protocol 4, in two frames that both hold
  // text arguments, and a third that holds none.
  const auto message = [](const std::string& eol) {
    const std::string one = "](I1" + eol + "F2.5" + eol + "e";
    const std::string two = "cbuiltins" + eol + "frozenset" + eol + ")R";
    const std::string three = "\x86.";
    return "\x80\x04\x95"s + le64(one.size()) + one + "\x95"s + le64(two.size()) + two +
           "\x95"s + le64(three.size()) + three;
  };
  const std::string lf = message("\n");
  const std::string crlf_form = message("\r\n");
  newline f("crlf", "lf");
  const auto to_lf = pass(*f.instance, direction::a_to_b, crlf_form);
  REQUIRE_MESSAGE(to_lf.result == filter_result::pass, to_lf.error);
  CHECK(to_lf.bytes == lf);
  const auto to_crlf = pass(*f.instance, direction::b_to_a, lf);
  REQUIRE_MESSAGE(to_crlf.result == filter_result::pass, to_crlf.error);
  CHECK(to_crlf.bytes == crlf_form);

  temp_dir dir;
  const auto translated = write_text(dir.path, "translated.pickle", to_lf.bytes);
  CHECK(python_loads(translated) == "([1, 2.5], frozenset())\n");
}

TEST_CASE("a message that would not be one whole pickle after translation is refused") {
  newline f("crlf", "lf");
  struct refusal {
    const char* what;
    std::string message;
    std::string error;
  };
  const refusal refusals[] = {
      {"bytes after its STOP", "I1\r\n.junk"s,
       "newline: translating CRLF to LF: not one pickle: 4 bytes follow the STOP opcode at offset 4"},
      {"a malformed text argument", "I1\r\nI1x\r\n\x86."s,
       "newline: translating CRLF to LF: not a pickle: offset 4: malformed text argument in INT "
       "(b'1x\\r\\n')"},
      {"a FRAME that ends inside a line",
       "\x80\x04\x95"s + le64(4) + "I12\r\n."s,
       "newline: translating CRLF to LF: not a pickle: offset 11: FRAME length does not end on an "
       "opcode boundary in INT (an opcode crosses the end of the FRAME at 15)"},
      {"a byte that is no opcode", "I1\r\n\xff."s,
       "newline: translating CRLF to LF: not a pickle: offset 4: unknown opcode 0xff"},
      {"an opcode cut short", "I1\r\nX\x05\x00\x00\x00"s + "ab",
       "newline: translating CRLF to LF: not a pickle: offset 4: the message ends before its "
       "pickle does in BINUNICODE (its argument runs past the end of the message at byte 11)"},
      {"a negative length", "I1\r\nT\xff\xff\xff\xff."s,
       "newline: translating CRLF to LF: not a pickle: offset 4: negative length in BINSTRING (-1)"},
      {"no STOP", "I1\r\n"s,
       "newline: translating CRLF to LF: not a pickle: offset 4: the message ends before its "
       "pickle does (the message ends at byte 4 without a STOP opcode)"},
  };
  for (const auto& r : refusals) {
    SUBCASE(r.what) {
      const auto o = pass(*f.instance, direction::a_to_b, r.message);
      CHECK(o.result == filter_result::fail);
      CHECK_FALSE(o.replaced);
      CHECK(o.error == r.error);
      // The next message is translated as if nothing had happened.
      CHECK(pass(*f.instance, direction::a_to_b, "I7\r\n."s).bytes == "I7\n.");
    }
  }
}

TEST_CASE("an LF writer's '\\r' that is no data is refused rather than made into a bad pickle") {
  newline f("crlf", "lf");
  // On the LF side "I1\r\n" is INT 1 with a '\r' of its own; a CRLF line
  // end makes it "1\r\r", which no unpickler reads.
  const auto o = pass(*f.instance, direction::b_to_a, "I1\r\n."s);
  CHECK(o.result == filter_result::fail);
  CHECK(o.error ==
        "newline: translating LF to CRLF would leave no whole pickle: at byte 0 of the translated "
        "message (byte 0 of the message as received): malformed text argument in INT "
        "(b'1\\r\\r\\n')");
  CHECK(pass(*f.instance, direction::b_to_a, "I7\n."s).bytes == "I7\r\n.");
}

TEST_CASE("configs/newline.yaml passes pickleway check") {
  const auto r = run({PICKLEWAY_BINARY, "check", PICKLEWAY_SOURCE_DIR "/configs/newline.yaml",
                      "--plugin-path", PICKLEWAY_PLUGIN_DIR});
  CHECK(r.exit_status == 0);
  CHECK(r.out.find("newline a=crlf b=lf") != std::string::npos);
}

// --- Real Python processes on both sides of a session ----------------------

namespace {

const std::string newline_peer_script = PICKLEWAY_SOURCE_DIR "/plugins/newline/newline_peer.py";

// A spawn `command:` running newline_peer.py, as a YAML flow list.
std::string newline_peer(const std::vector<std::string>& args) {
  std::string out = std::string("[") + PICKLEWAY_PYTHON + ", " + newline_peer_script;
  for (const auto& a : args) out += ", \"" + a + "\"";
  return out + "]";
}

// pP.lf, pP.crlf and pP.expected of one protocol, made by python3 in `dir`.
void make_streams(const fs::path& dir, int protocol) {
  REQUIRE(run({PICKLEWAY_PYTHON, newline_peer_script, "make", dir.string(),
               std::to_string(protocol)})
              .exit_status == 0);
}

std::string session(const std::string& a_command, const std::string& b_command,
                    bool with_filter) {
  std::string yaml = "sessions:\n  - name: windows\n    a: {transport: spawn, command: " +
                     a_command + "}\n    b: {transport: spawn, command: " + b_command + "}\n";
  if (with_filter) yaml += "    filters:\n      - newline: {a: crlf, b: lf}\n";
  return yaml;
}

// Feeds pP.crlf from a to a checker on b; the checker's report.
std::string crlf_to_checker(const fs::path& dir, int protocol, bool with_filter,
                            std::string& log) {
  const std::string p = (dir / (std::string("p").append(std::to_string(protocol)))).string();
  const auto report = dir / "report.json";
  const auto config = write_text(
      dir, "session.yaml",
      session(peer_command({"raw", p + ".crlf"}),
              newline_peer({"check", p + ".expected", report.string()}), with_filter));
  gateway g(config);
  const auto status = g.wait();
  log = g.log();
  CHECK(status == 0);
  return file_text(report);
}

}  // namespace

TEST_CASE("a stream written with CRLF line ends reaches CPython intact through the filter") {
  int protocol = 0;
  SUBCASE("protocol 0") { protocol = 0; }
  SUBCASE("protocol 1") { protocol = 1; }
  temp_dir dir;
  make_streams(dir.path, protocol);
  std::string log;
  const auto report = crlf_to_checker(dir.path, protocol, true, log);
  CAPTURE(log);
  // The checker also says so when fewer messages came than were sent.
  CHECK(report.find(R"("ok": true, "errors": [])") != std::string::npos);
}

TEST_CASE("without the filter CPython refuses the same CRLF stream") {
  int protocol = 0;
  SUBCASE("protocol 0") { protocol = 0; }
  SUBCASE("protocol 1") { protocol = 1; }
  temp_dir dir;
  make_streams(dir.path, protocol);
  std::string log;
  const auto report = crlf_to_checker(dir.path, protocol, false, log);
  CAPTURE(log);
  CHECK(report.find(R"("ok": false)") != std::string::npos);
  // Python's repr of the name, its backslash escaped again by JSON.
  CHECK(report.find(protocol == 0
                        ? "message 1: UnpicklingError: the STRING opcode argument must be quoted"
                        : "message 2: ModuleNotFoundError: No module named 'fractions\\\\r'") !=
        std::string::npos);
}

TEST_CASE("going to the crlf side, an LF writer's stream becomes what a CRLF writer writes") {
  int protocol = 0;
  SUBCASE("protocol 0") { protocol = 0; }
  SUBCASE("protocol 1") { protocol = 1; }
  temp_dir dir;
  make_streams(dir.path, protocol);
  const std::string p = (dir.path / (std::string("p").append(std::to_string(protocol)))).string();
  const auto captured = dir.path / "captured";
  const auto config = write_text(
      dir.path, "session.yaml",
      session(newline_peer({"capture", captured.string()}), peer_command({"raw", p + ".lf"}),
              true));
  gateway g(config);
  CHECK(g.wait() == 0);
  CAPTURE(g.log());
  CHECK(read_file(captured) == read_file(p + ".crlf"));
  CHECK(read_file(captured) != read_file(p + ".lf"));
}

}  // namespace pickleway::test
