// The log filter: its records against the corpus, the framer, Python's own
// unpickler and pickletools; a log that cannot keep up; a real session.
//
// A filter's records are read after the filter and its factory are
// destroyed: that joins the writer thread, which writes everything queued
// first, so no test waits for the file.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <latch>
#include <mutex>
#include <sstream>
#include <thread>

#include "pickleway/disassembler.hpp"
#include "pickleway/fd_stream.hpp"
#include "pickleway/framer.hpp"
#include "pickleway/python_repr.hpp"
#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/plugin_driver.hpp"
#include "support/process.hpp"

namespace pickleway::test {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

// --- a JSON reader, for the flat objects the log writes -------------------

struct json_value {
  enum class kind { string, number, null, array } what = kind::null;
  std::string text;                // string
  std::int64_t number = 0;         // number
  std::vector<std::string> items;  // array (of strings)
};

// The members of one JSON object, in the order written.
using json_object = std::vector<std::pair<std::string, json_value>>;

class json_reader {
 public:
  explicit json_reader(std::string_view text) : text_(text) {}

  // nullopt when the text is not one object of the shapes above.
  std::optional<json_object> object() {
    json_object members;
    if (!take('{')) return std::nullopt;
    if (take('}')) return finished(members);
    do {
      std::string key;
      if (!string(key) || !take(':')) return std::nullopt;
      json_value v;
      if (!value(v)) return std::nullopt;
      members.emplace_back(std::move(key), std::move(v));
    } while (take(','));
    if (!take('}')) return std::nullopt;
    return finished(members);
  }

