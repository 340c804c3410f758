// A filter whose schema gives an option a default that is no value of its
// type: the core must skip it when it loads, naming the file and the option.
#include <pickleway/plugin.hpp>

namespace {

using namespace pickleway;

constexpr option_spec bad_default_options[] = {
    {.name = "level", .type = option_type::integer, .help = "a level", .default_value = "high"},
};

std::unique_ptr<filter_factory> make(const option_values&, option_error& error) noexcept {
  error = {"", "never made"};
  return nullptr;
}

}  // namespace

PICKLEWAY_FILTER_PLUGIN("bad_default", "1.0.0", "a schema whose default does not read",
                        bad_default_options, make)
