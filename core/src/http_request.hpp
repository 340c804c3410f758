// The head of an HTTP/1.x request, as the metrics server reads it: the
// request line, and header lines that are only checked for form. Bytes
// from anyone who can reach the port: bounded, and never trusted.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pickleway {

struct http_head {
  enum class state : unsigned char { incomplete, complete, bad };
  state status = state::incomplete;
  std::string_view method;  // complete: "GET"
  std::string_view path;    // complete: the target without its query, "/metrics"
  std::string error;        // bad: why, for the 400 response
};

// The largest head read; a longer one is bad.
inline constexpr std::size_t max_http_head = 8192;

// Parses what arrived so far (views point into `bytes`).
http_head parse_http_head(std::string_view bytes);

}  // namespace pickleway