 private:
  std::optional<json_object> finished(json_object& members) {
    if (pos_ != text_.size()) return std::nullopt;
    return std::move(members);
  }
  bool take(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool value(json_value& v) {
    if (text_.substr(pos_, 4) == "null") {
      pos_ += 4;
      v.what = json_value::kind::null;
      return true;
    }
    if (pos_ < text_.size() && text_[pos_] == '"') {
      v.what = json_value::kind::string;
      return string(v.text);
    }
    if (take('[')) {
      v.what = json_value::kind::array;
      if (take(']')) return true;
      do {
        std::string item;
        if (!string(item)) return false;
        v.items.push_back(std::move(item));
      } while (take(','));
      return take(']');
    }
    const std::size_t start = pos_;
    if (take('-')) {}
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (pos_ == start) return false;
    v.what = json_value::kind::number;
    v.number = std::stoll(std::string(text_.substr(start, pos_ - start)));
    return true;
  }
  static void append_utf8(std::string& out, std::uint32_t c) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  bool string(std::string& out) {
    if (!take('"')) return false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;  // must be escaped
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) return false;
      const char e = text_[pos_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          if (pos_ + 4 > text_.size()) return false;
          const auto code = static_cast<std::uint32_t>(
              std::stoul(std::string(text_.substr(pos_, 4)), nullptr, 16));
          pos_ += 4;
          append_utf8(out, code);
          break;
        }
        default: return false;
      }
    }
    return false;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

const json_value& field(const json_object& o, const std::string& name) {
  static const json_value missing;
  for (const auto& [key, value] : o)
    if (key == name) return value;
  return missing;
}

std::vector<std::string> keys(const json_object& o) {
  std::vector<std::string> k;
  for (const auto& member : o) k.push_back(member.first);
  return k;
}

const std::vector<std::string> contract_fields = {"ts",   "session", "instance", "dir",
                                                  "seq",  "size",    "proto",    "type",
                                                  "globals", "error"};

// --- driving the filter ----------------------------------------------------

// What the instances' log sink received.
class recording_sink final : public log_sink {
 public:
  void line(std::string_view text) noexcept override {
    const std::lock_guard lock(mutex_);
    lines_.emplace_back(text);
  }
  std::vector<std::string> lines() {
    const std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

option_value text(std::string s) { return {std::move(s), "test"}; }
option_value number(std::int64_t n) { return {n, "test"}; }
option_value flag(bool b) { return {b, "test"}; }

bytes_view view(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string read_text(const fs::path& path) {
  const auto bytes = read_file(path);
  return {bytes.begin(), bytes.end()};
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<json_object> parse_jsonl(const std::string& text) {
  std::vector<json_object> records;
  for (const auto& line : split_lines(text)) {
    auto o = json_reader(line).object();
    REQUIRE_MESSAGE(o, "not a JSON object: " << line);
    records.push_back(std::move(*o));
  }
  return records;
}

// One message as the pump hands it to a filter.
struct sent {
  std::string bytes;
  direction dir = direction::a_to_b;
  std::uint64_t sequence = 1;
};

// Runs `messages` through one log instance made with `values`, ends it,
// and returns what the log file holds.
std::string log_of(const std::vector<sent>& messages,
                   std::initializer_list<std::pair<std::string, option_value>> values) {
  const auto dir = make_temp_dir();
  const auto path = dir / "log";
  auto all = options(values);
  all.set("path", text(path.string()));
  {
    auto factory = make_filter("log", all);
    recording_sink sink;
    auto f = make_instance(*factory, open_context{"test", 1, &sink});
    for (const auto& m : messages) {
      message msg(view(m.bytes), m.sequence);
      std::string error;
      REQUIRE(f->on_message(m.dir, msg, error) == filter_result::pass);
      CHECK_FALSE(msg.replaced());  // it only observes
    }
    f.reset();
    CHECK_MESSAGE(sink.lines().empty(), "records were dropped");
  }  // the factory too: the writer writes all and is joined
  std::string content = read_text(path);
  fs::remove_all(dir);
  return content;
}

std::string bytes_of(const protocol_corpus& c, const expected_message& m) {
  return {c.stream.begin() + static_cast<std::ptrdiff_t>(m.offset),
          c.stream.begin() + static_cast<std::ptrdiff_t>(m.offset + m.size)};
}

// Every message of a corpus, alternately a>b and b>a, each way numbered 1, 2, ...
std::vector<sent> corpus_messages(const protocol_corpus& c, std::size_t limit = SIZE_MAX) {
  std::vector<sent> out;
  std::uint64_t sequence[2] = {0, 0};
  for (const auto& m : c.messages) {
    if (out.size() == limit) break;
    const std::size_t way = out.size() % 2;
    out.push_back({bytes_of(c, m), way ? direction::b_to_a : direction::a_to_b, ++sequence[way]});
  }
  return out;
}

// What the framer says of each message of a stream.
// Each message's protocol and the globals it names, as CPython's own
// (pure Python) Unpickler finds them: a line "PROTO\tmodule.name\t..." per
// message, or "-" where it cannot load it with every global a stub.
const char* const python_globals = R"(
import io, pickle, pickletools, sys
sys.set_int_max_str_digits(0)
class Stub:
    def __init__(self, *args, **kwargs): pass
    def __call__(self, *args, **kwargs): return Stub()
    def __setstate__(self, state): pass
class Recorder(pickle._Unpickler):
    def __init__(self, f):
        super().__init__(f)
        self.names = []
    def find_class(self, module, name):
        self.names.append(module + '.' + name)
        return Stub
    def persistent_load(self, pid):
        return Stub()
data = open(sys.argv[1], 'rb').read()
f = io.BytesIO(data)
while f.tell() < len(data):
    start = f.tell()
    ops = list(pickletools.genops(f))
    proto = ops[0][1] if ops[0][0].name == 'PROTO' else max(op.proto for op, _, _ in ops)
    loader = Recorder(io.BytesIO(data[start:f.tell()]))
    try:
        loader.load()
        print('\t'.join([str(proto)] + loader.names))
    except Exception:
        print('-')
)";

std::string hex(bytes_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (const std::uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xF];
  }
  return out;
}

std::string from_hex(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i + 1 < text.size(); i += 2)
    out += static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
  return out;
}

// The type the log gives each of `messages`, as jsonl says it.
std::vector<std::string> types_of(const std::vector<std::string>& messages) {
  std::vector<sent> in;
  for (const auto& m : messages) in.push_back({m, direction::a_to_b, in.size() + 1});
  std::vector<std::string> types;
  for (const auto& r : parse_jsonl(log_of(in, {{"format", text("jsonl")}, {"queue", number(1 << 20)}})))
    types.push_back(field(r, "type").text);
  return types;
}

// Python run over a file of pickles, printing a line per message.
std::vector<std::string> python_lines(const std::string& code, const std::vector<std::uint8_t>& stream) {
  const auto dir = make_temp_dir();
  const auto path = dir / "stream";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(stream.data()), static_cast<std::streamsize>(stream.size()));
  }
  const auto r = run({PICKLEWAY_PYTHON, "-c", code, path.string()});
  fs::remove_all(dir);
  REQUIRE(r.exit_status == 0);
  return split_lines(r.out);
}

// The type of what Python's unpickler builds from each message, in the
// log's words; "-" where it cannot build it from the names allowed here
// (which run no code beyond making standard types).
const char* const python_types = R"(
import io, pickle, pickletools, sys
sys.set_int_max_str_digits(0)
BUILTIN_TYPES = {'set', 'frozenset', 'bytearray', 'bytes', 'complex', 'range', 'slice',
                 'object', 'list', 'dict', 'int', 'float', 'str', 'tuple', 'bool'}
ALLOWED = {
    'builtins': BUILTIN_TYPES, '__builtin__': BUILTIN_TYPES,
    'collections': {'OrderedDict', 'deque', 'Counter', 'defaultdict'},
    'datetime': {'date', 'time', 'datetime', 'timedelta', 'timezone'},
    'decimal': {'Decimal'}, 'fractions': {'Fraction'}, 'uuid': {'UUID'},
    'types': {'SimpleNamespace'}, '_codecs': {'encode'},
    'copyreg': {'_reconstructor'}, 'copy_reg': {'_reconstructor'},
}
class Loader(pickle.Unpickler):
    def find_class(self, module, name):
        if name not in ALLOWED.get(module, ()):
            raise pickle.UnpicklingError('refused')
        return super().find_class(module, name)
    def persistent_load(self, pid):
        raise pickle.UnpicklingError('persistent id')
