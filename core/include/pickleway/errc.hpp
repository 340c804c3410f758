// pickleway's error conditions: one list makes the enum, the names and the
// messages, so the data path can return std::error_code and every layer
// prints the same words. The framer's causes come first, then what an
// instance's failure is counted under (/metrics); the data path's others (a
// peer gone, a direction with nowhere to go) follow in a sibling list of the
// same shape, in the same enum and category.
#pragma once

#include <string_view>
#include <system_error>

namespace pickleway {

// X(enumerator, message)
#define PICKLEWAY_ERRORS(X)                                                   \
  X(unknown_opcode, "unknown opcode")                                         \
  X(message_too_large, "message larger than max_message")                     \
  X(bad_text_argument, "malformed text argument")                             \
  X(bad_length, "negative length")                                            \
  X(unsupported_protocol, "unsupported pickle protocol")                      \
  X(truncated_message, "stream ended inside a message")                       \
  X(incomplete_pickle, "the message ends before its pickle does")             \
  X(frame_misaligned, "FRAME length does not end on an opcode boundary")      \
  X(undefined_memo, "memo entry used that the message did not define")        \
  X(stray_bytes, "stray bytes where a message should start")                  \
  X(stack_underflow, "stack underflow")                                       \
  X(missing_mark, "no MARK on the stack")                                     \
  X(out_of_memory, "not enough memory to inspect the message")               \
  /* Why an instance failed, beyond its messages (the metrics' causes). */     \
  X(open_failed, "an endpoint could not be opened")                           \
  X(auth_failed, "authentication failed")                                     \
  X(read_failed, "a read failed")                                             \
  X(write_failed, "a write failed")                                           \
  X(filter_failed, "a filter failed the instance")                            \
  X(child_failed, "a child exited with an error")                             \
  X(link_failed, "a link broke or was lost")                                  \
  X(engine_failed, "the engine could not go on")

// What ends a direction of an instance when its bytes were fine: the
// pumps', the auth handshake's and the link's causes. X(enumerator, message)
#define PICKLEWAY_PATH_ERRORS(X)                                                     \
  X(peer_closed, "the peer closed the stream")                                       \
  X(peer_closed_connection, "the peer closed the connection")                        \
  X(peer_closed_handshake, "the peer closed the stream during the handshake")        \
  X(far_gateway_closed, "the far gateway closed the connection")                     \
  X(no_writing_side, "it has no writing side for the message that arrived")       \
  X(broker_failed, "the broker failed or cannot be reached (the line before says why)")

enum class errc {
  ok = 0,
#define PICKLEWAY_ENUM(name, message) name,
  PICKLEWAY_ERRORS(PICKLEWAY_ENUM)
  PICKLEWAY_PATH_ERRORS(PICKLEWAY_ENUM)
#undef PICKLEWAY_ENUM
};

// The message of `e` (what make_error_code(e).message() says, without
// allocating), e.g. "the peer closed the stream".
std::string_view errc_message(errc e) noexcept;

const std::error_category& pickleway_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), pickleway_category()};
}

// The enumerator's name, e.g. "unknown_opcode" (for logs and JSON).
std::string_view errc_name(errc e) noexcept;

}  // namespace pickleway

template <>
struct std::is_error_code_enum<pickleway::errc> : std::true_type {};
