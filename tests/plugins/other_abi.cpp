// A plugin built for another ABI version: the core must refuse it, naming
// the file. Written by hand, as a plugin of a future pickleway would be.
#include <pickleway/plugin.hpp>

namespace {

const pickleway::plugin_descriptor* describe() {
  static const pickleway::plugin_descriptor descriptor{
      pickleway::abi_version + 1, pickleway::plugin_kind::transport, "from_the_future", "9.0.0",
      "built for another ABI", {}, nullptr, nullptr};
  return &descriptor;
}

}  // namespace

BOOST_DLL_ALIAS(describe, pickleway_plugin)
