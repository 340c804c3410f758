// "did you mean 'command'?": the known word nearest to a misspelt one.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pickleway {

// The candidate nearest to `word` by edit distance (insertions, deletions,
// substitutions and swaps of neighbours, each counting one), if it is
// close enough to be the word meant: at most one edit per three letters
// of `word`, and fewer edits than `word` has letters. The first of equally
// near candidates wins.
std::optional<std::string_view> nearest_word(std::string_view word,
                                             std::span<const std::string_view> candidates);

// ": did you mean 'WORD'?", to end a message, for the nearest candidate; or "".
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace pickleway
