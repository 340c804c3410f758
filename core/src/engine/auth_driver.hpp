// Runs an endpoint's `auth` handshake over its opened stream: the I/O side
// of auth_handshake, non-blocking like the pumps. The instance owns it,
// waits where it asks, and bounds the whole of it with `timeout_ms`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/auth_handshake.hpp"
#include "engine/pump.hpp"

namespace pickleway {

class auth_driver {
 public:
  enum class progress : std::uint8_t { waiting, done, failed };

  // Throws when no challenge can be made (no random bytes).
  auth_driver(endpoint_runtime& endpoint, auth_handshake::role first);

  // Does all it can without blocking. waiting: call again once
  // wait_handle() is ready (wait_writable()). done: the peer is
  // authenticated, our last message is written, and the endpoint's
  // early_input, read_offset and write_offset are set for its pump.
  // failed: error() says why; nothing after the handshake was read on.
  progress advance();

  int wait_handle() const { return wait_handle_; }
  bool wait_writable() const { return wait_writable_; }
  // "offset 96: authentication failed: the peer's digest does not match the key"
  const std::string& error() const { return error_; }
  // The stream offset up to which the peer's bytes have been read.
  std::uint64_t read_offset() const { return handshake_.offset() + (in_end_ - in_begin_); }

 private:
  progress failed(std::uint64_t offset, const std::string& cause);
  progress handshake_failed();

  endpoint_runtime& endpoint_;
  auth_handshake handshake_;
  std::vector<std::uint8_t> in_;
  std::size_t in_begin_ = 0, in_end_ = 0;
  std::vector<std::uint8_t> out_;
  std::size_t out_begin_ = 0;
  std::uint64_t written_ = 0;
  int wait_handle_ = -1;
  bool wait_writable_ = false;
  std::string error_;
};

}  // namespace pickleway
