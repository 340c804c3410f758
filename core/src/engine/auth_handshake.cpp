#include "engine/auth_handshake.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "pickleway/python_repr.hpp"

namespace pickleway {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view challenge_tag = "#CHALLENGE#";
constexpr std::string_view welcome_tag = "#WELCOME#";
constexpr std::string_view failure_tag = "#FAILURE#";
constexpr std::string_view our_digest = "sha256";

// CPython 3.12's _MD5ONLY_MESSAGE_LENGTH and _MD5_DIGEST_LEN: a bare message
// of either length is the legacy HMAC-MD5 form.
constexpr std::size_t legacy_challenge_length = 20;
constexpr std::size_t md5_length = 16;

// The digests CPython 3.12 allows (_ALLOWED_DIGESTS), by OpenSSL's names.
struct digest_kind {
  std::string_view name;
  const EVP_MD* (*md)();
};
constexpr digest_kind allowed_digests[] = {
    {"md5", EVP_md5},           {"sha256", EVP_sha256},     {"sha384", EVP_sha384},
    {"sha3_256", EVP_sha3_256}, {"sha3_384", EVP_sha3_384},
};
constexpr std::size_t longest_digest_name = 8;  // "sha3_256"

std::string_view as_text(bytes_view b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bytes_view as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool equals(bytes_view b, std::string_view s) { return as_text(b) == s; }

// A message's digest and the bytes it covers, as _get_digest_name_and_payload
// reads them: a bare 16- or 20-byte message is legacy HMAC-MD5 (no digest
// named); anything else must open with `{name}`, name allowed.
struct digest_and_payload {
  const digest_kind* digest = nullptr;  // nullptr: legacy, bare HMAC-MD5
  bytes_view payload;
};

std::optional<digest_and_payload> split_digest(bytes_view message) {
  if (message.size() == legacy_challenge_length || message.size() == md5_length)
    return digest_and_payload{nullptr, message};
  const std::string_view text = as_text(message);
  if (!text.starts_with('{')) return std::nullopt;
  // CPython looks for the '}' within message[1 : longest + 2].
  const std::size_t curly = text.substr(0, longest_digest_name + 2).find('}', 1);
  if (curly == std::string_view::npos) return std::nullopt;
  const std::string_view name = text.substr(1, curly - 1);
  for (const auto& d : allowed_digests)
    if (d.name == name) return digest_and_payload{&d, message.subspan(curly + 1)};
  return std::nullopt;
}

std::vector<std::uint8_t> hmac(const digest_kind& digest, bytes_view key, bytes_view data) {
  static const std::uint8_t empty = 0;
  std::vector<std::uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int size = 0;
  if (key.size() > static_cast<std::size_t>(INT_MAX) ||
      !HMAC(digest.md(), key.empty() ? &empty : key.data(), static_cast<int>(key.size()),
            data.empty() ? &empty : data.data(), data.size(), out.data(), &size))
    throw std::runtime_error("HMAC-" + std::string(digest.name) + " is not available");
  out.resize(size);
  return out;
}

const digest_kind& md5() { return allowed_digests[0]; }

void random_bytes(std::span<std::uint8_t> into) {
  if (RAND_bytes(into.data(), static_cast<int>(into.size())) != 1)
    throw std::runtime_error("no random bytes for the challenge (OpenSSL RAND_bytes failed)");
}

}  // namespace

auth_handshake::auth_handshake(role first, std::vector<std::uint8_t> key, random_source random)
    : first_(first),
      key_(std::move(key)),
      random_(random ? std::move(random) : random_source(random_bytes)),
      state_(first == role::challenge_first ? state::await_response : state::await_challenge) {
  if (first_ == role::challenge_first) send_challenge();
}

std::vector<std::uint8_t> auth_handshake::take_output() {
  std::vector<std::uint8_t> out;
  out.swap(output_);
  return out;
}

auth_step auth_handshake::feed(bytes_view data) {
  std::size_t used = 0;
  while (status_ == auth_status::need_more) {
    const bytes_view rest = data.subspan(used);
    // A length as multiprocessing.connection reads it: signed 32-bit, -1
    // announcing an unsigned 64-bit one.
    std::size_t header = 4;
    if (rest.size() < header) break;
    std::uint64_t word = 0;
    for (std::size_t i = 0; i < 4; ++i) word = (word << 8) | rest[i];
    std::int64_t length = static_cast<std::int32_t>(static_cast<std::uint32_t>(word));
    std::uint64_t size = 0;
    message_offset_ = offset_;
    if (length == -1) {
      header = 12;
      if (rest.size() < header) break;
      for (std::size_t i = 4; i < 12; ++i) size = (size << 8) | rest[i];
    } else if (length < 0) {
      fail("negative length " + std::to_string(length) + " in a handshake message");
      break;
    } else {
      size = static_cast<std::uint64_t>(length);
    }
    if (size > max_message) {
      fail("handshake message of " + std::to_string(size) + " bytes exceeds " +
           std::to_string(max_message));
      break;
    }
    const std::size_t total = header + static_cast<std::size_t>(size);
    if (rest.size() < total) break;
    used += total;
    offset_ += total;
    const bytes_view message = rest.subspan(header, static_cast<std::size_t>(size));
    bool ok = false;
    try {
      switch (state_) {
        case state::await_response: ok = on_response(message); break;
        case state::await_challenge: ok = on_challenge(message); break;
        case state::await_welcome: ok = on_welcome(message); break;
        case state::finished: break;
      }
    } catch (const std::exception& e) {  // a digest OpenSSL cannot compute
      ok = fail(e.what());
    }
    if (!ok) break;
  }
  return {status_, used};
}

void auth_handshake::send(bytes_view message) {
  // Handshake messages are short: always the 4-byte length.
  const auto n = static_cast<std::uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8) output_.push_back(static_cast<std::uint8_t>(n >> shift));
  output_.insert(output_.end(), message.begin(), message.end());
}

