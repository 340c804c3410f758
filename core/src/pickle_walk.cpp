#include "pickleway/pickle_walk.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pickleway/python_repr.hpp"
#include "text_arguments.hpp"

namespace pickleway {

bool pickle_walk::fail(errc code, std::size_t at, std::string detail) {
  const int opcode = at < message_.size() ? message_[at] : -1;
  error_ = {code, at, opcode, std::move(detail)};
  return false;
}

bool pickle_walk::next(pickle_op& o) {
  if (stopped_ || failed()) return false;
  const std::uint8_t* const base = message_.data();
  const std::size_t size = message_.size();
  const std::size_t pos = pos_;
  if (pos >= size) {
    return fail(errc::truncated_message, pos,
                "the message ends at byte " + std::to_string(size) + " without a STOP opcode");
  }
  const opcode_info* info = find_opcode(base[pos]);
  if (!info) return fail(errc::unknown_opcode, pos, {});
  o = pickle_op{};
  o.info = info;
  o.pos = pos;
  const arg_kind kind = info->arg;
  const std::size_t arg = pos + 1;
  const auto runs_past = [&] {
    return fail(errc::truncated_message, pos,
                "its argument runs past the end of the message at byte " + std::to_string(size));
  };

  if (const int fixed = fixed_width(kind)) {
    const auto width = static_cast<std::size_t>(fixed);
    if (size - arg < width) return runs_past();
    o.end = arg + width;
    if (kind == arg_kind::float8) {
      std::uint64_t bits = 0;
      for (std::size_t i = 0; i < width; ++i) bits = (bits << 8) | base[arg + i];  // big-endian
      o.form = value_form::floating;
      o.floating = std::bit_cast<double>(bits);
    } else {
      const std::uint64_t value = detail::load_le(base + arg, fixed);
      o.form = value_form::integer;
      o.integer = kind == arg_kind::int4 ? static_cast<std::int32_t>(value)
                                         : static_cast<std::int64_t>(value);
      if (info->code == op::FRAME && value > size - o.end)
        return fail(errc::frame_misaligned, pos,
                    "a FRAME of " + std::to_string(value) + " bytes runs past the end of the message");
    }
  } else if (const int prefix = length_prefix_width(kind)) {
    const auto width = static_cast<std::size_t>(prefix);
    if (size - arg < width) return runs_past();
    const std::uint64_t length = detail::load_le(base + arg, prefix);
    if (has_signed_length(kind) && (length & 0x8000'0000u))
      return fail(errc::bad_length, pos, std::to_string(static_cast<std::int32_t>(length)));
    const std::size_t payload = arg + width;
    if (length > size - payload) return runs_past();
    o.end = payload + static_cast<std::size_t>(length);
    o.text = {reinterpret_cast<const char*>(base + payload), static_cast<std::size_t>(length)};
    switch (kind) {
      case arg_kind::long1: case arg_kind::long4: o.form = value_form::long_bytes; break;
      case arg_kind::string1: case arg_kind::string4:
        o.form = value_form::text;
        o.encoding = text_encoding::latin1;
        break;
      case arg_kind::unicodestring1: case arg_kind::unicodestring4: case arg_kind::unicodestring8:
        o.form = value_form::text;
        o.encoding = text_encoding::utf8;
        break;
      default: o.form = value_form::bytes; break;
    }
  } else if (is_text(kind)) {
    const void* nl = std::memchr(base + arg, '\n', size - arg);
    if (nl && kind == arg_kind::stringnl_noescape_pair) {
      const auto* second = static_cast<const std::uint8_t*>(nl) + 1;
      nl = std::memchr(second, '\n', static_cast<std::size_t>(base + size - second));
    }
    if (!nl)
      return fail(errc::truncated_message, pos,
                  "no '\\n' ends its text argument before the end of the message");
    const auto line_end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - base);
    o.end = line_end + 1;
    if (!decode_text(o, line_end)) return false;
  } else {
    o.end = arg;
  }

  // A FRAME's bytes hold whole opcodes, and frames do not nest.
  if (pos < frame_end_ && o.end > frame_end_)
    return fail(errc::frame_misaligned, pos,
                "an opcode crosses the end of the FRAME at " + std::to_string(frame_end_));
  switch (info->code) {
    case op::FRAME:
      if (pos < frame_end_)
        return fail(errc::frame_misaligned, pos,
                    "a FRAME begins inside the FRAME that ends at " + std::to_string(frame_end_));
      frame_end_ = o.end + static_cast<std::size_t>(o.integer);
      break;
    case op::PROTO:
      if (o.integer > highest_protocol)
        return fail(errc::unsupported_protocol, pos, std::to_string(o.integer));
      break;
    case op::STOP:
      if (frame_end_ > o.end)
        return fail(errc::frame_misaligned, pos,
                    "the message ends inside the FRAME that ends at " + std::to_string(frame_end_));
      stopped_ = true;
      break;
    default:
      break;
  }
  pos_ = o.end;
  return true;
}

std::optional<str_constant> string_constant(const pickle_op& o) {
  if (o.form != value_form::text) return std::nullopt;
  const auto ascii = [](std::string_view s) {
    return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) > 0x7F; });
  };
  // ASCII, and no backslash that could start an escape.
  const auto plain = [&](std::string_view s) {
    return ascii(s) && s.find('\\') == std::string_view::npos;
  };
  switch (o.encoding) {
    case text_encoding::utf8:
      return str_constant{o.text, false};
    case text_encoding::raw_unicode_escape:
      if (!plain(o.text)) return std::nullopt;
      return str_constant{o.text, false};
    case text_encoding::latin1:  // its bytes, escapes and all
      if (!ascii(o.text)) return std::nullopt;
      return str_constant{o.text, true};
    case text_encoding::escaped: {
      // 'text' or "text": the quotes are the argument's own.
      const std::string_view body = without_cr(o.text);
      if (body.size() < 2 || body.size() != o.text.size()) return std::nullopt;
      const std::string_view inner = body.substr(1, body.size() - 2);
      if (!plain(inner)) return std::nullopt;
      return str_constant{inner, true};
    }
    case text_encoding::line:
      return std::nullopt;
  }
  return std::nullopt;
}

