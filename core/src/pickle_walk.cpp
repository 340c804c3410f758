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

bool pickle_walk::fail_runs_past(std::size_t pos) {
  return fail(errc::incomplete_pickle, pos,
              "its argument runs past the end of the message at byte " +
                  std::to_string(message_.size()));
}

bool pickle_walk::fail(errc code, std::size_t at, std::string detail) {
  const int opcode = at < message_.size() ? message_[at] : -1;
  error_ = {code, at, opcode, std::move(detail)};
  return false;
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
        if (!detail::parse_memo_key(body, key)) return bad();
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