void auth_handshake::send_challenge() {
  challenge_.assign(1, '{');
  challenge_.insert(challenge_.end(), our_digest.begin(), our_digest.end());
  challenge_.push_back('}');
  const std::size_t prefix = challenge_.size();
  challenge_.resize(prefix + challenge_random);
  random_(std::span<std::uint8_t>(challenge_).subspan(prefix));
  std::vector<std::uint8_t> message(challenge_tag.size() + challenge_.size());
  std::memcpy(message.data(), challenge_tag.data(), challenge_tag.size());
  std::memcpy(message.data() + challenge_tag.size(), challenge_.data(), challenge_.size());
  send(message);
}

bool auth_handshake::on_response(bytes_view message) {
  // As CPython 3.12's _verify_challenge: the peer picks the digest (a bare
  // 16 bytes is a 3.11 peer's HMAC-MD5), over our whole challenge.
  const auto split = split_digest(message);
  if (!split) {
    send(as_bytes(failure_tag));
    return fail("the peer's response names no digest CPython allows (" +
                std::to_string(message.size()) + " bytes: " + preview(message, 32) + ")");
  }
  const digest_kind& digest = split->digest ? *split->digest : md5();
  const auto expected = hmac(digest, key_, challenge_);
  if (expected.size() != split->payload.size() ||
      CRYPTO_memcmp(expected.data(), split->payload.data(), expected.size()) != 0) {
    send(as_bytes(failure_tag));
    if (expected.size() != split->payload.size())
      return fail("the peer's HMAC-" + std::string(digest.name) + " digest is " +
                  std::to_string(split->payload.size()) + " bytes, not " +
                  std::to_string(expected.size()));
    return fail("the peer's digest does not match the key");
  }
  send(as_bytes(welcome_tag));
  if (first_ == role::challenge_first) {
    state_ = state::await_challenge;
  } else {
    state_ = state::finished;
    status_ = auth_status::done;
  }
  return true;
}

bool auth_handshake::on_challenge(bytes_view message) {
  if (!as_text(message).starts_with(challenge_tag))
    return fail("expected the peer's #CHALLENGE#, got " + preview(message, 32));
  const bytes_view challenge = message.subspan(challenge_tag.size());
  if (challenge.size() < legacy_challenge_length)
    return fail("the peer's challenge is too short (" + std::to_string(challenge.size()) +
                " bytes, at least " + std::to_string(legacy_challenge_length) + ")");
  const auto split = split_digest(challenge);
  if (!split)
    return fail("the peer's challenge names no digest CPython allows (" + preview(challenge, 32) +
                ")");
  if (!split->digest) {
    send(hmac(md5(), key_, challenge));  // a 3.11 peer: the bare HMAC-MD5
  } else {
    const std::string_view name = split->digest->name;
    std::vector<std::uint8_t> response;
    response.push_back('{');
    response.insert(response.end(), name.begin(), name.end());
    response.push_back('}');
    const auto mac = hmac(*split->digest, key_, challenge);
    response.insert(response.end(), mac.begin(), mac.end());
    send(response);
  }
  state_ = state::await_welcome;
  return true;
}

bool auth_handshake::on_welcome(bytes_view message) {
  if (equals(message, failure_tag))
    return fail("the peer sent #FAILURE#: it does not have our key");
  if (!equals(message, welcome_tag))
    return fail("expected #WELCOME# or #FAILURE#, got " + preview(message, 32));
  if (first_ == role::answer_first) {
    state_ = state::await_response;
    send_challenge();
  } else {
    state_ = state::finished;
    status_ = auth_status::done;
  }
  return true;
}

bool auth_handshake::fail(std::string why) {
  status_ = auth_status::failed;
  state_ = state::finished;
  error_ = std::move(why);
  error_offset_ = message_offset_;
  return false;
}

}  // namespace pickleway