// A protocol 0/1 text argument: the line from o.pos + 1 to the '\n' at `nl`.
bool pickle_walk::decode_text(pickle_op& o, std::size_t nl) {
  const char* const base = reinterpret_cast<const char*>(message_.data());
  const std::size_t arg = o.pos + 1;
  const std::string_view line(base + arg, nl - arg);
  const std::string_view body = without_cr(line);
  const arg_kind kind = o.info->arg;
  const auto bad = [&] {
    return fail(errc::bad_text_argument, o.pos,
                preview(bytes_view(message_.data() + arg, nl + 1 - arg)));
  };
  switch (kind) {
    case arg_kind::stringnl_noescape_pair: {
      const std::size_t split = line.find('\n');
      o.form = value_form::name_pair;
      o.encoding = text_encoding::line;
      o.text = line.substr(0, split);
      o.second = line.substr(split + 1);
      return true;
    }
    case arg_kind::unicodestringnl:
      o.form = value_form::text;
      o.encoding = text_encoding::raw_unicode_escape;
      o.text = line;
      return true;
    default:
      break;
  }
  if (!detail::text_argument_is_valid(kind, body)) return bad();
  switch (kind) {
    case arg_kind::decimalnl_short: {
      const op code = o.info->code;
      if (code == op::GET || code == op::PUT) {
        std::uint64_t key = 0;
        if (!detail::parse_memo_key(body, key) || key > INT64_MAX) return bad();
        o.form = value_form::integer;
        o.integer = static_cast<std::int64_t>(key);
        return true;
      }
      // pickle writes True and False as INT 01 and 00; anything else is a number.
      if (line == "00" || line == "01") {
        o.form = value_form::boolean;
        o.integer = line[1] - '0';
        return true;
      }
      std::string_view digits = body;
      if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), o.integer);
      if (ec == std::errc{} && end == digits.data() + digits.size()) {
        o.form = value_form::integer;
      } else {
        o.form = value_form::decimal;
        o.text = body;
      }
      return true;
    }
    case arg_kind::decimalnl_long:
      o.form = value_form::decimal;
      o.text = body.back() == 'L' ? body.substr(0, body.size() - 1) : body;
      return true;
    case arg_kind::floatnl: {
      const std::string_view number = body.substr(body[0] == '+');
      o.form = value_form::floating;
      const auto read = std::from_chars(number.data(), number.data() + number.size(), o.floating);
      // Out of range, Python reads inf or 0.0, as strtod does (the rare case).
      if (read.ec == std::errc::result_out_of_range) o.floating = std::strtod(std::string(number).c_str(), nullptr);
      return true;
    }
    case arg_kind::stringnl:
      o.form = value_form::text;
      o.encoding = text_encoding::escaped;
      o.text = line;
      return true;
    default:  // stringnl_noescape: PERSID
      o.form = value_form::text;
      o.encoding = text_encoding::line;
      o.text = line;
      return true;
  }
}

}  // namespace pickleway
