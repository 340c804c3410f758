#include "fix_imports.hpp"

#include <algorithm>
#include <iterator>

namespace pickleway::firewall {

namespace {

struct name_mapping {
  std::string_view module, name, new_module, new_name;
};
struct import_mapping {
  std::string_view module, new_module;
};

constexpr name_mapping name_mappings[] = {
#define PICKLEWAY_NAME_MAPPING(m, n, nm, nn) {m, n, nm, nn},
#include "compat_pickle.inc"
#undef PICKLEWAY_NAME_MAPPING
};
constexpr import_mapping import_mappings[] = {
#define PICKLEWAY_IMPORT_MAPPING(m, nm) {m, nm},
#include "compat_pickle.inc"
#undef PICKLEWAY_IMPORT_MAPPING
};

}  // namespace

std::pair<std::string_view, std::string_view> fix_imports(std::string_view module,
                                                          std::string_view name) {
  const auto n = std::lower_bound(
      std::begin(name_mappings), std::end(name_mappings), std::pair{module, name},
      [](const name_mapping& e, const auto& key) { return std::pair{e.module, e.name} < key; });
  if (n != std::end(name_mappings) && n->module == module && n->name == name)
    return {n->new_module, n->new_name};
  const auto i = std::lower_bound(
      std::begin(import_mappings), std::end(import_mappings), module,
      [](const import_mapping& e, std::string_view key) { return e.module < key; });
  if (i != std::end(import_mappings) && i->module == module) return {i->new_module, name};
  return {module, name};
}

}  // namespace pickleway::firewall
