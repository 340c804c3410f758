// "did you mean ...?": which known word is near enough to name.
#include <doctest/doctest.h>

#include "nearest_word.hpp"

using namespace pickleway;

namespace {

constexpr std::string_view keys[] = {"command", "env", "cwd", "stderr", "channel", "a", "b"};

}  // namespace

TEST_CASE("the nearest known word is named for a slip of a letter or two") {
  CHECK(nearest_word("comand", keys) == "command");   // one left out
  CHECK(nearest_word("commmand", keys) == "command"); // one too many
  CHECK(nearest_word("cwm", keys) == "cwd");          // one wrong
  CHECK(nearest_word("sterdr", keys) == "stderr");    // two swapped count as one
  CHECK(nearest_word("chanel", keys) == "channel");
  CHECK(nearest_word("Command", keys) == "command");
  constexpr std::string_view transports[] = {"spawn", "stdio", "fifo", "unix", "tcp"};
  CHECK(nearest_word("tpc", transports) == "tcp");
  CHECK(nearest_word("unxi", transports) == "unix");
}

TEST_CASE("no word is named when none is near enough, or the word is known") {
  CHECK_FALSE(nearest_word("colour", keys));
  CHECK_FALSE(nearest_word("comms", keys));      // three edits from command: too many for five letters
  CHECK_FALSE(nearest_word("c", keys));           // one letter from a and b, but all of it
  CHECK_FALSE(nearest_word("command", keys));    // not misspelt
  CHECK_FALSE(nearest_word("", keys));
  CHECK_FALSE(nearest_word(std::string(1000, 'x'), keys));
  CHECK(did_you_mean("comand", keys) == ": did you mean 'command'?");
  CHECK(did_you_mean("colour", keys).empty());
}
