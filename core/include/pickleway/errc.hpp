// pickleway's error conditions: one list makes the enum, the names and the
// messages, so the data path can return std::error_code and every layer
// prints the same words. An instance's failure has one of them as its
// cause: what /metrics counts it under.
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

enum class errc {
  ok = 0,
#define PICKLEWAY_ENUM(name, message) name,
  PICKLEWAY_ERRORS(PICKLEWAY_ENUM)
#undef PICKLEWAY_ENUM
};

const std::error_category& pickleway_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), pickleway_category()};
}

// The enumerator's name, e.g. "unknown_opcode" (for logs and JSON).
std::string_view errc_name(errc e) noexcept;

}  // namespace pickleway

template <>
struct std::is_error_code_enum<pickleway::errc> : std::true_type {};
