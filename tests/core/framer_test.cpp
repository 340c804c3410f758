// The framer on hand-made streams, one opcode family or failure at a time.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "../support/feed.hpp"

using namespace pickleway;
using namespace pickleway::test;
using namespace std::string_literals;

namespace {

bytes_view view(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Frames `stream` fed whole, byte by byte and in moving random chunks, checks
// the three agree, and returns the result.
feed_result frame(std::string_view stream, framer_options options = {}) {
  const feed_result all = feed(options, view(stream), whole());
  const feed_result bytes = feed(options, view(stream), byte_by_byte());
  const feed_result chunks = feed(options, view(stream), random_chunks(7, 5), true);
  for (const feed_result* other : {&bytes, &chunks}) {
    CHECK(other->messages == all.messages);
    CHECK(other->strays == all.strays);
    CHECK(other->clean_end == all.clean_end);
    CHECK(other->error.has_value() == all.error.has_value());
    if (other->error && all.error) {
      CHECK(other->error->code == all.error->code);
      CHECK(other->error->offset == all.error->offset);
    }
  }
  return all;
}

std::vector<std::size_t> sizes(const feed_result& r) {
  std::vector<std::size_t> s;
  for (const auto& m : r.messages) s.push_back(m.size);
  return s;
}

}  // namespace

TEST_CASE("the framer splits a stream at each STOP opcode, whatever the chunking") {
  // pickle.dumps(None, 0), dumps(True, 2), dumps([1, 2], 1)
  const std::string stream = "N."s + "\x80\x02\x88."s + "]q\x00(K\x01K\x02" "e."s;
  const auto r = frame(stream);
  CHECK(r.clean_end);
  CHECK_FALSE(r.error);
  CHECK(sizes(r) == std::vector<std::size_t>{2, 4, 10});
  REQUIRE(r.messages.size() == 3);
  CHECK(r.messages[1].offset == 2);
  CHECK(r.messages[2].offset == 6);
  CHECK(r.messages[0].protocol == 0);
  CHECK(r.messages[1].protocol == 2);
  CHECK(r.messages[2].protocol == 1);
}

TEST_CASE("fixed-width and length-prefixed arguments are stepped over, never read as opcodes") {
  SUBCASE("a STOP byte inside BININT, BINFLOAT and SHORT_BINBYTES arguments") {
    const std::string msg = "\x80\x03J.\x00\x00\x00G........C\x03...\x87."s;
    const auto r = frame(msg);
    CHECK(sizes(r) == std::vector<std::size_t>{msg.size()});
  }
  SUBCASE("an 8-byte length skips a payload in one step") {
    std::string payload(100000, '.');
    std::string msg = "\x80\x05\x8e"s;
    for (int i = 0; i < 8; ++i) msg += static_cast<char>((payload.size() >> (8 * i)) & 0xFF);
    msg += payload + "."s;
    const auto r = feed({}, view(msg), whole());
    CHECK(sizes(r) == std::vector<std::size_t>{msg.size()});
  }
  SUBCASE("LONG1 and LONG4") {
    const std::string msg = "\x80\x02\x8a\x02.\x01\x8b\x01\x00\x00\x00.\x86."s;
    CHECK(sizes(frame(msg)) == std::vector<std::size_t>{msg.size()});
  }
}

TEST_CASE("text arguments end at their newline and their terminators are reported") {
  const std::string msg = "(I42\nF1.5\nL12L\nV\xc3\xa9.\nS'a.b'\nI01\ntp0\n."s;
  const auto r = frame(msg);
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].size == msg.size());
  std::vector<std::uint32_t> expected;
  for (std::size_t i = 0; i < msg.size(); ++i)
    if (msg[i] == '\n') expected.push_back(static_cast<std::uint32_t>(i));
  CHECK(r.messages[0].line_ends == expected);
}

TEST_CASE("a CRLF writer's text arguments still frame") {
  const std::string msg = "(I42\r\nS'x'\r\ncos\r\nsystem\r\ntp0\r\ng0\r\n."s;
  const auto r = frame(msg);
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].line_ends.size() == 6);
}

