// Malformed and hostile messages (tests/python/make_malformed.py: shapes
// that break stack simulations, bad FRAMEs, huge declared lengths, memo
// misuse, mutants of real pickles) through every path that inspects them:
// `pickleway dis`, and running gateways with `log` (text, jsonl, dis) and
// with `firewall`. None may die of a signal, abort, or hold more memory
// than a bound linear in what it was sent; what came before a bad message
// is delivered, and the bad one is reported with its offset.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "pickleway/framer.hpp"
#include "support/corpus.hpp"
#include "support/gateway.hpp"
#include "support/process.hpp"

using namespace pickleway;
using namespace pickleway::test;
namespace fs = std::filesystem;

namespace {

struct malformed {
  std::string name;
  std::string bytes;
  std::string dis;     // what pickletools.dis made of it: ok, error, or -
  bool structure_bad;  // CPython's Unpickler stops on its structure
};

const std::vector<malformed>& corpus() {
  static const std::vector<malformed> all = [] {
    const auto dir = make_temp_dir();
    const auto made = run({PICKLEWAY_PYTHON,
                           std::string(PICKLEWAY_SOURCE_DIR) + "/tests/python/make_malformed.py",
                           dir.string()});
    if (made.exit_status != 0) throw std::runtime_error("make_malformed.py failed");
    std::vector<malformed> messages;
    std::ifstream index(dir / "index.tsv");
    std::string file, dis, bad;
    while (std::getline(index, file, '\t') && std::getline(index, dis, '\t') &&
           std::getline(index, bad)) {
      const auto bytes = read_file(dir / file);
      messages.push_back({file, {bytes.begin(), bytes.end()}, dis, bad == "1"});
    }
    fs::remove_all(dir);
    return messages;
  }();
  return all;
}

// A message every path takes: PROTO 4, None, STOP.
const std::string good = "\x80\x04N.";

// Whether the endpoint's framer (the defaults) takes `m` as one message.
bool framed_whole(const std::string& m) {
  framer f;
  const std::string stream = good + m;
  const bytes_view data(reinterpret_cast<const std::uint8_t*>(stream.data()), stream.size());
  if (f.next(data) != frame_status::message) return false;
  frame_status s = f.next(data.subspan(good.size()));
  if (s == frame_status::need_more) s = f.finish(data.subspan(good.size()));
  return s == frame_status::message && f.message().size == m.size();
}

// No signal, no abort, no word of a broken heap or a sanitizer.
void check_no_crash(const std::string& err) {
  for (const char* sign : {"terminate called", "corrupted", "free(): ", "malloc(): ",
                           "double free", "AddressSanitizer", "runtime error:", "Aborted"})
    CHECK_MESSAGE(err.find(sign) == std::string::npos, sign);
}

// The memory bound of the contract and the issue: 64 MiB plus ten times the
// input. Sanitized builds hold freed memory in quarantine, so there the
// bound says nothing and is not checked.
void check_memory(long peak_kib, std::size_t input) {
#if defined(__SANITIZE_ADDRESS__)
  (void)peak_kib;
  (void)input;
#else
  const long bound = 64 * 1024 + static_cast<long>(10 * input / 1024);
  CHECK_MESSAGE(peak_kib <= bound, "peak " << peak_kib << " KiB, bound " << bound << " KiB");
#endif
}

std::string read_all(const fs::path& path) {
  const auto bytes = read_file(path);
  return {bytes.begin(), bytes.end()};
}

void write_all(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// One session: `cat STREAM` into the filters, out to `cat > OUT`.
std::string session_yaml(const std::string& name, const fs::path& stream, const fs::path& out,
                         const std::string& filters) {
  return "  - name: " + name + "\n    a: {transport: spawn, command: [cat, " + stream.string() +
         "]}\n    b: {transport: spawn, command: [sh, -c, " + quote("cat > " + out.string()) +
         "]}\n" + (filters.empty() ? "" : "    filters: [" + filters + "]\n");
}

// The stream offsets "offset N" in `text` names.
std::vector<std::uint64_t> offsets_in(const std::string& text) {
  std::vector<std::uint64_t> found;
  static const std::regex offset("offset ([0-9]+)");
  for (std::sregex_iterator it(text.begin(), text.end(), offset), end; it != end; ++it)
    found.push_back(std::stoull((*it)[1]));
  return found;
}

}  // namespace

TEST_CASE("pickleway dis survives every malformed message, printing what came before and naming the offset") {
  const auto dir = make_temp_dir();
  std::size_t failed = 0;
  for (const auto& m : corpus()) {
    CAPTURE(m.name);
    const auto file = dir / "stream";
    write_all(file, good + m.bytes);
    const auto r = run_measured({PICKLEWAY_BINARY, "dis", file.string()});
    CHECK(r.signal == 0);
    REQUIRE((r.exit_status == 0 || r.exit_status == 1));
    check_no_crash(r.err);
    check_memory(r.peak_rss_kib, good.size() + m.bytes.size());
    CHECK(r.out.starts_with("=== message 1 at offset 0 (4 bytes)\n"));
    if (m.dis == "error" || m.structure_bad) CHECK(r.exit_status == 1);
    if (r.exit_status == 1) {
      ++failed;
      const auto at = offsets_in(r.err);
      REQUIRE(!at.empty());
      CHECK(at.front() >= good.size());
      CHECK(at.front() <= good.size() + m.bytes.size());
    }
  }
  MESSAGE(failed << " of " << corpus().size() << " malformed messages stop dis");
  fs::remove_all(dir);
}

TEST_CASE("a gateway with log passes every malformed message its framer takes, each record saying what is wrong where") {
  const auto dir = make_temp_dir();
  std::vector<const malformed*> taken;
  std::string stream = good;
  for (const auto& m : corpus()) {
    if (!framed_whole(m.bytes)) continue;
    taken.push_back(&m);
    stream += m.bytes + good;
  }
  MESSAGE(taken.size() << " of " << corpus().size() << " malformed messages pass the framer");
  REQUIRE(taken.size() > 100);
  write_all(dir / "stream", stream);
  for (const std::string format : {"text", "jsonl", "jsonl, dis: true"}) {
    CAPTURE(format);
    const auto log = dir / "log";
    fs::remove(log);
    const auto config = write_text(
        dir, "log.yaml",
        "sessions:\n" + session_yaml("hostile", dir / "stream", dir / "out",
                                     "log: {path: " + log.string() + ", queue: 100000, format: " + format + "}"));
    gateway g(gateway::measured{}, config);
    REQUIRE(g.wait() == 0);
    check_no_crash(g.log());
    check_memory(g.peak_rss_kib(), stream.size());
    CHECK(read_all(dir / "out") == stream);  // every message, byte for byte
    std::vector<std::string> records;
    std::istringstream lines(read_all(log));
    for (std::string line; std::getline(lines, line);)
      if (!line.starts_with("    ")) records.push_back(line);  // not a dis line
    REQUIRE(records.size() == 2 * taken.size() + 1);
    for (std::size_t i = 0; i < taken.size(); ++i) {
      CAPTURE(taken[i]->name);
      const std::string& r = records[2 * i + 1];
      if (!taken[i]->structure_bad) continue;
      // An error, at an offset inside the message.
      const auto at = offsets_in(r);
      REQUIRE(!at.empty());
      CHECK(at.back() < taken[i]->bytes.size());
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("a gateway with firewall: drop refuses each malformed message it cannot follow and passes the rest in order") {
  const auto dir = make_temp_dir();
  std::vector<const malformed*> taken;
  std::vector<std::uint64_t> starts;  // stream offset of each taken message
  std::string stream = good;
  for (const auto& m : corpus()) {
    if (!framed_whole(m.bytes)) continue;
    taken.push_back(&m);
    starts.push_back(stream.size());
    stream += m.bytes + good;
  }
  write_all(dir / "stream", stream);
  const auto config = write_text(
      dir, "firewall.yaml",
      "sessions:\n" + session_yaml("hostile", dir / "stream", dir / "out", "firewall: {on_deny: drop}"));
  gateway g(gateway::measured{}, config);
  REQUIRE(g.wait() == 0);
  check_no_crash(g.log());
  check_memory(g.peak_rss_kib(), stream.size());
  // "firewall: refused SUBJECT at offset N: CAUSE; message K a>b dropped"
  std::set<std::uint64_t> dropped;
  std::istringstream lines(g.log());
  static const std::regex refusal("refused .* at offset ([0-9]+): .*; message ([0-9]+) a>b dropped");
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (!std::regex_search(line, match, refusal)) continue;
    const std::uint64_t sequence = std::stoull(match[2]);
    // Messages alternate: good, taken[0], good, taken[1], ...; a good one is never refused.
    REQUIRE(sequence % 2 == 0);
    const std::size_t i = sequence / 2 - 1;
    REQUIRE(i < taken.size());
    CAPTURE(taken[i]->name);
    const std::uint64_t at = std::stoull(match[1]);
    CHECK(at >= starts[i]);
    CHECK(at <= starts[i] + taken[i]->bytes.size());
    dropped.insert(i);
  }
  std::string expected = good;
  for (std::size_t i = 0; i < taken.size(); ++i) {
    CAPTURE(taken[i]->name);
    if (taken[i]->structure_bad) CHECK(dropped.count(i) == 1);
    if (!dropped.count(i)) expected += taken[i]->bytes;
    expected += good;
  }
  MESSAGE(dropped.size() << " of " << taken.size() << " refused");
  CHECK(read_all(dir / "out") == expected);
  fs::remove_all(dir);
}

TEST_CASE("a malformed message the framer refuses ends its instance after every earlier message, with the offset") {
  const auto dir = make_temp_dir();
  std::vector<const malformed*> refused;
  for (const auto& m : corpus())
    if (!framed_whole(m.bytes)) refused.push_back(&m);
  MESSAGE(refused.size() << " malformed messages the framer refuses");
  // A session each, in batches: one pickleway runs many at once.
  constexpr std::size_t batch = 100;
  for (std::size_t first = 0; first < refused.size(); first += batch) {
    std::string yaml = "sessions:\n";
    const std::size_t last = std::min(refused.size(), first + batch);
    for (std::size_t i = first; i < last; ++i) {
      const auto stream = dir / ("stream" + std::to_string(i));
      write_all(stream, good + good + refused[i]->bytes + good);
      std::string log_filter = "log: {path: ";
      log_filter += (dir / "log").string();
      log_filter += ", format: jsonl}";
      yaml += session_yaml("s" + std::to_string(i), stream, dir / ("out" + std::to_string(i)), log_filter);
    }
    gateway g(write_text(dir, "refused.yaml", yaml));
    REQUIRE(g.wait() == 1);
    check_no_crash(g.log());
    for (std::size_t i = first; i < last; ++i) {
      CAPTURE(refused[i]->name);
      // What the endpoint's framer makes of the stream: whole messages up
      // to the error (a message cut short may run on into the next one).
      const std::string stream = good + good + refused[i]->bytes + good;
      const bytes_view data(reinterpret_cast<const std::uint8_t*>(stream.data()), stream.size());
      framer f;
      std::size_t delivered = 0;
      frame_status status;
      while ((status = f.next(data.subspan(delivered))) == frame_status::message)
        delivered += f.message().size;
      if (status == frame_status::need_more) status = f.finish(data.subspan(delivered));
      CHECK(delivered >= 2 * good.size());
      CHECK(read_all(dir / ("out" + std::to_string(i))) == stream.substr(0, delivered));
      if (status != frame_status::error) continue;  // it made whole messages with what follows
      // "session sI, endpoint a (spawn): offset N: ..."
      const std::string prefix = "session s" + std::to_string(i) + ", endpoint a (spawn): offset ";
      const auto line = g.log().find(prefix);
      REQUIRE(line != std::string::npos);
      CHECK(std::stoull(g.log().substr(line + prefix.size())) == f.error().offset);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("a gateway with log: {dis: true} passes 200,000 nested MARKs within 64 MiB plus ten times the message") {
  const auto dir = make_temp_dir();
  const std::string marks = "\x80\x05" + std::string(200000, '(') + "N.";
  write_all(dir / "stream", good + marks + good);
  const auto log = dir / "log";
  const auto config = write_text(
      dir, "marks.yaml",
      "sessions:\n" + session_yaml("marks", dir / "stream", dir / "out",
                                   "log: {path: " + log.string() + ", format: jsonl, dis: true}"));
  gateway g(gateway::measured{}, config);
  REQUIRE(g.wait() == 0);
  check_no_crash(g.log());
  CHECK(read_all(dir / "out") == good + marks + good);
#if !defined(__SANITIZE_ADDRESS__)
  CHECK(g.peak_rss_kib() < 64 * 1024 + static_cast<long>(10 * marks.size() / 1024));
#endif
  // The exit line tells the same peak as the kernel does to GNU time.
  const std::string said = "peak memory ";
  const auto at = g.log().find(said);
  REQUIRE(at != std::string::npos);
  const long told = std::stol(g.log().substr(at + said.size()));
  CHECK(std::abs(told - g.peak_rss_kib()) <= std::max(2048L, g.peak_rss_kib() / 10));
  // Its record is cut at the default max_record, 1 MiB.
  std::istringstream lines(read_all(log));
  std::vector<std::string> records;
  for (std::string line; std::getline(lines, line);) records.push_back(line);
  REQUIRE(records.size() == 3);
  CHECK(records[1].size() <= std::size_t{1} << 20);
  CHECK(records[1].find("\xe2\x80\xa6truncated") != std::string::npos);
  fs::remove_all(dir);
}
