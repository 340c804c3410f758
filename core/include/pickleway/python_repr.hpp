// Python's repr() of the values a pickle argument can hold, byte for byte as
// CPython prints them, so `pickleway dis` matches pickletools and error
// messages show bytes the way a Python user reads them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "pickleway/framer.hpp"

namespace pickleway {

// repr(bytes): b'...'.
std::string bytes_repr(bytes_view bytes);

// repr of the first `limit` bytes, with the count of the rest when cut.
std::string preview(bytes_view bytes, std::size_t limit = 64);

// repr(str) of a string given as code points.
std::string str_repr(std::u32string_view text);

// UTF-8 to code points; surrogates pass (as pickle's decoder lets them).
// nullopt when the bytes are not UTF-8.
std::optional<std::u32string> decode_utf8(bytes_view bytes);

// Latin-1 to code points (BINSTRING arguments).
std::u32string decode_latin1(bytes_view bytes);

// Python's 'raw-unicode-escape' codec (UNICODE arguments); nullopt on a bad
// \u or \U escape.
std::optional<std::u32string> decode_raw_unicode_escape(bytes_view bytes);

// Python's 'escape_decode' of a string literal body (STRING arguments);
// nullopt on a bad \x escape.
std::optional<std::string> escape_decode(std::string_view literal);

// repr(float).
std::string float_repr(double value);

// repr(int) of a little-endian two's complement integer (LONG1, LONG4).
std::string long_repr(bytes_view little_endian);

// repr(int(text)) of a decimal the way pickle writes it ("-0012" -> "-12").
std::string decimal_repr(std::string_view text);

}  // namespace pickleway
