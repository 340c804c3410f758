#include "record.hpp"

#include <ctime>
#include <string_view>

#include <pickleway/disassembler.hpp>

namespace pickleway::log {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

void append_hex_byte(std::string& out, std::uint8_t b) {
  out += hex_digits[b >> 4];
  out += hex_digits[b & 0xF];
}

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned c = at(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned low = 0x80, high = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) low = 0xA0;
    if (c == 0xED) high = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) low = 0x90;
    if (c == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - i < n || at(i + 1) < low || at(i + 1) > high) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((at(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

// A JSON string: control characters escaped, bytes that are not UTF-8 (a
// global's name is whatever the pickle says) replaced by U+FFFD.
void append_json(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          append_hex_byte(out, c);
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

// Text for a one-line record: control characters and bytes that are not
// UTF-8 as \xNN, so a record stays one line whatever a pickle names.
void append_text(std::string& out, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c >= 0x80 ? utf8_sequence(s, i) : 1;
    if (n == 0 || c < 0x20 || c == 0x7F) {
      out += "\\x";
      append_hex_byte(out, c);
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
}

bytes_view hex_bytes(const record& r, const format_options& options) {
  return bytes_view(r.bytes).first(std::min(r.bytes.size(), options.hex_limit));
}

// pickletools.dis's text, then "error: WHY" when pickletools would stop.
std::string disassembly(const record& r) {
  std::string text;
  const std::string why = disassemble_message(r.bytes, text);
  if (!why.empty()) text += "error: " + why + "\n";
  return text;
}

// Lines in the layout of `hexdump -C`.
void append_hex_dump(std::string& out, bytes_view shown, std::uint64_t size) {
  for (std::size_t line = 0; line < shown.size(); line += 16) {
    out += "    ";
    for (int shift = 28; shift >= 0; shift -= 4) out += hex_digits[(line >> shift) & 0xF];
    out += "  ";
    for (std::size_t i = line; i < line + 16; ++i) {
      if (i < shown.size()) {
        append_hex_byte(out, shown[i]);
        out += ' ';
      } else {
        out += "   ";
      }
      if (i == line + 7) out += ' ';
    }
    out += " |";
    for (std::size_t i = line; i < std::min(shown.size(), line + 16); ++i)
      out += shown[i] >= 0x20 && shown[i] < 0x7F ? static_cast<char>(shown[i]) : '.';
    out += "|\n";
  }
  if (shown.size() < size) out += "    ... " + std::to_string(size - shown.size()) + " more bytes\n";
}

void append_jsonl(std::string& out, const record& r, const format_options& options) {
  out += "{\"ts\":\"" + rfc3339(r.time) + "\",\"session\":";
  append_json(out, r.from->session);
  out += ",\"instance\":" + std::to_string(r.from->instance);
  if (r.what == record::kind::dropped) {
    out += ",\"dropped\":" + std::to_string(r.count) + "}\n";
    return;
  }
  out += ",\"dir\":\"";
  out += to_string(r.dir);
  out += "\",\"seq\":" + std::to_string(r.sequence) + ",\"size\":" + std::to_string(r.size);
  out += ",\"proto\":" + (r.facts.protocol ? std::to_string(*r.facts.protocol) : "null");
  out += ",\"type\":";
  if (r.facts.type.empty()) {
    out += "null";
  } else {
    append_json(out, r.facts.type);
  }
  out += ",\"globals\":[";
  for (std::size_t i = 0; i < r.facts.globals.size(); ++i) {
    if (i) out += ',';
    append_json(out, r.facts.globals[i]);
  }
  out += "],\"error\":";
  if (r.facts.error.empty()) {
    out += "null";
  } else {
    append_json(out, r.facts.error);
  }
  if (options.dis) {
    out += ",\"dis\":";
    append_json(out, disassembly(r));
  }
  if (options.hex) {
    out += ",\"hex\":\"";
    for (const std::uint8_t b : hex_bytes(r, options)) append_hex_byte(out, b);
    out += '"';
  }
  out += "}\n";
}

void append_text_record(std::string& out, const record& r, const format_options& options) {
  out += rfc3339(r.time);
  out += ' ';
  append_text(out, r.from->session);
  out += '#' + std::to_string(r.from->instance) + ' ';
  if (r.what == record::kind::dropped) {
    out += "dropped " + std::to_string(r.count) + " records: the log's queue was full\n";
    return;
  }
  out += to_string(r.dir);
  out += " seq=" + std::to_string(r.sequence) + " size=" + std::to_string(r.size);
  if (r.facts.protocol) out += " proto=" + std::to_string(*r.facts.protocol);
  if (!r.facts.type.empty()) {
    out += " type=";
    append_text(out, r.facts.type);
  }
  if (!r.facts.globals.empty()) {
    out += " globals=";
    for (std::size_t i = 0; i < r.facts.globals.size(); ++i) {
      if (i) out += ',';
      append_text(out, r.facts.globals[i]);
    }
  }
  if (!r.facts.error.empty()) {
    out += " error: ";
    append_text(out, r.facts.error);
  }
  out += '\n';
  if (options.dis) {
    const std::string text = disassembly(r);
    for (std::size_t begin = 0; begin < text.size();) {
      const std::size_t end = std::min(text.find('\n', begin), text.size());
      out += "    ";
      out.append(text, begin, end - begin);
      out += '\n';
      begin = end + 1;
    }
  }
  if (options.hex) append_hex_dump(out, hex_bytes(r, options), r.size);
}

}  // namespace

std::string rfc3339(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto since_epoch = duration_cast<microseconds>(t.time_since_epoch()).count();
  auto seconds = since_epoch / 1'000'000;
  auto micros = since_epoch % 1'000'000;
  if (micros < 0) {  // before 1970: floor, not truncation
    micros += 1'000'000;
    --seconds;
  }
  const auto whole = static_cast<std::time_t>(seconds);
  std::tm utc{};
  ::gmtime_r(&whole, &utc);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(micros));
  return text;
}

void append_record(std::string& out, const record& r, const format_options& options) {
  if (options.form == format::jsonl) {
    append_jsonl(out, r, options);
  } else {
    append_text_record(out, r, options);
  }
}

}  // namespace pickleway::log
