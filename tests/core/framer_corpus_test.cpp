// The framer and `dis` against CPython's pickletools on a corpus that the
// machine's python3 writes (tests/python/make_corpus.py): every protocol,
// message for message and opcode for opcode, however the stream is chunked.
#include <doctest/doctest.h>

#include <random>
#include <set>
#include <sstream>

#include "../support/corpus.hpp"
#include "../support/feed.hpp"
#include "pickleway/disassembler.hpp"
#include "pickleway/pickle_walk.hpp"

using namespace pickleway;
using namespace pickleway::test;

namespace {

bool is_text_opcode(const std::string& name) {
  static const std::set<std::string> text{"INT", "LONG", "FLOAT", "STRING", "UNICODE", "GLOBAL",
                                          "INST", "GET", "PUT", "PERSID"};
  return text.count(name) > 0;
}

// What the framer must report of a message, worked out from genops' opcode
// list and the message bytes.
void check_message(const framed_message& got, const expected_message& want, bytes_view msg) {
  CHECK(got.offset == want.offset);
  CHECK(got.size == want.size);
  std::vector<std::uint32_t> frames, line_ends;
  for (std::size_t i = 0; i < want.opcodes.size(); ++i) {
    const auto& o = want.opcodes[i];
    const std::size_t next = i + 1 < want.opcodes.size() ? want.opcodes[i + 1].pos : want.size;
    if (o.name == "FRAME") frames.push_back(static_cast<std::uint32_t>(o.pos));
    if (is_text_opcode(o.name)) {
      if (o.name == "GLOBAL" || o.name == "INST") {
        for (std::size_t k = o.pos + 1; k < next - 1; ++k)
          if (msg[k] == '\n') line_ends.push_back(static_cast<std::uint32_t>(k));
      }
      line_ends.push_back(static_cast<std::uint32_t>(next - 1));
    }
  }
  CHECK(got.frames == frames);
  CHECK(got.line_ends == line_ends);
}

// The walk must yield exactly genops' opcodes, at its positions.
void check_walk(const expected_message& want, bytes_view msg) {
  pickle_walk walk(msg);
  std::size_t i = 0;
  for (pickle_op o; walk.next(o); ++i) {
    REQUIRE(i < want.opcodes.size());
    CHECK(o.pos == want.opcodes[i].pos);
    CHECK(o.info->name == want.opcodes[i].name);
  }
  CHECK_FALSE(walk.failed());
  CHECK(walk.stopped());
  CHECK(i == want.opcodes.size());
  CHECK(walk.stop_end() == msg.size());
}

}  // namespace

TEST_CASE("the corpus spans every protocol with thousands of messages") {
  std::size_t total = 0;
  bool python2 = false;
  for (const auto& c : corpora()) {
    CAPTURE(c.name);
    CHECK(c.messages.size() >= 1000);
    if (c.name == "py2") python2 = true;
    else total += c.messages.size();
  }
  CHECK(corpora().size() >= 6);
  CHECK(total >= 5000);
  if (!python2) MESSAGE("skipped Python 2.7's pickles (INST, OBJ, STRING): no python2.7 here");
}

TEST_CASE("the framer splits python3's pickles exactly where pickletools.genops does") {
  for (const auto& c : corpora()) {
    CAPTURE(c.name);
    const bytes_view stream(c.stream);
    struct mode {
      const char* name;
      chunker chunks;
      bool move;
    };
    for (const mode& m : {mode{"whole", whole(), false}, mode{"byte by byte", byte_by_byte(), false},
                          mode{"random chunks", random_chunks(static_cast<std::uint32_t>(c.stream.size())), true}}) {
      CAPTURE(m.name);
      const feed_result r = feed({}, stream, m.chunks, m.move);
      CHECK(r.clean_end);
      CHECK_FALSE(r.error.has_value());
      CHECK(r.strays.empty());
      REQUIRE(r.messages.size() == c.messages.size());
      for (std::size_t i = 0; i < r.messages.size(); ++i) {
        CAPTURE(i);
        const auto& want = c.messages[i];
        check_message(r.messages[i], want, stream.subspan(want.offset, want.size));
      }
    }
  }
}

