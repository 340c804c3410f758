// The auth handshake state machine on its own: fed bytes, it answers what
// CPython's multiprocessing.connection would, with digests checked against
// Python's hmac module.
#include <doctest/doctest.h>

#include <map>
#include <sstream>

#include "engine/auth_handshake.hpp"
#include "support/process.hpp"

using namespace pickleway;
using namespace pickleway::test;

namespace {

using bytes = std::vector<std::uint8_t>;

bytes b(std::string_view s) { return {s.begin(), s.end()}; }

bytes operator+(bytes x, const bytes& y) {
  x.insert(x.end(), y.begin(), y.end());
  return x;
}

// A message as multiprocessing.connection frames it.
bytes frame(const bytes& message) {
  const auto n = static_cast<std::uint32_t>(message.size());
  return bytes{static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
               static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)} +
         message;
}

const bytes key = b("k3y\n");

bytes counting(std::size_t n, std::uint8_t from) {
  bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(from + i);
  return out;
}

// Our challenge draws bytes 0, 1, 2, ... instead of random ones.
auth_handshake make(auth_handshake::role first) {
  return auth_handshake(first, key, [](std::span<std::uint8_t> into) {
    for (std::size_t i = 0; i < into.size(); ++i) into[i] = static_cast<std::uint8_t>(i);
  });
}

