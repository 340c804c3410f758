#include "option_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include <yaml-cpp/yaml.h>

#include "config.hpp"
#include "nearest_word.hpp"
#include "node_origins.hpp"

namespace pickleway {

std::string locator::at(const YAML::Node& node) const {
  if (origins_)
    if (auto where = origins_->find(node)) return *where;
  const YAML::Mark m = node.Mark();
  if (m.is_null()) return file_;
  return file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

void locator::fail(const YAML::Node& node, const std::string& message) const {
  throw config_error(at(node) + ": " + message);
}

void locator::fail_at(const std::string& where, const std::string& message) const {
  throw config_error(where + ": " + message);
}

std::string scalar(const locator& loc, const YAML::Node& node, const std::string& what) {
  if (!node.IsScalar()) loc.fail(node, what + " must be a single value");
  return node.Scalar();
}

std::optional<std::int64_t> parse_integer(std::string_view s, int base) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string_view type_name(option_type t) {
  switch (t) {
    case option_type::string: return "a string";
    case option_type::integer: return "an integer";
    case option_type::size: return "a size (bytes, or a number with KiB, MiB or GiB)";
    case option_type::boolean: return "true or false";
    case option_type::mode: return "an octal mode such as \"0600\"";
    case option_type::address: return "an address HOST:PORT ([HOST]:PORT for IPv6)";
    case option_type::choice: return "one of the listed choices";
    case option_type::string_list: return "a list of strings";
    case option_type::string_map: return "a map of strings";
    case option_type::section: return "a map";
    case option_type::choice_or_list: return "one of the listed choices, or a list";
  }
  return "a value";
}

std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (const auto w : words) out += (out.empty() ? "" : ", ") + std::string(w);
  return out;
}

owner owner::section(std::string_view key) const {
  return {prefix() + std::string(noun) + " '" + std::string(key) + "'", "option"};
}

namespace {

// HOST:PORT with HOST a name, an IPv4 address or [IPv6].
bool is_address(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const auto port = parse_integer(s.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) return false;
  const auto host = s.substr(0, colon);
  if (host.front() == '[') return host.back() == ']' && host.size() > 2;
  return host.find(':') == std::string_view::npos;  // a bare IPv6 needs brackets
}

option_value read_value(const locator& loc, const YAML::Node& node, const option_spec& spec,
                        const owner& who) {
  const std::string where = loc.at(node);
  const std::string what = who.prefix() + std::string(who.noun) + " '" + std::string(spec.name) + "'";
  const auto wrong = [&]() -> option_value {
    loc.fail(node, what + " must be " + std::string(type_name(spec.type)));
  };
  switch (spec.type) {
    case option_type::string:
    case option_type::address:
    case option_type::choice:
    case option_type::choice_or_list: {
      if (spec.type == option_type::choice_or_list && node.IsSequence()) {
        option_value::list list;
        for (const auto& item : node) list.push_back(scalar(loc, item, what + " items"));
        return {list, where};
      }
      if (!node.IsScalar()) return wrong();
      const std::string s = node.Scalar();
      if (spec.type == option_type::address && !is_address(s))
        loc.fail(node, what + ": '" + s + "' is not " + std::string(type_name(spec.type)));
      if ((spec.type == option_type::choice || spec.type == option_type::choice_or_list) &&
          std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end())
        loc.fail(node, what + ": '" + s + "' is not one of " + join(spec.choices) +
                           did_you_mean(s, spec.choices));
      return {s, where};
    }
    case option_type::integer:
      if (!node.IsScalar() || !parse_integer(node.Scalar())) return wrong();
      return {*parse_integer(node.Scalar()), where};
    case option_type::size: {
      const auto size = node.IsScalar() ? parse_size(node.Scalar()) : std::nullopt;
      if (!size || *size > static_cast<std::uint64_t>(INT64_MAX)) return wrong();
      return {static_cast<std::int64_t>(*size), where};
    }
    case option_type::boolean: {
      bool b = false;
      if (!node.IsScalar() || !YAML::convert<bool>::decode(node, b)) return wrong();
      return {b, where};
    }
    case option_type::mode: {
      const auto mode = node.IsScalar() ? parse_integer(node.Scalar(), 8) : std::nullopt;
      if (!mode || *mode < 0 || *mode > 07777) return wrong();
      return {*mode, where};
    }
    case option_type::string_list: {
      if (!node.IsSequence()) return wrong();
      option_value::list list;
      for (const auto& item : node) list.push_back(scalar(loc, item, what + " items"));
      return {list, where};
    }
    case option_type::string_map: {
      if (!node.IsMap()) return wrong();
      option_value::map map;
      for (const auto& item : node)
        map[scalar(loc, item.first, what + " keys")] = scalar(loc, item.second, what + " values");
      return {map, where};
    }
    case option_type::section:
      if (!node.IsMap()) return wrong();
      return {read_options(loc, node, spec.section, {}, who.section(spec.name)), where};
  }
  return wrong();
}

// Gives each option of `schema` that `values` lacks its default (a section
// its options' defaults), located at the map; goes into the sections
// written, too.
void fill_defaults(const locator& loc, option_values& values, std::span<const option_spec> schema,
                   const owner& who) {
  for (const auto& spec : schema) {
    if (spec.type == option_type::section) {
      // A section written was filled as it was read; one made by hand
      // (tests) may not be, so it is filled again, as a copy.
      const bool written = values.has(spec.name);
      const option_values* given = values.get_section(spec.name);
      auto section = given ? std::make_shared<option_values>(*given) : std::make_shared<option_values>();
      if (!given) section->set_where(values.where());
      fill_defaults(loc, *section, spec.section, who.section(spec.name));
      const std::string where = written ? values.where(spec.name) : values.where();
      values.set(std::string(spec.name), {section, where, written});
    } else if (!spec.default_value.empty() && !values.has(spec.name)) {
      option_value v = read_value(loc, YAML::Load(std::string(spec.default_value)), spec, who);
      v.where = values.where();
      v.written = false;
      values.set(std::string(spec.name), std::move(v));
    }
  }
}

}  // namespace

std::shared_ptr<option_values> read_options(const locator& loc, const YAML::Node& map,
                                            std::span<const option_spec> schema,
                                            const own_keys& caller_keys, const owner& who) {
  auto values = std::make_shared<option_values>();
  values->set_where(loc.at(map));
  for (const auto& item : map) {
    const std::string key = scalar(loc, item.first, "a key");
    if (caller_keys.count(key)) continue;
    const auto spec = std::find_if(schema.begin(), schema.end(),
                                   [&](const option_spec& s) { return s.name == key; });
    if (spec == schema.end()) {
      std::vector<std::string_view> known;
      for (const auto& s : schema) known.push_back(s.name);
      for (const auto& k : caller_keys) known.push_back(k);
      std::sort(known.begin(), known.end());
      known.erase(std::unique(known.begin(), known.end()), known.end());
      // The nearest known key when there is one near enough, else them all.
      const std::string hint = did_you_mean(key, known);
      loc.fail(item.first, who.prefix() + "unknown " + std::string(who.noun) + " '" + key + "'" +
                               (!hint.empty()    ? hint
                                : known.empty() ? " (it takes none)"
                                                : " (known: " + join(known) + ")"));
    }
    values->set(key, read_value(loc, item.second, *spec, who));
  }
  for (const auto& spec : schema)
    if (spec.required && !caller_keys.count(spec.name) && !values->has(spec.name))
      loc.fail(map, who.prefix() + std::string(who.noun) + " '" + std::string(spec.name) +
                        "' is required");
  fill_defaults(loc, *values, schema, who);
  return values;
}

// "name=value" of each option of `schema` that took its default, and of
// those inside the sections written ("tls.timeout_ms=10000").
void list_defaults(const option_values& values, std::span<const option_spec> schema,
                   const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& spec : schema) {
    if (spec.type == option_type::section) {
      if (const option_values* section = values.get_section(spec.name); section && values.has(spec.name))
        list_defaults(*section, spec.section, prefix + std::string(spec.name) + ".", out);
    } else if (!spec.default_value.empty() && !values.has(spec.name)) {
      out.push_back(prefix + std::string(spec.name) + "=" + std::string(spec.default_value));
    }
  }
}