TEST_CASE("a message that reads a memo entry it did not define") {
  // A reused Pickler without clear_memo(): the second dump refers to entry 0.
  const std::string first = "\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00]\x94h\x00\x86."s;
  const std::string second = "\x80\x04h\x00."s;
  SUBCASE("is an error by default, naming the offset and the key") {
    const auto r = frame(first + second);
    CHECK(r.messages.size() == 1);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::undefined_memo);
    CHECK(r.error->offset == first.size() + 2);
    CHECK(r.error->describe().find("memo key 0") != std::string::npos);
    CHECK(r.error->describe().find("clear_memo") != std::string::npos);
  }
  SUBCASE("is counted when allowed") {
    const auto r = frame(first + second, {.memo = memo_policy::allow});
    REQUIRE(r.messages.size() == 2);
    CHECK(r.messages[0].undefined_memo_uses == 0);
    CHECK(r.messages[1].undefined_memo_uses == 1);
    CHECK(r.clean_end);
  }
  SUBCASE("a far-off key the dense keys later reach is counted once, as CPython counts it") {
    // PUT 4098 goes to the far-off keys; 4,096 MEMOIZEs bring the dense keys
    // up to it; PUT 4098 again defines no new key, so the next MEMOIZE's key
    // is 4098 and key 4099 was never defined: CPython says "Memo value not
    // found at index 4099".
    std::string msg = "\x80\x04(Np1\nNp4098\n"s;
    for (int i = 0; i < 4096; ++i) msg += "N\x94";
    msg += "Np4098\nN\x94j"s;
    const std::size_t get_at = msg.size() - 1;
    const std::string tail = "\x03\x10\x00\x00l."s;  // LONG_BINGET 4099, LIST, STOP
    const auto bad = frame(msg + tail);
    REQUIRE(bad.error);
    CHECK(bad.error->code == errc::undefined_memo);
    CHECK(bad.error->offset == get_at);
    const auto good = frame(msg + "\x02\x10\x00\x00l."s);  // LONG_BINGET 4098
    CHECK(good.messages.size() == 1);
    CHECK_FALSE(good.error);
  }
  SUBCASE("far-off PUT keys are remembered too") {
    const auto r = frame("\x80\x02]r\x00\x00\x00\x10j\x00\x00\x00\x10\x86."s);
    CHECK(r.messages.size() == 1);
    CHECK_FALSE(r.error);
  }
}

TEST_CASE("text memo keys are read as CPython reads them, a Py_ssize_t") {
  // A protocol 0 message first, so that the bad one is not read as stray text.
  const std::string first = "(l.";
  SUBCASE("a key up to INT64_MAX is a memo key, leading zeros or not") {
    const auto r = frame(first + "(lp9223372036854775807\ng9223372036854775807\na(lp0000000000000000000001\ng1\na."s);
    CHECK(r.messages.size() == 2);
    CHECK_FALSE(r.error);
  }
  SUBCASE("a key above it is refused") {
    const auto r = frame(first + "(lp9223372036854775808\n."s);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::bad_text_argument);
    CHECK(r.error->offset == first.size() + 2);
  }
  SUBCASE("so is one past 19 digits") {
    const auto r = frame(first + "(lp000000000009223372036854775808\n."s);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::bad_text_argument);
    CHECK(r.error->offset == first.size() + 2);
  }
}

TEST_CASE("a protocol 0 message whose PUT keys are not in order is framed all the same") {
  // The fast loop takes PUTs that count up; these leave it to parse().
  const auto r = frame("(lp5\nVa\np2\naVb\np0\nag5\ng2\ng0\n\x87" "a."s);
  REQUIRE(r.messages.size() == 1);
  CHECK_FALSE(r.error);
  CHECK(r.messages[0].line_ends.size() == 8);
  CHECK(r.messages[0].protocol == 2);  // no PROTO: its highest opcode, TUPLE3
}

// Far-off keys wait in an ordered set, so that each growth of the dense
// keys looks at its front only: a scan of them all at every growth took 17 s
// for this 1 MB message (100,000 far-off keys, then 100,000 dense ones), and
// would take hours at max_message.
TEST_CASE("many far-off memo keys and many dense ones are framed in linear time" *
          doctest::timeout(10)) {
  std::string msg = "\x80\x04N"s;
  const auto long_binput = [&](std::uint32_t key) {
    msg += 'r';
    for (int i = 0; i < 4; ++i) msg += static_cast<char>((key >> (8 * i)) & 0xff);
  };
  for (std::uint32_t i = 0; i < 100000; ++i) long_binput(1000000000u + i);
  for (std::uint32_t i = 0; i < 100000; ++i) long_binput(i);
  msg += '.';
  framer f;
  REQUIRE(f.next(view(msg)) == frame_status::message);
  CHECK(f.message().size == msg.size());
}

