#include "pickleway/python_repr.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <limits>
#include <vector>

namespace pickleway {
namespace {

struct code_point_range {
  char32_t first;
  char32_t last;
};

constexpr code_point_range non_printable[] = {
#include "unicode_printable.inc"
};

bool is_printable(char32_t c) {
  const auto* it = std::upper_bound(
      std::begin(non_printable), std::end(non_printable), c,
      [](char32_t value, const code_point_range& r) { return value < r.first; });
  return it == std::begin(non_printable) || c > std::prev(it)->last;
}

void append_hex(std::string& out, std::uint32_t value, int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
    out += hex[(value >> shift) & 0xF];
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Python picks ' unless the text holds ' and no ".
template <typename Range>
char pick_quote(const Range& text) {
  const bool single = std::find(text.begin(), text.end(), '\'') != text.end();
  const bool dbl = std::find(text.begin(), text.end(), '"') != text.end();
  return single && !dbl ? '"' : '\'';
}

// The escapes bytes and str share; false when `c` needs a form of its own.
bool append_common_escape(std::string& out, char32_t c, char quote) {
  switch (c) {
    case '\t': out += "\\t"; return true;
    case '\n': out += "\\n"; return true;
    case '\r': out += "\\r"; return true;
    case '\\': out += "\\\\"; return true;
    default: break;
  }
  if (c == static_cast<char32_t>(quote)) {
    out += '\\';
    out += quote;
    return true;
  }
  if (c < 0x20 || c == 0x7F) {
    out += "\\x";
    append_hex(out, c, 2);
    return true;
  }
  if (c < 0x7F) {
    out += static_cast<char>(c);
    return true;
  }
  return false;
}

int hex_value(std::uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string bytes_repr(bytes_view bytes) {
  const char quote = pick_quote(bytes);
  std::string out = "b";
  out += quote;
  for (const std::uint8_t b : bytes) {
    if (!append_common_escape(out, b, quote)) {
      out += "\\x";
      append_hex(out, b, 2);
    }
  }
  out += quote;
  return out;
}

std::string preview(bytes_view bytes, std::size_t limit) {
  if (bytes.size() <= limit) return bytes_repr(bytes);
  return bytes_repr(bytes.first(limit)) + "... (" +
         std::to_string(bytes.size() - limit) + " more bytes)";
}

std::string str_repr(std::u32string_view text) {
  const char quote = pick_quote(text);
  std::string out(1, quote);
  for (const char32_t c : text) {
    if (append_common_escape(out, c, quote)) continue;
    if (is_printable(c)) {
      append_utf8(out, c);
    } else if (c <= 0xFF) {
      out += "\\x";
      append_hex(out, c, 2);
    } else if (c <= 0xFFFF) {
      out += "\\u";
      append_hex(out, c, 4);
    } else {
      out += "\\U";
      append_hex(out, c, 8);
    }
  }
  out += quote;
  return out;
}

std::optional<std::u32string> decode_utf8(bytes_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    const std::uint8_t lead = bytes[i];
    int extra;
    char32_t c;
    if (lead < 0x80) { c = lead; extra = 0; }
    else if (lead >= 0xC2 && lead < 0xE0) { c = lead & 0x1F; extra = 1; }
    else if (lead >= 0xE0 && lead < 0xF0) { c = lead & 0x0F; extra = 2; }
    else if (lead >= 0xF0 && lead < 0xF5) { c = lead & 0x07; extra = 3; }
    else return std::nullopt;
    if (bytes.size() - i <= static_cast<std::size_t>(extra)) return std::nullopt;
    for (int k = 1; k <= extra; ++k) {
      const std::uint8_t b = bytes[i + static_cast<std::size_t>(k)];
      if ((b & 0xC0) != 0x80) return std::nullopt;
      c = (c << 6) | (b & 0x3F);
    }
    const bool overlong = (extra == 2 && c < 0x800) || (extra == 3 && c < 0x10000);
    if (overlong || c > 0x10FFFF) return std::nullopt;
    out += c;
    i += 1 + static_cast<std::size_t>(extra);
  }
  return out;
}

std::u32string decode_latin1(bytes_view bytes) {
  return std::u32string(bytes.begin(), bytes.end());
}

std::optional<std::u32string> decode_raw_unicode_escape(bytes_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    // A backslash escapes only when an odd run of them precedes u or U.
    if (bytes[i] != '\\') {
      out += bytes[i++];
      continue;
    }
    std::size_t run = 0;
    while (i + run < bytes.size() && bytes[i + run] == '\\') ++run;
    const std::size_t after = i + run;
    const bool escape = run % 2 == 1 && after < bytes.size() &&
                        (bytes[after] == 'u' || bytes[after] == 'U');
    out.append(escape ? run - 1 : run, U'\\');
    i = after;
    if (!escape) continue;
    const std::size_t digits = bytes[after] == 'u' ? 4 : 8;
    if (after + digits >= bytes.size()) return std::nullopt;
    char32_t c = 0;
    for (std::size_t k = 1; k <= digits; ++k) {
      const int v = hex_value(bytes[after + k]);
      if (v < 0) return std::nullopt;
      c = (c << 4) | static_cast<char32_t>(v);
    }
    if (c > 0x10FFFF) return std::nullopt;
    out += c;
    i = after + 1 + digits;
  }
  return out;
}

std::optional<std::string> escape_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      if (s[i] == '\\') return std::nullopt;  // "Trailing \ in string"
      out += s[i];
      continue;
    }
    const char c = s[++i];
    switch (c) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': {
        const int hi = i + 1 < s.size() ? hex_value(static_cast<std::uint8_t>(s[i + 1])) : -1;
        const int lo = i + 2 < s.size() ? hex_value(static_cast<std::uint8_t>(s[i + 2])) : -1;
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          int value = c - '0';
          for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k)
            value = value * 8 + (s[++i] - '0');
          out += static_cast<char>(value & 0xFF);
        } else {
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

std::string float_repr(double value) {
  if (value != value) return "nan";
  if (value == std::numeric_limits<double>::infinity()) return "inf";
  if (value == -std::numeric_limits<double>::infinity()) return "-inf";
  char buf[64];
  // Shortest round-trip digits, as "d.ddde+XX", then laid out as Python's
  // repr does: positional for exponents -4..15, else scientific.
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(end - buf));
  std::string out;
  if (sci[0] == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  const std::size_t e = sci.find('e');
  std::string digits;
  for (const char c : sci.substr(0, e))
    if (c != '.') digits += c;
  int exponent = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+'), sci.data() + sci.size(), exponent);

  if (exponent < -4 || exponent >= 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += exponent < 0 ? "e-" : "e+";
    const int magnitude = exponent < 0 ? -exponent : exponent;
    if (magnitude < 10) out += '0';
    out += std::to_string(magnitude);
  } else if (exponent < 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-exponent - 1), '0');
    out += digits;
  } else {
    const auto int_digits = static_cast<std::size_t>(exponent) + 1;
    if (digits.size() <= int_digits) {
      out += digits;
      out.append(int_digits - digits.size(), '0');
      out += ".0";
    } else {
      out += digits.substr(0, int_digits);
      out += '.';
      out += digits.substr(int_digits);
    }
  }
  return out;
}