std::optional<std::string> schema_problem(std::span<const option_spec> schema) {
  const locator loc("(default)");
  std::set<std::string_view> names;
  for (const auto& spec : schema) {
    const std::string what = "option '" + std::string(spec.name) + "'";
    if (spec.name.empty()) return "an option without a name";
    if (!names.insert(spec.name).second) return what + " is listed twice";
    const bool chooses = spec.type == option_type::choice || spec.type == option_type::choice_or_list;
    if (chooses && spec.choices.empty()) return what + " has no choices";
    if (spec.type == option_type::section) {
      if (!spec.default_value.empty()) return what + ": a section has no default of its own";
      if (const auto inner = schema_problem(spec.section)) return what + ": " + *inner;
      continue;
    }
    if (spec.default_value.empty()) continue;
    if (spec.required) return what + " is required and has a default";
    try {
      (void)read_value(loc, YAML::Load(std::string(spec.default_value)), spec, {});
    } catch (const std::exception&) {
      return what + ": its default '" + std::string(spec.default_value) + "' is not " +
             std::string(type_name(spec.type));
    }
  }
  return std::nullopt;
}

void fill_defaults(option_values& values, std::span<const option_spec> schema) {
  fill_defaults(locator("(default)"), values, schema, {});
}

}  // namespace pickleway
