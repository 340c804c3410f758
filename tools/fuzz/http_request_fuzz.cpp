// The metrics server's request reader over any bytes: the input is what a
// client sends. A head is incomplete, complete or bad, never more than
// max_http_head bytes are looked at, a complete one names a token method
// and an absolute path without its query, inside the input; and more bytes
// after a complete or bad head change nothing.
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "http_request.hpp"

using namespace pickleway;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const http_head h = parse_http_head(text);
  switch (h.status) {
    case http_head::state::incomplete:
      PICKLEWAY_FUZZ_CHECK(size < max_http_head);
      PICKLEWAY_FUZZ_CHECK(h.error.empty());
      break;
    case http_head::state::bad:
      PICKLEWAY_FUZZ_CHECK(!h.error.empty());
      break;
    case http_head::state::complete:
      PICKLEWAY_FUZZ_CHECK(!h.method.empty() && inside(h.method, text));
      PICKLEWAY_FUZZ_CHECK(!h.path.empty() && h.path.front() == '/' && inside(h.path, text));
      PICKLEWAY_FUZZ_CHECK(h.path.find('?') == std::string_view::npos);
      PICKLEWAY_FUZZ_CHECK(static_cast<std::size_t>(h.path.data() - text.data()) < max_http_head);
      break;
  }
  if (h.status != http_head::state::incomplete) {
    // What follows a finished head is not read.
    const std::string longer = std::string(text) + "\r\n\r\nGET /x HTTP/1.1\r\n\r\n";
    const http_head again = parse_http_head(longer);
    PICKLEWAY_FUZZ_CHECK(again.status == h.status);
    PICKLEWAY_FUZZ_CHECK(again.method == h.method && again.path == h.path);
  }
  return 0;
}