std::string long_repr(bytes_view le) {
  if (le.empty()) return "0";
  const bool negative = le.back() & 0x80;
  // Magnitude as little-endian 32-bit limbs (two's complement negated).
  std::vector<std::uint32_t> limbs((le.size() + 3) / 4, 0);
  for (std::size_t i = 0; i < le.size(); ++i)
    limbs[i / 4] |= static_cast<std::uint32_t>(le[i]) << (8 * (i % 4));
  if (negative) {
    // Sign-extend the top limb, then negate: invert and add one.
    for (std::size_t i = le.size(); i % 4 != 0; ++i)
      limbs[i / 4] |= std::uint32_t{0xFF} << (8 * (i % 4));
    std::uint64_t carry = 1;
    for (auto& limb : limbs) {
      const std::uint64_t sum = static_cast<std::uint64_t>(~limb) + carry;
      limb = static_cast<std::uint32_t>(sum);
      carry = sum >> 32;
    }
  }
  // Repeated division by 10^9 gives the decimal digits nine at a time.
  std::vector<std::uint32_t> chunks;
  while (!limbs.empty()) {
    std::uint64_t remainder = 0;
    for (std::size_t i = limbs.size(); i-- > 0;) {
      const std::uint64_t cur = (remainder << 32) | limbs[i];
      limbs[i] = static_cast<std::uint32_t>(cur / 1'000'000'000u);
      remainder = cur % 1'000'000'000u;
    }
    chunks.push_back(static_cast<std::uint32_t>(remainder));
    while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
  }
  std::string out = negative ? "-" : "";
  out += std::to_string(chunks.back());
  for (std::size_t i = chunks.size() - 1; i-- > 0;) {
    const std::string part = std::to_string(chunks[i]);
    out.append(9 - part.size(), '0');
    out += part;
  }
  return out;
}

std::string decimal_repr(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  const std::size_t first = text.find_first_not_of('0');
  if (first == std::string_view::npos) return "0";
  std::string out(negative ? "-" : "");
  return out.append(text.substr(first));
}

}  // namespace pickleway