def type_of(obj):
    if isinstance(obj, type):
        return '-'  # a global itself: not what this compares
    if obj is None:
        return 'None'
    t = type(obj)
    name = t.__qualname__ if t.__module__ == 'builtins' else t.__module__ + '.' + t.__qualname__
    if t in (list, tuple, dict, set, frozenset):
        name += '(%d)' % len(obj)
    return name
data = open(sys.argv[1], 'rb').read()
f = io.BytesIO(data)
while f.tell() < len(data):
    start = f.tell()
    for _ in pickletools.genops(f):
        pass
    try:
        print(type_of(Loader(io.BytesIO(data[start:f.tell()])).load()))
    except Exception:
        print('-')
)";

// Seconds between an RFC 3339 UTC timestamp with microseconds and now.
double seconds_from_now(const std::string& ts) {
  // 2024-05-01T12:00:00.123456Z
  const std::string shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  bool shaped = ts.size() == shape.size();
  for (std::size_t i = 0; shaped && i < ts.size(); ++i)
    shaped = shape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(ts[i])) != 0 : ts[i] == shape[i];
  REQUIRE_MESSAGE(shaped, ts);
  std::tm t{};
  REQUIRE(::strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &t) != nullptr);
  const double when = static_cast<double>(::timegm(&t)) + std::stod(ts.substr(19, 7));
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return now - when;
}

}  // namespace

TEST_CASE("jsonl records carry exactly the contract's fields, one per message, for the corpus") {
  for (const auto& c : corpora()) {
    CAPTURE(c.name);
    const auto messages = corpus_messages(c);
    const auto expected = python_lines(python_globals, c.stream);
    REQUIRE(expected.size() == messages.size());
    std::size_t compared = 0;
    const auto records = parse_jsonl(log_of(messages, {{"format", text("jsonl")}, {"queue", number(1 << 20)}}));
    REQUIRE(records.size() == messages.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      CAPTURE(i);
      const auto& r = records[i];
      REQUIRE(keys(r) == contract_fields);
      CHECK(field(r, "ts").what == json_value::kind::string);
      CHECK(field(r, "session").text == "test");
      CHECK(field(r, "instance").number == 1);
      CHECK(field(r, "dir").text == std::string(to_string(messages[i].dir)));
      CHECK(field(r, "seq").number == static_cast<std::int64_t>(messages[i].sequence));
      CHECK(field(r, "size").number == static_cast<std::int64_t>(messages[i].bytes.size()));
      CHECK(field(r, "globals").what == json_value::kind::array);
      CHECK(field(r, "type").what == json_value::kind::string);
      CHECK(field(r, "error").what == json_value::kind::null);
      if (expected[i] == "-") continue;
      ++compared;
      std::vector<std::string> globals;
      std::istringstream line(expected[i]);
      std::string proto;
      std::getline(line, proto, '\t');
      for (std::string name; std::getline(line, name, '\t');) globals.push_back(name);
      CHECK(field(r, "proto").number == std::stoi(proto));
      CHECK(field(r, "globals").items == globals);
    }
    MESSAGE(c.name << ": globals of " << compared << " of " << messages.size() << " messages compared");
    CHECK(compared > messages.size() * 9 / 10);
  }
}

TEST_CASE("the type of each corpus message is what Python's unpickler builds") {
  for (const auto& c : corpora()) {
    CAPTURE(c.name);
    const auto python = python_lines(python_types, c.stream);
    std::vector<std::string> messages;
    for (const auto& m : c.messages) messages.push_back(bytes_of(c, m));
    const auto types = types_of(messages);
    REQUIRE(python.size() == messages.size());
    REQUIRE(types.size() == messages.size());
    std::size_t compared = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      if (python[i] == "-") continue;
      ++compared;
      CAPTURE(i);
      CAPTURE(bytes_repr(view(messages[i])));
      CHECK(types[i] == python[i]);
    }
    MESSAGE(c.name << ": " << compared << " of " << messages.size() << " messages compared");
    CHECK(compared > messages.size() / 2);
  }
}

