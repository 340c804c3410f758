// Plugin options: a schema the core checks, and the values it hands over.
//
// A plugin states its options as data (name, type, required, default); the
// core reads the YAML, refuses an unknown key, a wrong type or a missing
// required key with FILE:LINE:COL, fills in the defaults of the options not
// written, and gives the plugin only values that passed. A plugin's own
// checks across options (say, `listen` or `connect` but not both) report
// through option_error, which the core locates. `pickleway help NAME`
// prints the schema, and `pickleway check` the defaults it filled in.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pickleway {

enum class option_type : std::uint8_t {
  string,
  integer,      // a whole number
  size,         // bytes: 1024, "64KiB", "64MiB", "1GiB"
  boolean,
  mode,         // octal file mode: "0600", or 0600 unquoted
  address,      // "HOST:PORT", "[v6]:PORT"
  choice,       // one of `choices`
  string_list,  // [a, b, ...]
  string_map,   // {KEY: value, ...}
  section,      // a map with options of its own (`section`)
  choice_or_list,  // one of `choices` (a string), or [a, b, ...] (a list)
};

struct option_spec {
  std::string_view name;
  option_type type = option_type::string;
  bool required = false;
  std::string_view help = {};
  std::span<const std::string_view> choices = {};  // for choice, choice_or_list
  std::span<const option_spec> section = {};       // for section
  // The value of the option when it is not written, as YAML would write it
  // ("64MiB", "true", "error"); the core reads it as it reads a written
  // value, and the plugin loader refuses a plugin whose default does not
  // read. Empty: no default (a required option; one whose absence means
  // something; one whose default depends on other options: `help` says).
  // A section has no default of its own: its options have theirs.
  std::string_view default_value = {};
};

class option_values;

// One option's value, with where it was written (for error messages).
struct option_value {
  using list = std::vector<std::string>;
  using map = std::map<std::string, std::string>;
  std::variant<std::string, std::int64_t, bool, list, map, std::shared_ptr<option_values>> value;
  std::string where;      // "FILE:LINE:COL"; of the map holding it, for a default
  bool written = true;    // false: the schema's default
};

// The options of one endpoint or filter, as validated against its schema:
// those written, and the defaults of the others. A section that is not
// written holds its options' defaults.
class option_values {
 public:
  // Whether the option was written (its default does not count).
  bool has(std::string_view name) const {
    const auto it = values_.find(std::string(name));
    return it != values_.end() && it->second.written;
  }

  // The value of an option the schema gave the matching type, written or
  // its default. Sizes, modes and integers are integers; addresses and
  // choices are strings.
  std::optional<std::string> get_string(std::string_view name) const {
    return get<std::string>(name);
  }
  std::optional<std::int64_t> get_integer(std::string_view name) const {
    return get<std::int64_t>(name);
  }
  std::optional<bool> get_boolean(std::string_view name) const { return get<bool>(name); }
  std::optional<option_value::list> get_list(std::string_view name) const {
    return get<option_value::list>(name);
  }
  std::optional<option_value::map> get_map(std::string_view name) const {
    return get<option_value::map>(name);
  }
  // A section's values; for a section not written, its options' defaults
  // (has() tells the two apart). nullptr for a name that is no section.
  const option_values* get_section(std::string_view name) const {
    const auto it = values_.find(std::string(name));
    if (it == values_.end()) return nullptr;
    const auto* section = std::get_if<std::shared_ptr<option_values>>(&it->second.value);
    return section ? section->get() : nullptr;
  }

  // "FILE:LINE:COL" of an option ("tls.cert" names one inside a section),
  // or of the map holding these options.
  const std::string& where(std::string_view name) const {
    if (const auto it = values_.find(std::string(name)); it != values_.end()) return it->second.where;
    if (const auto dot = name.find('.'); dot != std::string_view::npos)
      if (const option_values* section = get_section(name.substr(0, dot)))
        return section->where(name.substr(dot + 1));
    return where_;
  }
  const std::string& where() const { return where_; }

  // For the core, which fills them in.
  void set(std::string name, option_value value) { values_[std::move(name)] = std::move(value); }
  void set_where(std::string where) { where_ = std::move(where); }

 private:
  template <typename T>
  std::optional<T> get(std::string_view name) const {
    const auto it = values_.find(std::string(name));
    if (it == values_.end()) return std::nullopt;
    if (const T* v = std::get_if<T>(&it->second.value)) return *v;
    return std::nullopt;
  }

  std::map<std::string, option_value> values_;
  std::string where_;
};

// A plugin's complaint about its options: which option (empty: the whole
// map) and why. The core prints it as "FILE:LINE:COL: message".
struct option_error {
  std::string option;
  std::string message;
};

}  // namespace pickleway
