// A length-framed endpoint as the peer's bytes meet it: the `auth`
// handshake (multiprocessing.connection's authkey challenge), then the
// length reader over what follows. Fed whole and again in chunks the input
// chooses (each in a fresh heap block of its exact size), both must agree
// on everything: the handshake's outcome, offsets, error and every byte it
// sends, then each message read. Besides:
//  - the handshake only succeeds for a peer that proved the key: the same
//    bytes never authenticate under two different keys;
//  - on success we sent #WELCOME# (last as a Client, before our answer to
//    the peer's challenge as a Listener); what we send is whole
//    length-framed messages of at most 256 bytes;
//  - the reader never hands out more than max_message, asks for more than
//    it has when it needs more, and its errors are sticky.
//
// Input: one byte of flags (bit 0: we answer first, as a Client, else we
// challenge first, as a Listener; bits 1-2: max_message; bit 3: no auth,
// the reader alone), one byte N, N % 8 chunk sizes (cycled; 0 means 1),
// then the peer's bytes. Our challenge's random part is fixed:
// byte i is (37 * i + 11) mod 256, and the key is "pickleway-fuzz-key"
// (tools/fuzz/make_seeds.py writes transcripts for them).
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "engine/auth_handshake.hpp"
#include "engine/message_codec.hpp"
#include "fuzz_input.hpp"