TEST_CASE("FRAME opcodes must end on an opcode boundary") {
  SUBCASE("a well-formed frame") {
    const std::string msg = "\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x01."s;
    const auto r = frame(msg);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].frames == std::vector<std::uint32_t>{2});
  }
  SUBCASE("a frame ending inside an opcode's argument") {
    const auto r = frame("\x80\x04\x95\x01\x00\x00\x00\x00\x00\x00\x00K\x01."s);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::frame_misaligned);
    CHECK(r.error->offset == 11);
  }
  SUBCASE("a frame running past STOP") {
    const auto r = frame("\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00N.N.N.N."s);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::frame_misaligned);
  }
}

TEST_CASE("malformed input ends in an error naming the offset and the cause") {
  SUBCASE("an unknown opcode") {
    const auto r = frame("N.\x80\x02]\xff."s);
    CHECK(r.messages.size() == 1);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::unknown_opcode);
    CHECK(r.error->offset == 5);
    CHECK(r.error->describe() == "offset 5: unknown opcode 0xff");
  }
  SUBCASE("a malformed text argument") {
    const auto r = frame("N.I4x2\n."s);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::bad_text_argument);
    CHECK(r.error->describe() == "offset 2: malformed text argument in INT (b'4x2\\n')");
  }
  SUBCASE("an unquoted STRING") {
    const auto r = frame("N.Sabc\n."s);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::bad_text_argument);
  }
  SUBCASE("a negative BINSTRING length") {
    const auto r = frame("N.T\xff\xff\xff\xff."s);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::bad_length);
  }
  SUBCASE("an unsupported protocol") {
    const auto r = frame("N.\x80\x06N."s);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::unsupported_protocol);
    CHECK(r.error->offset == 2);
  }
  SUBCASE("a message larger than max_message, found from its length field") {
    const auto r = frame("\x80\x04\x8e\x00\x00\x00\x00\x01\x00\x00\x00"s, {.max_message = 1024});
    REQUIRE(r.error);
    CHECK(r.error->code == errc::message_too_large);
  }
  SUBCASE("a text line longer than max_message") {
    const auto r = frame("N."s + "I" + std::string(2000, '1'), {.max_message = 1024});
    REQUIRE(r.error);
    CHECK(r.error->code == errc::message_too_large);
    CHECK(r.error->offset == 2);
  }
  SUBCASE("a message that reaches max_message without its STOP") {
    const auto r = frame("N." + std::string(1024, 'N'), {.max_message = 1024});
    REQUIRE(r.error);
    CHECK(r.error->code == errc::message_too_large);
    CHECK(r.error->offset == 1026);
  }
  SUBCASE("at max_message, what follows is not read: the same error however the stream comes") {
    // Fed whole, the framer used to read on and name the byte past
    // max_message (an unknown opcode, a negative length); in pieces it
    // stopped at max_message. frame() checks the chunkings agree.
    const auto opcode = frame("N.((\xff."s, {.max_message = 2});
    REQUIRE(opcode.error);
    CHECK(opcode.error->code == errc::message_too_large);
    CHECK(opcode.error->offset == 4);
    const auto length = frame("N.(T\xff\xff\xff\xff."s, {.max_message = 4});
    REQUIRE(length.error);
    CHECK(length.error->code == errc::message_too_large);
  }
  SUBCASE("a message of exactly max_message bytes passes") {
    const auto r = frame("I" + std::string(1021, '1') + "\n.", {.max_message = 1024});
    CHECK(sizes(r) == std::vector<std::size_t>{1024});
  }
}

TEST_CASE("the stream ends inside a message: earlier messages stand, the loss is reported") {
  const std::string stream = "\x80\x04K\x01.\x80\x04\x8c\x05hel"s;
  const auto r = frame(stream);
  CHECK(sizes(r) == std::vector<std::size_t>{5});
  REQUIRE(r.error);
  CHECK(r.error->code == errc::truncated_message);
  CHECK(r.error->offset == stream.size());
  CHECK(r.error->describe().find("7 bytes lost") != std::string::npos);
}

