// What a plugin library exports: one descriptor, through Boost.DLL.
//
//   #include <pickleway/plugin.hpp>
//   static std::unique_ptr<pickleway::transport> build(const pickleway::option_values&,
//                                                      pickleway::option_error&);
//   PICKLEWAY_TRANSPORT_PLUGIN("tcp", "1.0.0", "TCP and TLS", tcp_options,
//                              pickleway::guarded_factory<build>)
//
// The core loads every library on its plugin search path, reads the
// descriptor's abi_version first, and refuses a library built against
// another one. Libraries stay loaded until the process exits, so nothing a
// plugin made can outlive its code.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>

#include <boost/dll/alias.hpp>

#include "pickleway/filter.hpp"
#include "pickleway/guarded.hpp"
#include "pickleway/options.hpp"
#include "pickleway/transport.hpp"

namespace pickleway {

// Bumped on any change to the public headers that changes their ABI.
inline constexpr std::uint32_t abi_version = 5;

enum class plugin_kind : std::uint32_t { transport = 1, filter = 2 };

using make_transport_fn = std::unique_ptr<transport> (*)(const option_values&, option_error&) noexcept;
using make_filter_fn = std::unique_ptr<filter_factory> (*)(const option_values&, option_error&) noexcept;
// For a filter whose output only its own kind can read (compress's frames):
// whether `message`, the bytes of a message that an endpoint of a session
// without this filter could not take, look like what this filter writes.
// Returns what to tell the user ("looks like a frame of the compress
// filter: does this session need compress?"), text that lives as long as
// the library, or nullptr. Pure; called on the error path only.
using recognize_output_fn = const char* (*)(bytes_view message) noexcept;

// A factory refuses bad options by returning nullptr with `option_error`
// filled. Like every entry point of a plugin it is noexcept: a body that
// can throw (yaml, std::string, std::filesystem) runs inside guarded(),
// which turns the exception into that refusal.
struct plugin_descriptor {
  std::uint32_t abi_version;  // first, and never moved: read before the rest
  plugin_kind kind;
  const char* name;
  const char* version;
  const char* description;
  std::span<const option_spec> options;
  make_transport_fn make_transport;  // for kind transport
  make_filter_fn make_filter;        // for kind filter
  recognize_output_fn recognize_output;  // optional, for kind filter
};

// The factory entry point made of a `build(values, error)` that may throw:
// what it throws becomes the refusal, with its text, so that no plugin
// writes the boundary's try/catch itself.
template <auto build>
auto guarded_factory(const option_values& values, option_error& error) noexcept
    -> std::invoke_result_t<decltype(build), const option_values&, option_error&> {
  using made = std::invoke_result_t<decltype(build), const option_values&, option_error&>;
  return guarded(
      [&](std::string_view why) {
        error = {"", std::string(why)};
        return made();
      },
      [&] { return build(values, error); });
}

// The exported symbol's name and type.
inline constexpr const char* plugin_symbol = "pickleway_plugin";
using plugin_entry_fn = const plugin_descriptor* ();

}  // namespace pickleway

// Defines and exports the descriptor of this library.
#define PICKLEWAY_PLUGIN_(kind_, name_, version_, description_, options_, transport_, filter_, \
                          recognize_)                                                           \
  namespace pickleway_plugin_export {                                                           \
  inline const ::pickleway::plugin_descriptor* describe() {                                     \
    static const ::pickleway::plugin_descriptor descriptor{                                     \
        ::pickleway::abi_version, kind_, name_, version_, description_, options_,                \
        transport_, filter_, recognize_};                                                       \
    return &descriptor;                                                                         \
  }                                                                                             \
  }                                                                                             \
  BOOST_DLL_ALIAS(pickleway_plugin_export::describe, pickleway_plugin)

#define PICKLEWAY_TRANSPORT_PLUGIN(name, version, description, options, make)                \
  PICKLEWAY_PLUGIN_(::pickleway::plugin_kind::transport, name, version, description, options, \
                    make, nullptr, nullptr)

#define PICKLEWAY_FILTER_PLUGIN(name, version, description, options, make)                    \
  PICKLEWAY_PLUGIN_(::pickleway::plugin_kind::filter, name, version, description, options,     \
                    nullptr, make, nullptr)

// A filter that also recognises its own output (see recognize_output_fn).
#define PICKLEWAY_FILTER_PLUGIN_RECOGNIZING(name, version, description, options, make, recognize) \
  PICKLEWAY_PLUGIN_(::pickleway::plugin_kind::filter, name, version, description, options,        \
                    nullptr, make, recognize)