TEST_CASE("the type names an instance after what built it") {
  SUBCASE("a class instance that Python pickles, at every protocol") {
    const auto lines = split_lines(
        run({PICKLEWAY_PYTHON, "-c",
             "import pickle\n"
             "class Plain:\n    pass\n"
             "class Reduced:\n    def __reduce__(self): return (Reduced, ())\n"
             "class Kw:\n"
             "    def __new__(cls, *a, **k): return super().__new__(cls)\n"
             "    def __getnewargs_ex__(self): return ((1,), {'k': 2})\n"
             "for p in range(6):\n"
             "    for name, o in (('__main__.Plain', Plain()), ('__main__.Reduced', Reduced()),\n"
             "                    ('list(1)', [Plain()])):\n"
             "        print(name, pickle.dumps(o, p).hex())\n"
             "    if p >= 4: print('__main__.Kw', pickle.dumps(Kw(), p).hex())\n"})
            .out);
    std::vector<std::string> expected, messages;
    for (const auto& l : lines) {
      expected.push_back(l.substr(0, l.find(' ')));
      messages.push_back(from_hex(l.substr(l.find(' ') + 1)));
    }
    const auto types = types_of(messages);
    REQUIRE(types.size() == 20);
    for (std::size_t i = 0; i < types.size(); ++i) {
      CAPTURE(bytes_repr(view(messages[i])));
      CHECK(types[i] == expected[i]);
    }
  }
  SUBCASE("each opcode that builds one") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"(imymod\nMyClass\n."s, "mymod.MyClass"},                 // INST
        {"(cmymod\nMyClass\no."s, "mymod.MyClass"},                // OBJ
        {"cmymod\nMyClass\n)R."s, "mymod.MyClass"},                // REDUCE
        {"\x80\x02" "cmymod\nMyClass\n)\x81."s, "mymod.MyClass"},  // NEWOBJ
        {"\x80\x04\x8c\x05mymod\x8c\x07MyClass\x93)}\x92."s, "mymod.MyClass"},  // NEWOBJ_EX
        {"c__builtin__\ncomplex\n(F1.0\ntR."s, "complex"},         // builtins dropped
        {"cbuiltins\n\n)R."s, "builtins."},  // an empty name keeps its module: never no type
        {"ccopy_reg\n_reconstructor\n(cmymod\nC\nc__builtin__\nobject\nNtR."s, "mymod.C"},
        {"\x80\x02" "c__builtin__\nset\n]K\x01\x61\x85R."s, "set(1)"},
        {"\x80\x02" "c_codecs\nencode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00latin1\x86R."s, "bytes"},
    };
    std::vector<std::string> messages;
    for (const auto& c : cases) messages.push_back(c.first);
    const auto types = types_of(messages);
    REQUIRE(types.size() == cases.size());
    for (std::size_t i = 0; i < cases.size(); ++i) {
      CAPTURE(bytes_repr(view(cases[i].first)));
      CHECK(types[i] == cases[i].second);
    }
  }
}

TEST_CASE("the type says what a value is when it is no plain object") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"cmymod\nf\n."s, "<global mymod.f>"},
      {"\x80\x04N\x8c\x01" "f\x93."s, "<global ?>"},   // a module computed at load time
      {"\x80\x04N\x8c\x01" "f\x93)R."s, "<instance>"},
      {"\x80\x02\x82\x2a."s, "<extension 42>"},
      {"\x80\x02\x82\x2a)\x81."s, "<instance of extension 42>"},
      {"\x80\x02K\x01Q."s, "<persistent id>"},
      {"Pkey\n."s, "<persistent id>"},
      {"\x80\x05\x97."s, "<buffer>"},
      {"\x80\x02h\x05."s, "<unknown>"},  // a memo entry of an earlier message
      {"I01\n."s, "bool"},
      {"I7\n."s, "int"},
      {"\x80\x02]q\x00(h\x00h\x00" "e."s, "list(2)"},
      {"\x80\x02}q\x00(K\x01K\x02K\x03K\x04u."s, "dict(2)"},
      {"\x80\x02K\x01K\x02\x86."s, "tuple(2)"},
      {"(K\x01K\x02l."s, "list(2)"},
      {"\x80\x04\x8f(K\x01K\x02\x90."s, "set(2)"},
      {"\x80\x04(K\x01\x91."s, "frozenset(1)"},
      {"\x80\x05\x96\x02\x00\x00\x00\x00\x00\x00\x00" "ab."s, "bytearray"},
      {"\x80\x02]q\x00(K\x01K\x02" "e0h\x00."s, "list(2)"},  // popped, then fetched
  };
  std::vector<std::string> messages;
  for (const auto& c : cases) messages.push_back(c.first);
  const auto types = types_of(messages);
  REQUIRE(types.size() == cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(bytes_repr(view(cases[i].first)));
    CHECK(types[i] == cases[i].second);
  }
}

TEST_CASE("a message that is no pickle is logged with the cause and passed on") {
  const std::vector<std::string> bad = {
      "\xff"s,                  // no opcode
      "\x80\x05\x95\x10"s,      // cut inside
      "N.N."s,                  // two pickles in one message
      ""s,                      // nothing
  };
  std::vector<sent> in;
  for (const auto& b : bad) in.push_back({b, direction::b_to_a, in.size() + 1});
  in.push_back({"\x80\x05K\x01.", direction::b_to_a, in.size() + 1});  // and the next is fine
  const auto records = parse_jsonl(log_of(in, {{"format", text("jsonl")}}));
  REQUIRE(records.size() == 5);
  for (std::size_t i = 0; i < records.size(); ++i) REQUIRE(keys(records[i]) == contract_fields);
  CHECK(field(records[0], "error").text == "offset 0: unknown opcode 0xff");
  CHECK(field(records[0], "proto").what == json_value::kind::null);
  CHECK(field(records[0], "type").what == json_value::kind::null);
  CHECK(field(records[1], "error").text.find("offset 2: the message ends before its pickle does in FRAME") == 0);
  CHECK(field(records[2], "error").text == "2 bytes after the pickle's STOP at offset 1");
  CHECK(field(records[2], "type").text == "None");
  CHECK(field(records[3], "error").text == "empty message");
  CHECK(field(records[3], "size").number == 0);
  CHECK(field(records[4], "error").what == json_value::kind::null);
  CHECK(field(records[4], "type").text == "int");
}