bytes unhex(const std::string& hex) {
  bytes out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// Digests computed by Python's hmac, once: NAME -> bytes.
const std::map<std::string, bytes>& vectors() {
  static const std::map<std::string, bytes> v = [] {
    const auto r = run({PICKLEWAY_PYTHON, "-c", R"(
import hmac
key = b"k3y\n"
ours = b"{sha256}" + bytes(range(40))
legacy = bytes(range(100, 120))
print("resp_sha256", (b"{sha256}" + hmac.new(key, ours, "sha256").digest()).hex())
print("resp_md5", hmac.new(key, ours, "md5").digest().hex())
print("resp_sha3_384", (b"{sha3_384}" + hmac.new(key, ours, "sha3_384").digest()).hex())
print("wrong_sha256", (b"{sha256}" + hmac.new(b"nope", ours, "sha256").digest()).hex())
print("answer_legacy", hmac.new(key, legacy, "md5").digest().hex())
for d in ("sha256", "sha384", "md5", "sha3_256"):
    challenge = b"{%s}" % d.encode() + bytes(range(50, 90))
    print("answer_" + d, (b"{%s}" % d.encode() + hmac.new(key, challenge, d).digest()).hex())
)"});
    REQUIRE(r.exit_status == 0);
    std::map<std::string, bytes> out;
    std::istringstream lines(r.out);
    for (std::string name, hex; lines >> name >> hex;) out[name] = unhex(hex);
    return out;
  }();
  return v;
}

const bytes& vec(const std::string& name) {
  REQUIRE(vectors().count(name) == 1);
  return vectors().at(name);
}

bytes our_challenge() { return b("{sha256}") + counting(40, 0); }

// Feeds `input` whole or one byte at a time (keeping unconsumed bytes, as
// the contract says); the step of the last call and the bytes consumed.
auth_step feed(auth_handshake& hs, const bytes& input, bool bytewise, std::size_t& consumed) {
  consumed = 0;
  if (!bytewise) {
    const auto s = hs.feed(input);
    consumed = s.consumed;
    return s;
  }
  auth_step s;
  for (std::size_t end = 1; end <= input.size(); ++end) {
    s = hs.feed(bytes_view(input).subspan(consumed, end - consumed));
    consumed += s.consumed;
    if (s.status != auth_status::need_more) break;
  }
  return s;
}

}  // namespace

TEST_CASE("auth_handshake challenges first with {sha256} and 40 random bytes") {
  auto hs = make(auth_handshake::role::challenge_first);
  CHECK(hs.take_output() == frame(b("#CHALLENGE#") + our_challenge()));
  CHECK_FALSE(hs.has_output());
  CHECK(hs.status() == auth_status::need_more);
}

TEST_CASE("auth_handshake accepts the responses CPython 3.11 and 3.12 give, then answers and ends") {
  for (const bool bytewise : {false, true}) {
    for (const char* response : {"resp_sha256", "resp_md5", "resp_sha3_384"}) {
      CAPTURE(bytewise);
      CAPTURE(response);
      auto hs = make(auth_handshake::role::challenge_first);
      hs.take_output();
      std::size_t used = 0;
      auto s = feed(hs, frame(vec(response)), bytewise, used);
      CHECK(s.status == auth_status::need_more);
      CHECK(hs.take_output() == frame(b("#WELCOME#")));
      // The peer's own challenge, 3.12's form: answered in its digest.
      const bytes challenge = b("{sha256}") + counting(40, 50);
      s = feed(hs, frame(b("#CHALLENGE#") + challenge), bytewise, used);
      CHECK(s.status == auth_status::need_more);
      CHECK(hs.take_output() == frame(vec("answer_sha256")));
      // The #WELCOME# may come with the peer's first message behind it.
      const bytes first_message = frame(b("\x80\x04K\x01."));
      const bytes welcome = frame(b("#WELCOME#"));
      s = feed(hs, welcome + first_message, bytewise, used);
      CHECK(s.status == auth_status::done);
      CHECK(used == welcome.size());
      CHECK_FALSE(hs.has_output());
      const std::uint64_t total = frame(vec(response)).size() +
                                  frame(b("#CHALLENGE#") + challenge).size() + welcome.size();
      CHECK(hs.offset() == total);
    }
  }
}

TEST_CASE("auth_handshake answers a 3.11 challenge with the bare HMAC-MD5, a 3.12 one in its digest") {
  SUBCASE("a bare 20-byte challenge (Python 3.11)") {
    auto hs = make(auth_handshake::role::answer_first);
    CHECK_FALSE(hs.has_output());
    const auto s = hs.feed(frame(b("#CHALLENGE#") + counting(20, 100)));
    CHECK(s.status == auth_status::need_more);
    CHECK(hs.take_output() == frame(vec("answer_legacy")));
  }
  for (const char* digest : {"sha256", "sha384", "md5", "sha3_256"}) {
    SUBCASE(digest) {
      auto hs = make(auth_handshake::role::answer_first);
      const bytes challenge = b(std::string("{").append(digest) + "}") + counting(40, 50);
      const auto s = hs.feed(frame(b("#CHALLENGE#") + challenge));
      CHECK(s.status == auth_status::need_more);
      CHECK(hs.take_output() == frame(vec(std::string("answer_") + digest)));
    }
  }
}

TEST_CASE("auth_handshake answering first challenges after #WELCOME# and ends after its own") {
  auto hs = make(auth_handshake::role::answer_first);
  const bytes challenge = frame(b("#CHALLENGE#") + b("{sha256}") + counting(40, 50));
  const bytes welcome = frame(b("#WELCOME#"));
  CHECK(hs.feed(challenge).status == auth_status::need_more);
  CHECK(hs.take_output() == frame(vec("answer_sha256")));
  // The #WELCOME# and the response to our challenge can come in one read
  // only if the peer guessed it; feed them apart, as they come.
  CHECK(hs.feed(welcome).status == auth_status::need_more);
  CHECK(hs.take_output() == frame(b("#CHALLENGE#") + our_challenge()));
  const auto s = hs.feed(frame(vec("resp_md5")));
  CHECK(s.status == auth_status::done);
  CHECK(hs.take_output() == frame(b("#WELCOME#")));
}

TEST_CASE("auth_handshake refuses a wrong digest and sends #FAILURE#") {
  auto hs = make(auth_handshake::role::challenge_first);
  hs.take_output();
  const auto s = hs.feed(frame(vec("wrong_sha256")) + frame(b("#CHALLENGE#") + counting(20, 0)));
  CHECK(s.status == auth_status::failed);
  CHECK(s.consumed == frame(vec("wrong_sha256")).size());  // nothing read past the verdict
  CHECK(hs.take_output() == frame(b("#FAILURE#")));
  CHECK(hs.error() == "the peer's digest does not match the key");
  CHECK(hs.error_offset() == 0);
  // Sticky: nothing more is read.
  CHECK(hs.feed(frame(b("#WELCOME#"))).status == auth_status::failed);
  CHECK(hs.feed(frame(b("#WELCOME#"))).consumed == 0);
}

TEST_CASE("auth_handshake names what is wrong with a bad handshake message") {
  struct bad {
    const char* what;
    auth_handshake::role first;
    bytes prologue;  // accepted before the bad message
    bytes input;
    std::string error;
    std::uint64_t offset;
    bool failure_sent;
  };
  const auto challenge = frame(b("#CHALLENGE#") + counting(20, 100));
  const auto answer = auth_handshake::role::answer_first;
  const auto challenger = auth_handshake::role::challenge_first;
  const bad cases[] = {
      {"the peer's #FAILURE#", answer, challenge, frame(b("#FAILURE#")),
       "the peer sent #FAILURE#: it does not have our key", challenge.size(), false},
      {"neither #WELCOME# nor #FAILURE#", answer, challenge, frame(b("hello")),
       "expected #WELCOME# or #FAILURE#, got b'hello'", challenge.size(), false},
      {"no #CHALLENGE#", answer, {}, frame(b("#CHALLENGX#") + counting(20, 0)),
       "expected the peer's #CHALLENGE#, got b'#CHALLENGX#\\x00\\x01\\x02", 0, false},
      {"a short challenge", answer, {}, frame(b("#CHALLENGE#") + counting(19, 0)),
       "the peer's challenge is too short (19 bytes, at least 20)", 0, false},
      {"an unknown digest", answer, {}, frame(b("#CHALLENGE#{sha1}") + counting(40, 0)),
       "the peer's challenge names no digest CPython allows (b'{sha1}", 0, false},
      {"a response of no known form", challenger, {}, frame(counting(32, 0)),
       "the peer's response names no digest CPython allows (32 bytes: b'\\x00", 0, true},
      {"a bare 20-byte response (MD5 gives 16)", challenger, {}, frame(counting(20, 0)),
       "the peer's HMAC-md5 digest is 20 bytes, not 16", 0, true},
      {"a message over 256 bytes", answer, {}, frame(b("#CHALLENGE#") + counting(246, 0)),
       "handshake message of 257 bytes exceeds 256", 0, false},
      {"a 64-bit length over 256", answer, {},
       bytes{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0},
       "handshake message of 4294967296 bytes exceeds 256", 0, false},
      {"a negative length", answer, {}, bytes{0xff, 0xff, 0xff, 0xfe},
       "negative length -2 in a handshake message", 0, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto hs = make(c.first);
    hs.take_output();
    if (!c.prologue.empty()) {
      REQUIRE(hs.feed(c.prologue).status == auth_status::need_more);
      hs.take_output();
    }
    const auto s = hs.feed(c.input);
    CHECK(s.status == auth_status::failed);
    CHECK(hs.error().starts_with(c.error));
    CHECK(hs.error_offset() == c.offset);
    CHECK((hs.take_output() == frame(b("#FAILURE#"))) == c.failure_sent);
  }
}

TEST_CASE("auth_handshake reads a message of exactly 256 bytes and the -1 length escape") {
  SUBCASE("256 bytes") {
    auto hs = make(auth_handshake::role::answer_first);
    const bytes challenge = b("{sha256}") + counting(256 - 11 - 8, 0);
    const auto s = hs.feed(frame(b("#CHALLENGE#") + challenge));
    CHECK(s.status == auth_status::need_more);
    CHECK(s.consumed == 4 + 256);
    CHECK(hs.take_output().size() == 4 + 8 + 32);  // {sha256} and its digest
  }
  SUBCASE("-1 then a 64-bit length") {
    auto hs = make(auth_handshake::role::answer_first);
    const bytes message = b("#CHALLENGE#") + counting(20, 100);
    const bytes wide = bytes{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0,
                             static_cast<std::uint8_t>(message.size())} +
                       message;
    std::size_t used = 0;
    const auto s = feed(hs, wide, true, used);
    CHECK(s.status == auth_status::need_more);
    CHECK(used == wide.size());
    CHECK(hs.take_output() == frame(vec("answer_legacy")));
  }
}
