// multiprocessing.connection's mutual authkey challenge, as a pure state
// machine: no I/O, so the engine drives it over any byte stream and a fuzzer
// drives it from raw bytes.
//
// The wire: every handshake message is framed as `framing: length` frames
// its messages (a signed 32-bit big-endian length, -1 then a 64-bit one).
// One side *challenges*: it sends b'#CHALLENGE#' + MESSAGE, reads the
// peer's digest of MESSAGE under the shared key, and answers b'#WELCOME#' or
// b'#FAILURE#'. Then the roles swap, so each side proves the key to the
// other. Listener.accept() challenges first, Client() answers first.
//
// The forms, as CPython 3.12+ chooses them (Lib/multiprocessing/connection.py):
// - we challenge with b'{sha256}' + 40 random bytes. A 3.12+ peer answers
//   b'{sha256}' + HMAC-SHA256(key, MESSAGE); a 3.11 peer answers a bare
//   16-byte HMAC-MD5(key, MESSAGE). Both are accepted, as 3.12 accepts them:
//   a bare response of 16 or 20 bytes is read as HMAC-MD5, a longer one must
//   name its digest (md5, sha256, sha384, sha3_256, sha3_384) in braces; the
//   digest always covers the whole MESSAGE, prefix included.
// - we answer a 20-byte bare challenge (a 3.11 peer's) with the bare
//   HMAC-MD5, and a `{digest}`-prefixed one with `{digest}` + HMAC of that
//   digest over the whole challenge. Anything else (shorter than 20 bytes,
//   no known digest) fails, as it does in 3.12.
// - each handshake message read is capped at 256 bytes, as CPython caps it.
//
// Call order: construct; send take_output(); feed() what the peer sends,
// sending take_output() after each call, until feed() says done or failed.
// On done, send the last output before anything else: the bytes of `data`
// past `consumed` are the peer's first messages, not the handshake's.
// On failed, the output holds b'#FAILURE#' when we refused the peer's
// digest; send it if possible, then close.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "pickleway/framer.hpp"

namespace pickleway {

enum class auth_status : std::uint8_t { need_more, done, failed };

struct auth_step {
  auth_status status = auth_status::need_more;
  std::size_t consumed = 0;  // bytes of `data` used up by this call
};

class auth_handshake {
 public:
  enum class role : std::uint8_t {
    challenge_first,  // the side that accepted the connection (Listener)
    answer_first,     // the other side (Client)
  };
  // Fills its span with random bytes (the challenge). The default draws
  // from OpenSSL's RAND_bytes; tests and fuzzers inject a fixed one.
  using random_source = std::function<void(std::span<std::uint8_t>)>;

  // Longest handshake message read, as CPython's recv_bytes(256).
  static constexpr std::size_t max_message = 256;
  // Random bytes in our challenge, after its `{sha256}` prefix.
  static constexpr std::size_t challenge_random = 40;

  auth_handshake(role first, std::vector<std::uint8_t> key, random_source random = {});

  // The peer's bytes not consumed yet, as framer::next takes them: bytes a
  // call did not consume must be passed again, first and unchanged. After
  // done or failed it consumes nothing and says the same again.
  auth_step feed(bytes_view data);

  // Bytes to send, in order; taking them empties the queue.
  std::vector<std::uint8_t> take_output();
  bool has_output() const { return !output_.empty(); }

  auth_status status() const { return status_; }
  // Input bytes consumed so far (the stream offset of the next one).
  std::uint64_t offset() const { return offset_; }
  // For failed: why ("the peer's digest does not match the key"), and the
  // stream offset of the handshake message at fault.
  const std::string& error() const { return error_; }
  std::uint64_t error_offset() const { return error_offset_; }

 private:
  enum class state : std::uint8_t {
    await_response,   // we challenged: the peer's digest
    await_challenge,  // the peer's challenge
    await_welcome,    // we answered: its verdict
    finished,
  };

  void send(bytes_view message);
  void send_challenge();
  // Handles one whole handshake message; false when it failed.
  bool on_response(bytes_view message);
  bool on_challenge(bytes_view message);
  bool on_welcome(bytes_view message);
  bool fail(std::string why);

  role first_;
  std::vector<std::uint8_t> key_;
  random_source random_;
  state state_;
  auth_status status_ = auth_status::need_more;
  std::vector<std::uint8_t> challenge_;  // what we sent after b'#CHALLENGE#'
  std::vector<std::uint8_t> output_;
  std::uint64_t offset_ = 0;
  std::uint64_t message_offset_ = 0;  // of the message being handled
  std::string error_;
  std::uint64_t error_offset_ = 0;
};

}  // namespace pickleway