TEST_CASE("text records are one readable line per message") {
  const std::vector<sent> in = {
      {"\x80\x04}\x94\x8c\x01" "a\x94K\x01s."s,
       direction::a_to_b, 1},
      {"cmymod\nf\n."s, direction::b_to_a, 1},
      {"\xff"s, direction::a_to_b, 2},
      {"\x80\x04\x8c\x03" "a\nb\x8c\x02\xff\x01\x93."s, direction::b_to_a, 2},
  };
  const auto lines = split_lines(log_of(in, {}));
  REQUIRE(lines.size() == 4);
  for (const auto& line : lines) CHECK(std::abs(seconds_from_now(line.substr(0, 27))) < 60);
  CHECK(lines[0].substr(27) == " test#1 a>b seq=1 size=12 proto=4 type=dict(1)");
  CHECK(lines[1].substr(27) == " test#1 b>a seq=1 size=10 proto=0 type=<global mymod.f> globals=mymod.f");
  CHECK(lines[2].substr(27).find(" test#1 a>b seq=2 size=1 error: offset 0: unknown opcode") == 0);
  // Names are the pickle's to choose: a newline or a byte that is not
  // UTF-8 is escaped, so the record stays one line.
  CHECK(lines[3].substr(27) ==
        " test#1 b>a seq=2 size=13 proto=4 type=<global a\\x0ab.\\xff\\x01> globals=a\\x0ab.\\xff\\x01");
}

TEST_CASE("jsonl escapes what a pickle names, as Python's json reads it") {
  const std::vector<sent> in = {
      {"\x80\x04\x8c\x03" "a\nb\x8c\x03\"\xff\\\x93."s, direction::a_to_b, 1},
      {"\x80\x04\x8c\x02\xc3\xa9\x8c\x01\x7f\x93."s, direction::a_to_b, 2},
  };
  const auto content = log_of(in, {{"format", text("jsonl")}});
  const auto records = parse_jsonl(content);
  REQUIRE(records.size() == 2);
  CHECK(field(records[0], "globals").items == std::vector<std::string>{"a\nb.\"\xef\xbf\xbd\\"});
  CHECK(field(records[1], "globals").items == std::vector<std::string>{"\xc3\xa9.\x7f"});
  const auto dir = make_temp_dir();
  const auto path = write_text(dir, "log.jsonl", content);
  const auto python = run({PICKLEWAY_PYTHON, "-c",
                           "import json, sys\n"
                           "for line in open(sys.argv[1], encoding='utf-8'):\n"
                           "    print(json.loads(line)['globals'][0].encode('unicode_escape').decode())\n",
                           path.string()});
  fs::remove_all(dir);
  CHECK(python.exit_status == 0);
  CHECK(python.out == "a\\nb.\"\\ufffd\\\\\n\\xe9.\\x7f\n");
}

TEST_CASE("dis: true adds the message's disassembly, as pickletools prints it") {
  const auto& c = corpora().at(4);  // p4: frames, memo, globals
  const auto messages = corpus_messages(c, 300);
  SUBCASE("in jsonl, as a field") {
    const auto records = parse_jsonl(log_of(messages, {{"format", text("jsonl")}, {"dis", flag(true)}}));
    REQUIRE(records.size() == messages.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      CAPTURE(i);
      auto expected_keys = contract_fields;
      expected_keys.push_back("dis");
      REQUIRE(keys(records[i]) == expected_keys);
      const dis_text dis = disassemble_message(view(messages[i].bytes));
      REQUIRE(dis.problem.empty());
      CHECK(field(records[i], "dis").text == dis.text);
    }
  }
  SUBCASE("in text, indented under the record's line") {
    const auto lines = split_lines(log_of({messages[0]}, {{"dis", flag(true)}}));
    const dis_text dis = disassemble_message(view(messages[0].bytes));
    REQUIRE(dis.problem.empty());
    const auto dis_lines = split_lines(dis.text);
    REQUIRE(lines.size() == 1 + dis_lines.size());
    for (std::size_t i = 0; i < dis_lines.size(); ++i) CHECK(lines[1 + i] == "    " + dis_lines[i]);
  }
}

