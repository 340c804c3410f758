// `pickleway help TOPIC`: the option schemas as text, so the help says
// what the config reader checks, from the same data.
#pragma once

#include <ostream>
#include <span>

#include "pickleway/options.hpp"

namespace pickleway {

// Each option in `schema` as two lines, the name with its type, whether it
// is required and its default, then its help; a section's options follow
// it, indented and named section.option.
void print_options(std::ostream& out, std::span<const option_spec> schema);

}  // namespace pickleway
