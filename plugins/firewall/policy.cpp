#include "policy.hpp"

#include <algorithm>
#include <array>

namespace pickleway::firewall {

namespace {

struct safe_name {
  std::string_view module;
  std::string_view name;
  grant what;
};

// `defaults: safe`. Each one builds plain data and cannot run code, import,
// open, or reach attributes of its choosing; docs/firewall.md says why for
// each. Sorted by module, then name.
constexpr std::array safe_names{
    safe_name{"_codecs", "encode", grant::latin1_encode},
    safe_name{"builtins", "bool", grant::allowed},
    safe_name{"builtins", "bytearray", grant::allowed},
    safe_name{"builtins", "bytes", grant::allowed},
    safe_name{"builtins", "complex", grant::allowed},
    safe_name{"builtins", "dict", grant::allowed},
    safe_name{"builtins", "float", grant::allowed},
    safe_name{"builtins", "frozenset", grant::allowed},
    safe_name{"builtins", "int", grant::allowed},
    safe_name{"builtins", "list", grant::allowed},
    safe_name{"builtins", "object", grant::allowed},
    safe_name{"builtins", "range", grant::allowed},
    safe_name{"builtins", "set", grant::allowed},
    safe_name{"builtins", "slice", grant::allowed},
    safe_name{"builtins", "str", grant::allowed},
    safe_name{"builtins", "tuple", grant::allowed},
    safe_name{"collections", "Counter", grant::allowed},
    safe_name{"collections", "OrderedDict", grant::allowed},
    safe_name{"collections", "defaultdict", grant::allowed},
    safe_name{"collections", "deque", grant::allowed},
    safe_name{"copyreg", "__newobj__", grant::new_object},
    safe_name{"copyreg", "__newobj_ex__", grant::new_object},
    safe_name{"copyreg", "_reconstructor", grant::reconstructor},
    safe_name{"functools", "partial", grant::partial},
    safe_name{"datetime", "date", grant::allowed},
    safe_name{"datetime", "datetime", grant::allowed},
    safe_name{"datetime", "time", grant::allowed},
    safe_name{"datetime", "timedelta", grant::allowed},
    safe_name{"datetime", "timezone", grant::allowed},
    safe_name{"datetime", "tzinfo", grant::allowed},
    safe_name{"decimal", "Decimal", grant::allowed},
    safe_name{"fractions", "Fraction", grant::allowed},
    safe_name{"uuid", "UUID", grant::allowed},
};

// A dotted name's parts are non-empty and hold no character an importable
// Python name cannot (spaces, quotes, slashes...).
bool is_name_part(std::string_view part) {
  if (part.empty()) return false;
  return std::all_of(part.begin(), part.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x80 || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
  });
}

}  // namespace

std::optional<std::string> policy::add_allowed(std::string_view entry) {
  const auto dot = entry.rfind('.');
  if (dot == std::string_view::npos)
    return std::string("`").append(entry) + "` is not module.name or module.*";
  const std::string_view module = entry.substr(0, dot);
  const std::string_view last = entry.substr(dot + 1);
  for (std::size_t begin = 0;;) {
    const auto end = module.find('.', begin);
    if (!is_name_part(module.substr(begin, end - begin)))
      return std::string("`").append(entry) + "` has an empty or malformed part";
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  if (last == "*") {
    modules_.emplace_back(module);
  } else if (is_name_part(last)) {
    names_.emplace_back(entry);
  } else {
    return std::string("`").append(entry) +
           "` has an empty or malformed part (`*` only as the last)";
  }
  return std::nullopt;
}

void policy::set_ext(ext_mode mode, std::vector<std::int64_t> codes) {
  ext_ = mode;
  ext_codes_ = std::move(codes);
}

grant policy::judge_global(std::string_view module, std::string_view name) const {
  // module.* is the module's classes and functions: neither a dotted path
  // below them nor its machinery (__builtins__, __loader__, a module
  // __getattr__ that answers any name).
  const bool dotted = name.find('.') != std::string_view::npos;
  const bool dunder = name.size() >= 4 && name.starts_with("__") && name.ends_with("__");
  if (!dotted && !dunder &&
      std::find(modules_.begin(), modules_.end(), module) != modules_.end())
    return grant::allowed;
  for (const std::string& n : names_) {
    if (n.size() == module.size() + 1 + name.size() && n.starts_with(module) &&
        n[module.size()] == '.' && std::string_view(n).substr(module.size() + 1) == name)
      return grant::allowed;
  }
  if (module == "builtins" && name == "getattr") return grant::get_attribute;
  if (!safe_defaults_) return grant::denied;
  for (const safe_name& s : safe_names)
    if (s.module == module && s.name == name) return s.what;
  return grant::denied;
}

bool policy::allows_ext(std::int64_t code) const {
  switch (ext_) {
    case ext_mode::deny: return false;
    case ext_mode::allow: return true;
    case ext_mode::listed:
      return std::find(ext_codes_.begin(), ext_codes_.end(), code) != ext_codes_.end();
  }
  return false;
}

std::vector<std::string> safe_default_names() {
  std::vector<std::string> out;
  for (const safe_name& s : safe_names)
    out.push_back(std::string(s.module) + "." + std::string(s.name));
  return out;
}

}  // namespace pickleway::firewall