TEST_CASE("records are cut at max_record with a marker, a jsonl record staying one JSON object") {
  // 3000 globals (GLOBAL, then POP), then None: a long globals list and a
  // long disassembly.
  std::string many;
  for (int i = 0; i < 3000; ++i) many += "cmodule" + std::to_string(i) + "\nname\n0";
  many += "N.";
  const std::string marker = "\xe2\x80\xa6truncated";  // U+2026
  const std::size_t max_record = 4096;
  SUBCASE("jsonl") {
    const std::string log = log_of({{many}, {"\x80\x05K\x01."}},
                                   {{"format", text("jsonl")}, {"dis", flag(true)},
                                    {"max_record", number(max_record)}});
    const auto lines = split_lines(log);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].size() + 1 <= max_record);
    const auto records = parse_jsonl(log);
    auto expected_keys = contract_fields;
    expected_keys.push_back("dis");
    CHECK(keys(records[0]) == expected_keys);
    const auto& globals = field(records[0], "globals").items;
    REQUIRE(globals.size() > 10);
    CHECK(globals.size() < 3000);
    CHECK(globals.front() == "module0.name");
    CHECK(globals.back().ends_with(marker));
    CHECK(field(records[0], "type").text == "None");
    CHECK(field(records[0], "dis").text.ends_with(marker));  // no room was left for it
    CHECK(field(records[1], "dis").text.find("BININT1") != std::string::npos);  // the next is whole
  }
  SUBCASE("text") {
    const std::string log = log_of({{many}}, {{"dis", flag(true)}, {"max_record", number(max_record)}});
    CHECK(log.size() <= max_record);
    CHECK(log.ends_with(marker + "\n"));
    CHECK(log.find("globals=module0.name,module1.name") != std::string::npos);
  }
  SUBCASE("names that JSON escapes sixfold still fit (a fuzz finding)") {
    // A GLOBAL whose module holds 52 NULs, each \u0000 in JSON, and a
    // stack underflow: every field is cut, at the least max_record.
    const std::string named =
        "\x63\x5f\x5f\x62\x30\x69\x6c\x74\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x69\x6e\x5f\x5f\x0a\x73\x74\x0a\x65\x71\x00\x28"
        "\x5d\x71\x01\x28\x47\x40\x55\xba\x09\x94\xbd\xd1\x50\x28\x4b\x5b\x4b\x61\x74\x71\x02\x4a\x86\xff"
        "\xff\xff\x4b\xff\x65\x74\x71\x03\x52\x71\x04\x2e"s;
    const std::string log = log_of({{named}}, {{"format", text("jsonl")}, {"dis", flag(true)},
                                                {"hex", flag(true)}, {"max_record", number(1024)}});
    CHECK(log.size() <= 1024);
    REQUIRE(parse_jsonl(log).size() == 1);
  }
  SUBCASE("the disassembly of 200,000 nested MARKs stops at the default 1MiB") {
    const std::string marks = "\x80\x05" + std::string(200000, '(') + "N.";
    const auto records =
        parse_jsonl(log_of({{marks}}, {{"format", text("jsonl")}, {"dis", flag(true)}}));
    REQUIRE(records.size() == 1);
    const std::string& dis = field(records[0], "dis").text;
    CHECK(dis.size() <= std::size_t{1} << 20);
    CHECK(dis.ends_with("\xe2\x80\xa6truncated\n"));
    // Indentation stops growing at a depth of 64: "(", the code column's
    // padding and a space, then 4 spaces a level.
    CHECK(dis.find("(" + std::string(4 + 4 * 64, ' ') + "MARK") != std::string::npos);
    CHECK(dis.find("(" + std::string(4 + 4 * 65, ' ') + "MARK") == std::string::npos);
  }
}

TEST_CASE("hex: true dumps each message, at most hex_limit bytes of it") {
  std::string big = "\x80\x04\x8e";  // BINBYTES8 of 100 bytes
  const std::string payload(100, 'x');
  big += std::string("\x64\x00\x00\x00\x00\x00\x00\x00", 8) + payload + ".";
  const std::vector<sent> in = {{"\x80\x02N."s, direction::a_to_b, 1},
                                {big, direction::a_to_b, 2}};
  SUBCASE("in jsonl, as a hex string") {
    const auto records = parse_jsonl(log_of(in, {{"format", text("jsonl")}, {"hex", flag(true)}, {"hex_limit", number(40)}}));
    REQUIRE(records.size() == 2);
    auto expected_keys = contract_fields;
    expected_keys.push_back("hex");
    CHECK(keys(records[0]) == expected_keys);
    CHECK(field(records[0], "hex").text == "80024e2e");
    CHECK(field(records[1], "hex").text == hex(view(big).first(40)));
    CHECK(field(records[1], "size").number == static_cast<std::int64_t>(big.size()));
  }
  SUBCASE("in text, as hexdump -C does, then what is left out") {
    const auto lines = split_lines(log_of(in, {{"hex", flag(true)}, {"hex_limit", number(40)}}));
    REQUIRE(lines.size() == 2 + 1 + 3 + 1);
    CHECK(lines[1] == "    00000000  80 02 4e 2e" + std::string(39, ' ') + "|..N.|");
    CHECK(lines[3] == "    00000000  80 04 8e 64 00 00 00 00  00 00 00 78 78 78 78 78  |...d.......xxxxx|");
    CHECK(lines[4] == "    00000010  78 78 78 78 78 78 78 78  78 78 78 78 78 78 78 78  |xxxxxxxxxxxxxxxx|");
    CHECK(lines[5] == "    00000020  78 78 78 78 78 78 78 78" + std::string(27, ' ') + "|xxxxxxxx|");
    CHECK(lines[6] == "    ... " + std::to_string(big.size() - 40) + " more bytes");
  }
}