TEST_CASE("stray bytes where a message should start") {
  const std::string pickle = "\x80\x04K\x01."s;
  SUBCASE("are refused by default, with the bytes shown") {
    const auto r = frame(pickle + "hello\n" + pickle);
    CHECK(r.messages.size() == 1);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::stray_bytes);
    CHECK(r.error->offset == 5);
    CHECK(r.error->describe().find("b'hello\\n'") != std::string::npos);
  }
  SUBCASE("are diverted, and the stream resynchronises on the next PROTO") {
    const framer_options divert{.on_stray = stray_policy::divert};
    const auto r = frame(pickle + "hello\n" + pickle + "x\x80" + pickle, divert);
    CHECK(r.clean_end);
    CHECK(sizes(r) == std::vector<std::size_t>{5, 5, 5});
    REQUIRE(r.strays.size() == 2);
    CHECK(r.strays[0] == std::pair<std::uint64_t, std::string>{5, "hello\n"});
    CHECK(r.strays[1] == std::pair<std::uint64_t, std::string>{16, "x\x80"});
  }
  SUBCASE("a print before the first pickle is diverted too") {
    const auto r = frame("starting up\n" + pickle, {.on_stray = stray_policy::divert});
    CHECK(r.clean_end);
    CHECK(sizes(r) == std::vector<std::size_t>{5});
    REQUIRE(r.strays.size() == 1);
    CHECK(r.strays[0].second == "starting up\n");
  }
  SUBCASE("a print before the first pickle is refused by default, both readings shown") {
    const auto r = frame("ready\n" + pickle);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::stray_bytes);
    CHECK(r.error->offset == 0);
    CHECK(r.error->describe() ==
          "offset 0: stray bytes where a message should start (b'ready\\n'; read as a "
          "pickle: offset 5: unknown opcode 0x0a)");
  }
  SUBCASE("stray lines are set aside one line at a time") {
    const auto r = frame(pickle + "one\ntwo\n" + pickle, {.on_stray = stray_policy::divert});
    REQUIRE(r.strays.size() == 2);
    CHECK(r.strays[1] == std::pair<std::uint64_t, std::string>{9, "two\n"});
  }
  SUBCASE("stray bytes at the end of the stream are diverted, not lost as a message") {
    const auto r = frame(pickle + "bye", {.on_stray = stray_policy::divert});
    CHECK(r.clean_end);
    REQUIRE(r.strays.size() == 1);
    CHECK(r.strays[0].second == "bye");
  }
  SUBCASE("in a protocol 0 stream divert acts as error") {
    const auto r = frame("N.hello\nN."s, {.on_stray = stray_policy::divert});
    CHECK(r.messages.size() == 1);
    REQUIRE(r.error);
    CHECK(r.error->code == errc::undefined_memo);  // 'h' is BINGET
    CHECK(r.error->offset == 2);
  }
}

TEST_CASE("bytes_wanted names the whole of a payload once its length is known") {
  framer f;
  const std::string head = "\x80\x04\x8e\x00\x00\x01\x00\x00\x00\x00\x00"s;
  CHECK(f.next(view(head)) == frame_status::need_more);
  CHECK(f.bytes_wanted() == head.size() + 65536);
}

TEST_CASE("a restarted framer frames as a new one, whatever the last one left") {
  // A message that defines memo entry 0, then one that reads it: a new
  // framer must refuse the second; so must one restarted between them.
  const std::string first = "\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00]\x94h\x00\x86."s;
  const std::string second = "\x80\x04h\x00."s;
  framer f;
  REQUIRE(f.next(view(first)) == frame_status::message);
  f.restart();
  CHECK(f.stream_offset() == 0);
  CHECK(f.next(view(second)) == frame_status::error);
  CHECK(f.error().code == errc::undefined_memo);
  CHECK(f.error().offset == 2);
  // Failed, restarted: it frames again, from offset 0, protocol and all.
  f.restart();
  REQUIRE(f.next(view(first)) == frame_status::message);
  CHECK(f.message().stream_offset == 0);
  CHECK(f.message().size == first.size());
  CHECK(f.message().protocol == 4);
  // A protocol 0 message marks the stream as one where stray bytes are an
  // error; restarted, a framer diverts them again as a new one does.
  const framer_options divert{.on_stray = stray_policy::divert};
  framer g(divert);
  REQUIRE(g.next(view("N."s)) == frame_status::message);
  framer not_restarted = g;
  CHECK(not_restarted.finish(view("hello\n"s)) == frame_status::error);
  g.restart();
  CHECK(g.finish(view("hello\n"s)) == frame_status::stray);
  CHECK(framer(divert).finish(view("hello\n"s)) == frame_status::stray);
}
