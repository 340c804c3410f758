// The Python 2 names a protocol 0-2 pickle may import, as CPython 3 reads
// them: _compat_pickle's NAME_MAPPING and IMPORT_MAPPING, which
// Unpickler.find_class applies (fix_imports=True, its default) before it
// imports anything. The tables are compat_pickle.inc, generated from
// CPython by tools/gen_compat_pickle.py.
#pragma once

#include <string_view>
#include <utility>

namespace pickleway::firewall {

// The module and name CPython 3 imports for a protocol 0-2 pickle's
// (module, name): the (module, name) pair's mapping first, else the
// module's alone, else the pair as it is.
std::pair<std::string_view, std::string_view> fix_imports(std::string_view module,
                                                          std::string_view name);

}  // namespace pickleway::firewall
