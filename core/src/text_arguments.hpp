// How the text arguments of protocol 0 and 1 opcodes read (INT, LONG,
// FLOAT, STRING, GET, PUT, PERSID, ...): shared by the framer and the walk,
// so that both accept exactly the same messages.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string_view>

#include "pickleway/opcodes.hpp"
#include "pickleway/pickle_walk.hpp"

namespace pickleway::detail {

inline bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

inline std::string_view strip_sign(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return s;
}

// Whether a text argument (its '\r' removed) reads as CPython reads it.
inline bool text_argument_is_valid(arg_kind kind, std::string_view s) {
  switch (kind) {
    case arg_kind::decimalnl_short:
      return is_digits(strip_sign(s));
    case arg_kind::decimalnl_long:
      if (!s.empty() && s.back() == 'L') s.remove_suffix(1);
      return is_digits(strip_sign(s));
    case arg_kind::floatnl: {
      const std::string_view body = s.substr(!s.empty() && s[0] == '+');
      double value;
      const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), value);
      // Out of range still reads in Python (as inf or 0.0).
      return end == body.data() + body.size() &&
             (ec == std::errc{} || ec == std::errc::result_out_of_range) && !body.empty();
    }
    case arg_kind::stringnl:
      return s.size() >= 2 && (s[0] == '\'' || s[0] == '"') && s.back() == s[0];
    case arg_kind::stringnl_noescape:  // PERSID: CPython requires ASCII
      return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    default:
      return true;
  }
}

// A memo key written in text (GET, PUT): digits only. CPython's int() also
// takes signs, spaces and underscores; no pickler writes them, so they are
// refused rather than interpreted. CPython reads the key as a Py_ssize_t, so
// one above INT64_MAX fails there and is refused here.
inline bool parse_memo_key(std::string_view s, std::uint64_t& key) {
  constexpr std::uint64_t largest = INT64_MAX;
  // Up to 19 digits cannot overflow 64 bits: checked and summed in one
  // pass, the common case.
  if (!s.empty() && s.size() <= 19) {
    key = 0;
    for (const char c : s) {
      const unsigned digit = static_cast<unsigned char>(c) - unsigned{'0'};
      if (digit > 9) return false;
      key = key * 10 + digit;
    }
    return key <= largest;
  }
  if (!is_digits(s)) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), key);
  return ec == std::errc{} && end == s.data() + s.size() && key <= largest;
}

}  // namespace pickleway::detail