namespace {

using namespace pickleway;
using fuzz::exact_copy;
using bytes = std::vector<std::uint8_t>;

constexpr std::string_view key = "pickleway-fuzz-key";
constexpr std::string_view other_key = "not-the-fuzz-key";

void fixed_random(std::span<std::uint8_t> into) {
  for (std::size_t i = 0; i < into.size(); ++i) into[i] = static_cast<std::uint8_t>(37 * i + 11);
}

bytes key_bytes(std::string_view k) { return {k.begin(), k.end()}; }

struct read_event {
  frame_status status;
  std::uint64_t offset;  // the reader's offset after the step
  bytes message;
  std::string error;
  bool operator==(const read_event&) const = default;
};

struct transcript {
  bool authenticating = false;
  auth_status auth = auth_status::need_more;
  std::uint64_t auth_offset = 0;
  bytes sent;  // everything the handshake sent, in order
  std::string error;
  std::uint64_t error_offset = 0;
  std::vector<read_event> reads;
  bool operator==(const transcript&) const = default;
};

// Splits what the handshake sent into its length-framed messages.
std::vector<bytes> sent_messages(const bytes& sent) {
  std::vector<bytes> out;
  for (std::size_t at = 0; at < sent.size();) {
    PICKLEWAY_FUZZ_CHECK(sent.size() - at >= 4);
    std::size_t n = 0;
    for (std::size_t i = 0; i < 4; ++i) n = n << 8 | sent[at + i];
    at += 4;
    PICKLEWAY_FUZZ_CHECK(n <= auth_handshake::max_message && sent.size() - at >= n);
    out.emplace_back(sent.begin() + static_cast<std::ptrdiff_t>(at),
                     sent.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
  }
  return out;
}

void read_step_event(message_reader& reader, const read_step& s, bytes_view data,
                     std::uint64_t max_message, std::vector<read_event>& reads) {
  PICKLEWAY_FUZZ_CHECK(s.consumed <= data.size());
  read_event e{s.status, reader.offset(), {}, s.error};
  switch (s.status) {
    case frame_status::message:
      PICKLEWAY_FUZZ_CHECK(s.message.size() <= max_message);
      PICKLEWAY_FUZZ_CHECK(s.consumed >= s.message.size() + 4);
      // The message is the last bytes of what the step consumed.
      PICKLEWAY_FUZZ_CHECK(s.message.data() + s.message.size() == data.data() + s.consumed);
      e.message.assign(s.message.begin(), s.message.end());
      break;
    case frame_status::need_more:
      fuzz::broken("need_more is not recorded", __FILE__, __LINE__);
    case frame_status::error:
      PICKLEWAY_FUZZ_CHECK(!s.error.empty() && s.consumed == 0);
      break;
    case frame_status::end:
      PICKLEWAY_FUZZ_CHECK(data.empty());
      break;
    case frame_status::stray:
      fuzz::broken("a length reader set bytes aside as stray", __FILE__, __LINE__);
  }
  reads.push_back(std::move(e));
}

// Runs the endpoint over `stream`, `chunk()` more bytes becoming available
// each time.
template <typename Chunker>
transcript run(bool answer_first, bool authenticate, std::uint64_t max_message, std::string_view k,
               bytes_view stream, Chunker chunk) {
  transcript t;
  t.authenticating = authenticate;
  auth_handshake handshake(
      answer_first ? auth_handshake::role::answer_first : auth_handshake::role::challenge_first,
      key_bytes(k), fixed_random);
  framing_config framing;
  framing.kind = framing_kind::length;
  framing.pickle.max_message = max_message;
  const auto reader = make_reader(framing);
  bool authenticated = !authenticate;
  std::size_t consumed = 0, available = 0;
  for (;;) {
    const exact_copy copy(stream.subspan(consumed, available - consumed));
    const bytes_view data = copy.view();
    const bool at_end = available == stream.size();
    if (!authenticated) {
      const auto before = handshake.offset();
      const auth_step s = handshake.feed(data);
      PICKLEWAY_FUZZ_CHECK(s.consumed <= data.size() && s.status == handshake.status());
      PICKLEWAY_FUZZ_CHECK(handshake.offset() == before + s.consumed);
      const bytes out = handshake.take_output();
      t.sent.insert(t.sent.end(), out.begin(), out.end());
      consumed += s.consumed;
      if (s.status == auth_status::failed) {
        PICKLEWAY_FUZZ_CHECK(!handshake.error().empty());
        PICKLEWAY_FUZZ_CHECK(handshake.error_offset() <= handshake.offset());
        // It stays failed and consumes nothing more.
        const auth_step again = handshake.feed(data.subspan(s.consumed));
        PICKLEWAY_FUZZ_CHECK(again.status == auth_status::failed && again.consumed == 0);
        t.error = handshake.error();
        t.error_offset = handshake.error_offset();
        break;
      }
      if (s.status == auth_status::done) {
        authenticated = true;
        continue;  // the rest of the bytes are the peer's first messages
      }
      if (at_end) break;  // the peer went away mid-handshake
      available += std::min(chunk(), stream.size() - available);
      continue;
    }
    read_step s = reader->next(data);
    if (s.status == frame_status::need_more) {
      PICKLEWAY_FUZZ_CHECK(s.consumed == 0 && reader->wanted() > data.size());
      if (!at_end) {
        available += std::min(chunk(), stream.size() - available);
        continue;
      }
      s = reader->finish(data);
      PICKLEWAY_FUZZ_CHECK(s.status == frame_status::end || s.status == frame_status::error);
    }
    read_step_event(*reader, s, data, max_message, t.reads);
    if (s.status != frame_status::message) {
      if (s.status == frame_status::error)
        PICKLEWAY_FUZZ_CHECK(reader->next(data).status == frame_status::error);  // sticky
      break;
    }
    consumed += s.consumed;
  }
  t.auth = handshake.status();
  t.auth_offset = handshake.offset();
  return t;
}

// What a whole-input run must satisfy beyond agreeing with the chunked one.
void check_handshake(const transcript& t, bool answer_first) {
  if (!t.authenticating) return;
  const auto sent = sent_messages(t.sent);
  const auto is = [](const bytes& b, std::string_view s) {
    return std::string_view(reinterpret_cast<const char*>(b.data()), b.size()) == s;
  };
  if (!answer_first) {
    // A Listener challenges at once, before reading anything.
    PICKLEWAY_FUZZ_CHECK(!sent.empty() && sent[0].size() == 11 + 8 + 40);
  }
  if (t.auth == auth_status::done) {
    // We welcomed the peer: last as a Client; as a Listener, before our
    // answer to its challenge.
    const std::size_t welcome = answer_first ? 1 : 2;
    PICKLEWAY_FUZZ_CHECK(sent.size() >= welcome && is(sent[sent.size() - welcome], "#WELCOME#"));
    PICKLEWAY_FUZZ_CHECK(t.error.empty());
  }
  for (const bytes& m : sent) PICKLEWAY_FUZZ_CHECK(!is(m, "#FAILURE#") || t.auth == auth_status::failed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t flags = in.take();
  const bool answer_first = (flags & 1) != 0;
  constexpr std::uint64_t max_messages[] = {default_max_message, 16, 300, largest_max_message};
  const std::uint64_t max_message = max_messages[(flags >> 1) & 3];
  const bool authenticate = (flags & 8) == 0;
  std::vector<std::size_t> chunks;
  for (std::size_t n = in.take() % 8; n > 0; --n) chunks.push_back(std::max<std::size_t>(in.take(), 1));
  if (chunks.empty()) chunks.push_back(1);
  const bytes_view stream = in.rest();

  const auto whole = run(answer_first, authenticate, max_message, key, stream, [] { return SIZE_MAX; });
  std::size_t next = 0;
  const auto chunked = run(answer_first, authenticate, max_message, key, stream,
                           [&] { return chunks[next++ % chunks.size()]; });
  PICKLEWAY_FUZZ_CHECK(whole == chunked);
  check_handshake(whole, answer_first);
  if (authenticate && whole.auth == auth_status::done) {
    const auto other = run(answer_first, true, max_message, other_key, stream, [] { return SIZE_MAX; });
    PICKLEWAY_FUZZ_CHECK(other.auth != auth_status::done);
  }
  return 0;
}