TEST_CASE("the walk yields python3's pickles opcode for opcode as pickletools.genops does") {
  for (const auto& c : corpora()) {
    CAPTURE(c.name);
    for (std::size_t i = 0; i < c.messages.size(); ++i) {
      CAPTURE(i);
      const auto& want = c.messages[i];
      check_walk(want, bytes_view(c.stream).subspan(want.offset, want.size));
    }
  }
}

TEST_CASE("dis prints what pickletools.dis prints, message for message") {
  for (const auto& c : corpora()) {
    CAPTURE(c.name);
    std::istringstream in(std::string(c.stream.begin(), c.stream.end()));
    std::ostringstream out, err;
    CHECK(disassemble_stream(in, out, err) == 0);
    CHECK(err.str().empty());
    const std::string got = out.str();
    // Compare line by line so a difference is shown where it is.
    std::istringstream got_lines(got), want_lines(c.dis);
    std::string g, w;
    std::size_t line = 0;
    while (std::getline(want_lines, w)) {
      ++line;
      std::getline(got_lines, g);
      if (g != w) {
        CAPTURE(line);
        CHECK(g == w);
        break;
      }
    }
    CHECK(got.size() == c.dis.size());
  }
}

TEST_CASE("malformed input never crashes the framer: it ends in an error or a valid split") {
  std::mt19937 random(42);
  const auto& c = corpora()[4];  // protocol 4: FRAMEs, memo, big payloads
  const bytes_view clean(c.stream);

  // Each message the framer hands out must walk opcode by opcode to a STOP
  // that is its last byte (the framer and the walk accept the same
  // messages), and the three feeding modes must agree.
  const auto check_outcome = [](const std::vector<std::uint8_t>& bytes, const framer_options& options) {
    const feed_result r = feed(options, bytes_view(bytes), whole());
    const feed_result chunked = feed(options, bytes_view(bytes), random_chunks(9, 300), true);
    CHECK(chunked.messages == r.messages);
    CHECK(chunked.error.has_value() == r.error.has_value());
    CHECK((r.clean_end || r.error.has_value()));
    for (const auto& m : r.messages) {
      const bytes_view msg = bytes_view(bytes).subspan(m.offset, m.size);
      pickle_walk walk(msg);
      for (pickle_op o; walk.next(o);) {
      }
      CHECK_FALSE(walk.failed());
      CHECK(walk.stop_end() == msg.size());
    }
  };

  SUBCASE("truncations keep every earlier message and report the loss") {
    for (int trial = 0; trial < 200; ++trial) {
      const std::size_t cut = std::uniform_int_distribution<std::size_t>(0, clean.size())(random);
      std::vector<std::uint8_t> bytes(clean.begin(), clean.begin() + static_cast<std::ptrdiff_t>(cut));
      const feed_result r = feed({}, bytes_view(bytes), whole());
      std::size_t complete = 0;
      while (complete < c.messages.size() &&
             c.messages[complete].offset + c.messages[complete].size <= cut)
        ++complete;
      CHECK(r.messages.size() == complete);
      const bool at_boundary = complete == c.messages.size() || c.messages[complete].offset == cut;
      CHECK(r.clean_end == at_boundary);
      if (!at_boundary) {
        REQUIRE(r.error);
        CHECK(r.error->code == errc::truncated_message);
      }
    }
  }
  SUBCASE("bit flips") {
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<std::uint8_t> bytes(clean.begin(), clean.begin() + 20000);
      for (int flips = 0; flips < 3; ++flips) {
        const std::size_t at = std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(random);
        bytes[at] ^= static_cast<std::uint8_t>(1u << (random() % 8));
      }
      check_outcome(bytes, {});
      check_outcome(bytes, {.on_stray = stray_policy::divert, .memo = memo_policy::allow});
    }
  }
  SUBCASE("random bytes") {
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<std::uint8_t> bytes(std::uniform_int_distribution<std::size_t>(1, 3000)(random));
      for (auto& b : bytes) b = static_cast<std::uint8_t>(random());
      check_outcome(bytes, {.max_message = 1 << 16});
      check_outcome(bytes, {.max_message = 1 << 16, .on_stray = stray_policy::divert,
                            .memo = memo_policy::allow});
    }
  }
}
