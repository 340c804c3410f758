#include "pickleway/pickle_walk.hpp"

#include <algorithm>
#include <array>
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

namespace {

// The opcode table re-indexed by byte and cut to what next() reads: one
// load gives an opcode's layout and what its argument decodes to.
enum class layout : std::uint8_t { invalid, none, fixed, prefixed, text };

struct alignas(8) walk_step {
  std::int8_t row = -1;  // in opcode_table
  layout lay = layout::invalid;
  std::uint8_t width = 0;  // of a fixed argument, or of a length prefix
  value_form form = value_form::none;
  text_encoding encoding = text_encoding::utf8;
  bool signed_value = false;  // int4, and the signed lengths of LONG4 and BINSTRING
  bool special = false;       // FRAME, PROTO, STOP: more to check
};

constexpr walk_step step_of(std::size_t row) {
  const opcode_info& info = opcode_table[row];
  const arg_kind k = info.arg;
  walk_step s;
  s.row = static_cast<std::int8_t>(row);
  s.special = info.code == op::FRAME || info.code == op::PROTO || info.code == op::STOP;
  if (fixed_width(k)) {
    s.lay = layout::fixed;
    s.width = static_cast<std::uint8_t>(fixed_width(k));
    s.form = k == arg_kind::float8 ? value_form::floating : value_form::integer;
    s.signed_value = k == arg_kind::int4;
  } else if (length_prefix_width(k)) {
    s.lay = layout::prefixed;
    s.width = static_cast<std::uint8_t>(length_prefix_width(k));
    s.signed_value = has_signed_length(k);
    switch (k) {
      case arg_kind::long1: case arg_kind::long4: s.form = value_form::long_bytes; break;
      case arg_kind::string1: case arg_kind::string4:
        s.form = value_form::text;
        s.encoding = text_encoding::latin1;
        break;
      case arg_kind::unicodestring1: case arg_kind::unicodestring4: case arg_kind::unicodestring8:
        s.form = value_form::text;
        break;
      default: s.form = value_form::bytes; break;
    }
  } else if (is_text(k)) {
    s.lay = layout::text;
  } else {
    s.lay = layout::none;
  }
  return s;
}

constexpr std::array<walk_step, 256> walk_steps = [] {
  std::array<walk_step, 256> steps{};
  for (std::size_t row = 0; row < opcode_table.size(); ++row)
    steps[static_cast<std::uint8_t>(opcode_table[row].code)] = step_of(row);
  return steps;
}();

static_assert(std::endian::native == std::endian::little, "next() loads little-endian arguments with memcpy");

std::uint64_t load(const std::uint8_t* p, std::size_t width) {
  switch (width) {
    case 1: return p[0];
    case 2: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case 4: {
      std::uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    default: {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
  }
}

}  // namespace

bool pickle_walk::next(pickle_op& o) {
  if (stopped_ || failed()) return false;
  const std::uint8_t* const base = message_.data();
  const std::size_t size = message_.size();
  const std::size_t pos = pos_;
  if (pos >= size) {
    return fail(errc::incomplete_pickle, pos,
                "the message ends at byte " + std::to_string(size) + " without a STOP opcode");
  }
  const walk_step s = walk_steps[base[pos]];
  if (s.lay == layout::invalid) return fail(errc::unknown_opcode, pos, {});
  o.info = &opcode_table[static_cast<std::size_t>(s.row)];
  o.pos = pos;
  o.form = s.form;
  o.encoding = s.encoding;
  const std::size_t arg = pos + 1;
  const auto runs_past = [&] {
    return fail(errc::incomplete_pickle, pos,
                "its argument runs past the end of the message at byte " + std::to_string(size));
  };

  switch (s.lay) {
    case layout::invalid:
    case layout::none:
      o.end = arg;
      break;
    case layout::fixed: {
      if (size - arg < s.width) return runs_past();
      o.end = arg + s.width;
      const std::uint64_t value = load(base + arg, s.width);
      if (s.form == value_form::floating) {
        o.floating = std::bit_cast<double>(__builtin_bswap64(value));  // big-endian
      } else {
        o.integer = s.signed_value ? static_cast<std::int32_t>(value) : static_cast<std::int64_t>(value);
      }
      break;
    }
    case layout::prefixed: {
      if (size - arg < s.width) return runs_past();
      const std::uint64_t length = load(base + arg, s.width);
      if (s.signed_value && (length & 0x8000'0000u))
        return fail(errc::bad_length, pos, std::to_string(static_cast<std::int32_t>(length)));
      const std::size_t payload = arg + s.width;
      if (length > size - payload) return runs_past();
      o.end = payload + static_cast<std::size_t>(length);
      o.text = {reinterpret_cast<const char*>(base + payload), static_cast<std::size_t>(length)};
      break;
    }
    case layout::text: {
      const void* nl = std::memchr(base + arg, '\n', size - arg);
      if (nl && o.info->arg == arg_kind::stringnl_noescape_pair) {
        const auto* second = static_cast<const std::uint8_t*>(nl) + 1;
        nl = std::memchr(second, '\n', static_cast<std::size_t>(base + size - second));
      }
      if (!nl)
        return fail(errc::incomplete_pickle, pos,
                    "no '\\n' ends its text argument before the end of the message");
      const auto line_end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - base);
      o.end = line_end + 1;
      if (!decode_text(o, line_end)) return false;
      break;
    }
  }

  // A FRAME's bytes hold whole opcodes, and frames do not nest.
  if (pos < frame_end_ && o.end > frame_end_)
    return fail(errc::frame_misaligned, pos,
                "an opcode crosses the end of the FRAME at " + std::to_string(frame_end_));
  if (s.special) {
    switch (o.code()) {
      case op::FRAME:
        if (pos < frame_end_)
          return fail(errc::frame_misaligned, pos,
                      "a FRAME begins inside the FRAME that ends at " + std::to_string(frame_end_));
        if (static_cast<std::uint64_t>(o.integer) > size - o.end)
          return fail(errc::frame_misaligned, pos,
                      "a FRAME of " + std::to_string(static_cast<std::uint64_t>(o.integer)) +
                          " bytes runs past the end of the message");
        frame_end_ = o.end + static_cast<std::size_t>(o.integer);
        break;
      case op::PROTO:
        if (o.integer > highest_protocol)
          return fail(errc::unsupported_protocol, pos, std::to_string(o.integer));
        break;
      default:  // STOP
        if (frame_end_ > o.end)
          return fail(errc::frame_misaligned, pos,
                      "the message ends inside the FRAME that ends at " + std::to_string(frame_end_));
        stopped_ = true;
        break;
    }
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
