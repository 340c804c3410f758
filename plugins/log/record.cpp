#include "record.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>
#include <string_view>

#include <pickleway/disassembler.hpp>
#include <pickleway/json_text.hpp>

namespace pickleway::log {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

void append_hex_byte(std::string& out, std::uint8_t b) {
  out += hex_digits[b >> 4];
  out += hex_digits[b & 0xF];
}

// Text for a one-line record: control characters and bytes that are not
// UTF-8 as \xNN, so a record stays one line whatever a pickle names.
void append_text_field(std::string& out, std::string_view s) {
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

// pickletools.dis's text, then "error: WHY" when pickletools would stop;
// at most about `limit` bytes, ending in truncated_marker when cut.
std::string disassembly(bytes_view message, std::size_t limit) {
  dis_text dis = disassemble_message(message, limit);
  if (dis.truncated) {
    dis.text += truncated_marker;
    dis.text += '\n';
  } else if (!dis.problem.empty()) {
    dis.text += "error: " + dis.problem + "\n";
  }
  return std::move(dis.text);
}

// Cuts `out` back to `end` (at a UTF-8 character's start) and ends it in
// truncated_marker and a newline.
void cut_text(std::string& out, std::size_t end) {
  while (end > 0 && (static_cast<unsigned char>(out[end]) & 0xC0) == 0x80) --end;
  out.resize(end);
  out += truncated_marker;
  out += '\n';
}

void append_number(std::string& out, std::uint64_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

// `digits` decimal digits of n, zero-padded.
void append_padded(std::string& out, std::uint64_t n, int digits) {
  char text[24];
  for (int i = digits; i-- > 0; n /= 10) text[i] = static_cast<char>('0' + n % 10);
  out.append(text, static_cast<std::size_t>(digits));
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

}  // namespace

void record_formatter::append_time(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto since_epoch = duration_cast<microseconds>(t.time_since_epoch()).count();
  auto seconds = since_epoch / 1'000'000;
  auto micros = since_epoch % 1'000'000;
  if (micros < 0) {  // before 1970: floor, not truncation
    micros += 1'000'000;
    --seconds;
  }
  if (seconds != second_) {  // a new second: once a second at most under load
    const std::string whole = rfc3339(time_point<system_clock, microseconds>(
        microseconds(seconds * 1'000'000)));
    second_text_.assign(whole, 0, whole.size() - 7);  // without "000000Z"
    second_ = seconds;
  }
  out += second_text_;
  append_padded(out, static_cast<std::uint64_t>(micros), 6);
  out += 'Z';
}

std::size_t record_formatter::room(const std::string& out, std::size_t start,
                                  std::size_t reserve) const {
  const std::size_t used = out.size() - start + reserve;
  return used < options_.max_record ? options_.max_record - used : 0;
}

void record_formatter::append_jsonl(std::string& out, const record& r, bytes_view kept,
                                    const message_facts& facts) {
  const std::size_t start = out.size();
  // What the fields after a cut one need at most, each cut in turn:
  // `,"globals":["…truncated"]`, `,"error":"…truncated"`, the same for
  // dis and hex, and the closing `}` and newline.
  const std::size_t reserve = 160;
  out += "{\"ts\":\"";
  append_time(out, r.time);
  out += "\",\"session\":";
  append_json_string(out, r.from->session, room(out, start, 2 * reserve), truncated_marker);  // however long a name the config gave
  out += ",\"instance\":";
  append_number(out, r.from->instance);
  if (r.what == record::kind::dropped) {
    out += ",\"dropped\":";
    append_number(out, r.count);
    out += "}\n";
    return;
  }
  out += ",\"dir\":\"";
  out += to_string(r.dir);
  out += "\",\"seq\":";
  append_number(out, r.sequence);
  out += ",\"size\":";
  append_number(out, r.size);
  out += ",\"proto\":";
  if (facts.protocol) {
    append_number(out, static_cast<std::uint64_t>(*facts.protocol));
  } else {
    out += "null";
  }
  out += ",\"type\":";
  if (facts.type.empty()) {
    out += "null";
  } else {
    append_json_string(out, facts.type, room(out, start, reserve), truncated_marker);
  }
  out += ",\"globals\":[";
  for (std::size_t i = 0; i < facts.globals.size(); ++i) {
    if (i) out += ',';
    // A name cut short ends the list; so does one with no room at all.
    const std::size_t left = room(out, start, reserve);
    if (left < 2 || append_json_string(out, facts.globals[i], left - 2, truncated_marker)) {
      if (left < 2) append_json_string(out, truncated_marker);
      break;
    }
  }
  out += "],\"error\":";
  if (facts.error.empty()) {
    out += "null";
  } else {
    append_json_string(out, facts.error, room(out, start, reserve), truncated_marker);
  }
  if (options_.dis) {
    out += ",\"dis\":";
    // JSON escapes each line's '\n' as two bytes: an eighth to spare keeps
    // the cut where the disassembly made it.
    const std::size_t limit = room(out, start, reserve);
    append_json_string(out, disassembly(kept, limit - limit / 8), limit, truncated_marker);
  }
  if (options_.hex) {
    out += ",\"hex\":\"";
    const bytes_view shown = kept.first(std::min(kept.size(), options_.hex_limit));
    const std::size_t limit = room(out, start, reserve) / 2;
    for (const std::uint8_t b : shown.first(std::min(shown.size(), limit))) append_hex_byte(out, b);
    if (shown.size() > limit) out += truncated_marker;
    out += '"';
  }
  out += "}\n";
}

void record_formatter::append_text(std::string& out, const record& r, bytes_view kept,
                                   const message_facts& facts) {
  const std::size_t start = out.size();
  append_time(out, r.time);
  out += ' ';
  append_text_field(out, r.from->session);
  out += '#';
  append_number(out, r.from->instance);
  out += ' ';
  if (r.what == record::kind::dropped) {
    out += "dropped ";
    append_number(out, r.count);
    out += " records: the log's queue was full\n";
    return;
  }
  out += to_string(r.dir);
  out += " seq=";
  append_number(out, r.sequence);
  out += " size=";
  append_number(out, r.size);
  if (facts.protocol) {
    out += " proto=";
    append_number(out, static_cast<std::uint64_t>(*facts.protocol));
  }
  if (!facts.type.empty()) {
    out += " type=";
    append_text_field(out, facts.type);
  }
  if (!facts.globals.empty()) {
    out += " globals=";
    for (std::size_t i = 0; i < facts.globals.size(); ++i) {
      if (i) out += ',';
      append_text_field(out, facts.globals[i]);
    }
  }
  if (!facts.error.empty()) {
    out += " error: ";
    append_text_field(out, facts.error);
  }
  out += '\n';
  if (options_.dis) {
    const std::string text = disassembly(kept, room(out, start, 0));
    for (std::size_t begin = 0; begin < text.size();) {
      const std::size_t end = std::min(text.find('\n', begin), text.size());
      out += "    ";
      out.append(text, begin, end - begin);
      out += '\n';
      begin = end + 1;
    }
  }
  if (options_.hex) {
    // 16 bytes a line of 79 characters: no more than the record has room for.
    const std::size_t fits = (room(out, start, 0) / 79 + 1) * 16;
    append_hex_dump(out, kept.first(std::min({kept.size(), options_.hex_limit, fits})), r.size);
  }
  if (out.size() - start > options_.max_record)
    cut_text(out, start + options_.max_record - truncated_marker.size() - 1);
}

void record_formatter::append(std::string& out, const record& r, bytes_view kept,
                              const message_facts& facts) {
  if (options_.form == format::jsonl) {
    append_jsonl(out, r, kept, facts);
  } else {
    append_text(out, r, kept, facts);
  }
}

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

}  // namespace pickleway::log
