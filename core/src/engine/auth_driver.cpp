#include "engine/auth_driver.hpp"

#include <algorithm>
#include <cstring>

#include "pickleway/errc.hpp"

namespace pickleway {
namespace {

// Enough for any handshake message and its length, and then some: the
// peer's first messages may follow its last handshake message in one read.
constexpr std::size_t read_chunk = 4096;

}  // namespace

auth_driver::auth_driver(endpoint_runtime& endpoint, auth_handshake::role first)
    : endpoint_(endpoint),
      handshake_(first, endpoint.config->auth->key),
      in_(read_chunk) {
  out_ = handshake_.take_output();
}

auth_driver::progress auth_driver::advance() {
  for (;;) {
    // Our messages go first: the last one (#WELCOME#) must be out before
    // the pumps start, and a #FAILURE# is worth one try before closing.
    while (out_begin_ < out_.size()) {
      const io_result r = endpoint_.stream->write({out_.data() + out_begin_, out_.size() - out_begin_});
      if (r.status == io_status::done) {
        out_begin_ += r.bytes;
        written_ += r.bytes;
        continue;
      }
      if (handshake_.status() == auth_status::failed) return handshake_failed();
      if (r.status == io_status::would_block) {
        wait_handle_ = r.wait_handle;
        wait_writable_ = r.wait_writable;
        return progress::waiting;
      }
      return failed(written_,
                    "write failed: " + (r.error ? r.error : make_error_code(errc::peer_closed)).message());
    }
    out_.clear();
    out_begin_ = 0;
    switch (handshake_.status()) {
      case auth_status::failed:
        return handshake_failed();
      case auth_status::done:
        // What the peer sent after the handshake is its first message(s).
        endpoint_.early_input.assign(in_.begin() + static_cast<std::ptrdiff_t>(in_begin_),
                                     in_.begin() + static_cast<std::ptrdiff_t>(in_end_));
        endpoint_.read_offset = handshake_.offset();
        endpoint_.write_offset = written_;
        return progress::done;
      case auth_status::need_more:
        break;
    }
    if (in_begin_ > 0) {
      std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
      in_end_ -= in_begin_;
      in_begin_ = 0;
    }
    if (in_.size() - in_end_ < read_chunk) in_.resize(in_end_ + read_chunk);
    const io_result r = endpoint_.stream->read({in_.data() + in_end_, in_.size() - in_end_});
    switch (r.status) {
      case io_status::done:
        in_end_ += r.bytes;
        break;
      case io_status::would_block:
        wait_handle_ = r.wait_handle;
        wait_writable_ = r.wait_writable;
        return progress::waiting;
      case io_status::eof:
        return failed(read_offset(), std::string(errc_message(errc::peer_closed_handshake)));
      case io_status::failed:
        return failed(read_offset(), "read failed: " + r.error.message());
    }
    const auto step = handshake_.feed({in_.data() + in_begin_, in_end_ - in_begin_});
    in_begin_ += step.consumed;
    auto more = handshake_.take_output();
    out_.insert(out_.end(), more.begin(), more.end());
  }
}

auth_driver::progress auth_driver::handshake_failed() {
  return failed(handshake_.error_offset(), handshake_.error());
}

auth_driver::progress auth_driver::failed(std::uint64_t offset, const std::string& cause) {
  error_ = "offset " + std::to_string(offset) + ": authentication failed: " + cause;
  const std::string peer = endpoint_.stream->peer();
  if (!peer.empty()) error_ += " (peer " + peer + ")";
  return progress::failed;
}

}  // namespace pickleway
