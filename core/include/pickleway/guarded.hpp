// The one guard at the plugin boundary: every entry point of a plugin (and
// of the core, for what it gives plugins) is noexcept and returns its
// error; a body that can throw (allocation, std::string, yaml-cpp,
// std::filesystem) runs inside guarded(), which turns an exception into
// that entry point's error return.
//
//   open_step step(bool timed_out) noexcept override {
//     return pickleway::guarded([](std::string_view why) { return open_step::fail(std::string(why)); },
//                               [&] { return step_on(timed_out); });
//   }
//
// `on_error` receives what went wrong: "out of memory" for std::bad_alloc,
// e.what() for another std::exception, "unknown exception" for anything
// else. It runs inside the handler; should it throw in turn (copying a long
// e.what() when memory is short), it is called once more with
// "out of memory", which it must turn into its value without throwing:
// those 13 characters fit any std::string's own buffer, so building a
// std::string (open_step::fail, filter errors) or an option_error from
// them does not allocate.
#pragma once

#include <exception>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

namespace pickleway {

template <typename OnError, typename Body>
auto guarded(OnError&& on_error, Body&& body) noexcept -> std::invoke_result_t<Body&> {
  constexpr std::string_view out_of_memory = "out of memory";
  try {
    return body();
  } catch (const std::bad_alloc&) {
  } catch (const std::exception& e) {
    try {
      return on_error(std::string_view(e.what()));
    } catch (...) {
    }
  } catch (...) {
    try {
      return on_error(std::string_view("unknown exception"));
    } catch (...) {
    }
  }
  return on_error(out_of_memory);
}

}  // namespace pickleway