TEST_CASE("instances of a session share the file, each record whole and each instance in order") {
  const auto dir = make_temp_dir();
  const auto path = dir / "shared.jsonl";
  constexpr int count = 2000;
  {
    auto factory = make_filter("log", options({{"path", text(path.string())},
                                               {"format", text("jsonl")},
                                               {"queue", number(10 * count)}}));
    std::vector<std::unique_ptr<filter>> instances;
    for (std::uint64_t i = 1; i <= 3; ++i) instances.push_back(make_instance(*factory, open_context{"shared", i, nullptr}));
    factory.reset();  // the instances keep the writer
    const std::string pickle("\x80\x05K\x07.");
    for (int n = 1; n <= count; ++n) {
      for (auto& f : instances) {
        message m(view(pickle), static_cast<std::uint64_t>(n));
        std::string error;
        f->on_message(direction::a_to_b, m, error);
      }
    }
  }
  const auto records = parse_jsonl(read_text(path));
  REQUIRE(records.size() == 3 * count);
  std::int64_t last[4] = {0, 0, 0, 0};
  for (const auto& r : records) {
    const auto instance = field(r, "instance").number;
    REQUIRE(instance >= 1);
    REQUIRE(instance <= 3);
    CHECK(field(r, "seq").number == ++last[instance]);
  }
  fs::remove_all(dir);
}

// The threads of this process that write logs, as the kernel names them.
std::size_t writer_threads() {
  std::size_t n = 0;
  for (const auto& task : fs::directory_iterator("/proc/self/task"))
    if (read_text(task.path() / "comm") == "log-writer\n") ++n;
  return n;
}

TEST_CASE("instances made on several loops at once share one writer thread") {
  const auto dir = make_temp_dir();
  const auto path = dir / "shared.jsonl";
  constexpr std::size_t makers = 8;
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    auto factory = make_filter("log", options({{"path", text(path.string())}, {"format", text("jsonl")}}));
    std::vector<std::unique_ptr<filter>> instances(makers);
    {
      std::latch go(makers);
      std::vector<std::jthread> loops;
      for (std::size_t k = 0; k < makers; ++k)
        loops.emplace_back([&, k] {
          go.arrive_and_wait();
          instances[k] = make_instance(*factory, open_context{"shared", k + 1, nullptr});
        });
    }
    CHECK(writer_threads() == 1);
  }
  fs::remove_all(dir);
}

TEST_CASE("a log that takes nothing drops records and counts them, never blocking the data path") {
  const auto dir = make_temp_dir();
  const auto fifo = dir / "log.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // The test holds the reading end and reads nothing: the FIFO fills up.
  unique_fd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  REQUIRE(reader);
  ::fcntl(reader.get(), F_SETPIPE_SZ, 4096);  // a small pipe fills sooner

  auto factory = make_filter("log", options({{"path", text(fifo.string())},
                                             {"format", text("jsonl")},
                                             {"queue", number(4)}}));
  recording_sink sink;
  auto f = make_instance(*factory, open_context{"full", 1, &sink});
  const std::string pickle("\x80\x05\x8c\x10" "sixteen bytes!!!\x94.");
  const auto send = [&](std::uint64_t sequence) {
    message m(view(pickle), sequence);
    std::string error;
    REQUIRE(f->on_message(direction::a_to_b, m, error) == filter_result::pass);
  };
  // The first record shows the writer has opened the FIFO.
  send(1);
  REQUIRE(wait_ready(reader.get(), false, 10s));
  constexpr std::uint64_t count = 5000;
  auto flood = std::async(std::launch::async, [&] {
    for (std::uint64_t n = 2; n <= count; ++n) send(n);
  });
  CHECK_MESSAGE(flood.wait_for(10s) == std::future_status::ready,
                "on_message waited for the log");

  // Now read it all while the filter and the factory end: the writer
  // writes what it holds, with the count of what it dropped, then closes.
  std::string content;
  std::thread drain([&] {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    char chunk[65536];
    while (std::chrono::steady_clock::now() < deadline) {
      if (!wait_ready(reader.get(), false, 100ms)) continue;
      const ssize_t n = ::read(reader.get(), chunk, sizeof chunk);
      if (n == 0) return;  // the writer closed: all is written
      if (n > 0) content.append(chunk, static_cast<std::size_t>(n));
    }
  });
  flood.wait();
  f.reset();
  factory.reset();
  drain.join();

  const auto records = parse_jsonl(content);
  REQUIRE(records.size() >= 2);
  const auto& summary = records.back();
  CHECK(keys(summary) == std::vector<std::string>{"ts", "session", "instance", "dropped"});
  const auto dropped = static_cast<std::uint64_t>(field(summary, "dropped").number);
  const std::uint64_t written = records.size() - 1;
  CHECK(dropped > 0);
  CHECK(written + dropped == count);
  std::int64_t last = 0;
  for (std::size_t i = 0; i + 1 < records.size(); ++i) {
    CHECK(field(records[i], "seq").number > last);
    last = field(records[i], "seq").number;
  }
  const auto lines = sink.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "log: " + std::to_string(dropped) + " records dropped: the log's queue was full");
  fs::remove_all(dir);
}

