// Text for JSON and for one-line records, from bytes that may be anything:
// a global's name is whatever a pickle says, an error may quote a peer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pickleway {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept;

// Appends `s` as a JSON string: control characters escaped, bytes that are
// not UTF-8 replaced by U+FFFD. Past `limit` bytes of escaped text the
// string ends in `cut_marker`; returns whether it was cut.
bool append_json_string(std::string& out, std::string_view s, std::size_t limit = SIZE_MAX,
                        std::string_view cut_marker = "...");

}  // namespace pickleway
