#include "http_request.hpp"

namespace pickleway {
namespace {

// RFC 9110's tchar: what a method and a header name are made of.
bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

http_head bad(std::string why) {
  http_head h;
  h.status = http_head::state::bad;
  h.error = std::move(why);
  return h;
}

// A line without its line end (CRLF, or a bare LF as RFC 9112 lets a
// server accept).
std::string_view strip_cr(std::string_view line) {
  return !line.empty() && line.back() == '\r' ? line.substr(0, line.size() - 1) : line;
}

}  // namespace

http_head parse_http_head(std::string_view bytes) {
  // The head ends at the first empty line.
  std::size_t end = std::string_view::npos;
  for (std::size_t at = bytes.find('\n'); at != std::string_view::npos; at = bytes.find('\n', at + 1)) {
    const std::size_t next = at + 1;
    if (next < bytes.size() && bytes[next] == '\n') {
      end = next + 1;
      break;
    }
    if (next + 1 < bytes.size() && bytes[next] == '\r' && bytes[next + 1] == '\n') {
      end = next + 2;
      break;
    }
  }
  if (end == std::string_view::npos || end > max_http_head) {
    if (bytes.size() >= max_http_head || end != std::string_view::npos)
      return bad("request head longer than " + std::to_string(max_http_head) + " bytes");
    return {};
  }
  const std::string_view head = bytes.substr(0, end);

  const std::size_t line_end = head.find('\n');
  const std::string_view line = strip_cr(head.substr(0, line_end));
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return bad("the request line is not METHOD TARGET VERSION");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return bad("the method is not a token");
  if (target.empty() || target.front() != '/') return bad("the target is not an absolute path");
  for (const char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7F)
      return bad("the target holds a control or non-ASCII byte");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return bad("not HTTP/1.0 or HTTP/1.1");

  // Header lines: NAME ":" VALUE, nothing more is read of them.
  for (std::size_t from = line_end + 1; from < head.size();) {
    const std::size_t to = head.find('\n', from);
    const std::string_view field = strip_cr(head.substr(from, to - from));
    from = to + 1;
    if (field.empty()) break;
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || !is_token(field.substr(0, colon)))
      return bad("a header line is not NAME: VALUE");
  }

  http_head h;
  h.status = http_head::state::complete;
  h.method = method;
  h.path = target.substr(0, target.find('?'));
  return h;
}

}  // namespace pickleway