TEST_CASE("at the end, a log that takes nothing holds nothing up, and what it lost is said") {
  const auto dir = make_temp_dir();
  const auto fifo = dir / "log.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  unique_fd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  REQUIRE(reader);
  ::fcntl(reader.get(), F_SETPIPE_SZ, 4096);
  auto factory = make_filter("log", options({{"path", text(fifo.string())}, {"queue", number(100)}}));
  recording_sink sink;
  auto f = make_instance(*factory, open_context{"stuck", 1, &sink});
  const std::string pickle("\x80\x05\x8c\x10" "sixteen bytes!!!\x94.");
  for (std::uint64_t n = 1; n <= 100; ++n) {
    message m(view(pickle), n);
    std::string error;
    f->on_message(direction::a_to_b, m, error);
    if (n == 1) REQUIRE(wait_ready(reader.get(), false, 10s));  // the FIFO is open
  }
  // pickleway's standard error, where the writer reports, into a file.
  const auto captured = dir / "stderr";
  unique_fd saved(::dup(STDERR_FILENO));
  {
    unique_fd file(::open(captured.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    REQUIRE(file);
    REQUIRE(::dup2(file.get(), STDERR_FILENO) == STDERR_FILENO);
  }
  auto ended = std::async(std::launch::async, [&] {
    f.reset();
    factory.reset();
  });
  const bool prompt = ended.wait_for(5s) == std::future_status::ready;
  char chunk[65536];
  while (ended.wait_for(10ms) != std::future_status::ready) {
    [[maybe_unused]] const auto n = ::read(reader.get(), chunk, sizeof chunk);  // unstick it
  }
  ::dup2(saved.get(), STDERR_FILENO);
  CHECK_MESSAGE(prompt, "the end waited for the log's reader");
  const std::string said = read_text(captured);
  CHECK(said.rfind("pickleway: log " + fifo.string() + ": ", 0) == 0);
  CHECK(said.find(" records not written (the log did not take them within 500 ms of the end)\n") !=
        std::string::npos);
  CHECK(sink.lines().empty());  // none was dropped: the queue held them all
  fs::remove_all(dir);
}

TEST_CASE("the log refuses options it could not work with") {
  const auto dir = make_temp_dir();
  const auto refused = [&](std::initializer_list<std::pair<std::string, option_value>> values) {
    option_error error;
    auto f = make_filter("log", options(values), &error);
    CHECK(f == nullptr);
    return error;
  };
  CHECK(refused({{"path", text((dir / "missing" / "log").string())}}).message.find("no directory") != std::string::npos);
  CHECK(refused({{"path", text(dir.string())}}).message.find("is a directory") != std::string::npos);
  CHECK(refused({{"path", text("")}}).option == "path");
  CHECK(refused({{"path", text("-")}, {"queue", number(0)}}).option == "queue");
  CHECK(refused({{"path", text("-")}, {"hex_limit", number(0)}}).option == "hex_limit");
  CHECK(refused({{"path", text("-")}, {"max_record", number(1023)}}).option == "max_record");
  // Checking the options creates nothing.
  auto ok = make_filter("log", options({{"path", text((dir / "later.log").string())}}));
  CHECK(ok->describe() == "log path=" + (dir / "later.log").string() + " format=text max_record=1048576 queue=1024");
  ok.reset();
  CHECK_FALSE(fs::exists(dir / "later.log"));
  fs::remove_all(dir);
}

TEST_CASE("a session logs every message between two Python processes, and the data arrives intact") {
  const auto dir = make_temp_dir();
  const auto report = dir / "report.json";
  const auto log = dir / "flow.jsonl";
  const auto config = write_text(dir, "log.yaml", R"(
sessions:
  - name: flow
    a: {transport: spawn, command: )" + peer_command({"flood", "--small", "1000", "--big", "2", "--big-size", "200000"}) + R"(}
    b: {transport: spawn, command: )" + peer_command({"sink", "--expect", "1002", "--report", report.string()}) + R"(}
    filters:
      - log: {path: )" + log.string() + R"(, format: jsonl}
)");
  gateway g(config);
  REQUIRE(g.wait() == 0);
  CHECK(read_text(report).find(R"("received": 1002, "ok": true)") != std::string::npos);
  // "session flow: 1 instance, a>b 1002 messages N bytes, ..."
  const std::string summary = "session flow: 1 instance, a>b 1002 messages ";
  const std::string& log_text = g.log();
  const auto at = log_text.find(summary);
  REQUIRE(at != std::string::npos);
  const std::string total = log_text.substr(at + summary.size(), log_text.find(' ', at + summary.size()) - at - summary.size());

  const auto records = parse_jsonl(read_text(log));
  REQUIRE(records.size() == 1002);
  std::int64_t bytes = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    CAPTURE(i);
    const auto& r = records[i];
    REQUIRE(keys(r) == contract_fields);
    CHECK(field(r, "session").text == "flow");
    CHECK(field(r, "instance").number == 1);
    CHECK(field(r, "dir").text == "a>b");
    CHECK(field(r, "seq").number == static_cast<std::int64_t>(i + 1));
    CHECK(field(r, "proto").number == 5);
    CHECK(field(r, "type").text == "dict(2)");  // {"seq": i, "data": ...}
    CHECK(field(r, "globals").items.empty());
    CHECK(field(r, "error").what == json_value::kind::null);
    bytes += field(r, "size").number;
  }
  CHECK(std::to_string(bytes) == total);
  fs::remove_all(dir);
}

}  // namespace pickleway::test
