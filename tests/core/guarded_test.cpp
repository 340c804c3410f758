// guarded(): the one helper at the plugin boundary turns whatever a body
// throws into the entry point's error return.
#include <doctest/doctest.h>

#include <new>
#include <stdexcept>
#include <string>

#include "pickleway/guarded.hpp"

namespace pickleway::test {
namespace {

// What an entry point returning an error string would give.
std::string run(auto body) {
  return guarded([](std::string_view why) { return "failed: " + std::string(why); }, body);
}

TEST_CASE("guarded returns the body's value, or the error of what it threw") {
  SUBCASE("a body that returns") { CHECK(run([] { return std::string("fine"); }) == "fine"); }
  SUBCASE("std::bad_alloc is out of memory") {
    CHECK(run([]() -> std::string { throw std::bad_alloc(); }) == "failed: out of memory");
  }
  SUBCASE("another std::exception gives its what()") {
    CHECK(run([]() -> std::string { throw std::runtime_error("no such thing"); }) ==
          "failed: no such thing");
  }
  SUBCASE("anything else is an unknown exception") {
    CHECK(run([]() -> std::string { throw 42; }) == "failed: unknown exception");
  }
}

TEST_CASE("guarded asks again with out of memory when the error handler throws") {
  std::string seen;
  const int result = guarded(
      [&](std::string_view why) {
        if (why != "out of memory") throw std::bad_alloc();  // no memory to copy a long what()
        seen = why;
        return -1;
      },
      []() -> int { throw std::runtime_error("a long explanation that does not fit"); });
  CHECK(result == -1);
  CHECK(seen == "out of memory");
}

TEST_CASE("guarded runs a body that returns nothing") {
  bool failed = false;
  guarded([&](std::string_view) { failed = true; }, [] { throw std::logic_error("x"); });
  CHECK(failed);
  static_assert(noexcept(guarded([](std::string_view) {}, [] {})));
}

}  // namespace
}  // namespace pickleway::test
