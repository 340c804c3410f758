// Reads YAML maps against option schemas (pickleway/options.hpp): the one
// way the core reads every map of a config, its root, its sessions, their
// endpoints and filters, each error located as FILE:LINE:COL.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pickleway/options.hpp"

namespace YAML {
class Node;
}

namespace pickleway {

class node_origins;

// Where a node stands in the file ("FILE:LINE:COL"), or for a document made
// in memory where `origins` says it came from. A missing key has no mark of
// its own, so errors about it name the map that lacks it. Failures throw
// config_error.
class locator {
 public:
  explicit locator(std::string file, const node_origins* origins = nullptr)
      : file_(std::move(file)), origins_(origins) {}

  std::string at(const YAML::Node& node) const;
  [[noreturn]] void fail(const YAML::Node& node, const std::string& message) const;
  [[noreturn]] void fail_at(const std::string& where, const std::string& message) const;

 private:
  std::string file_;
  const node_origins* origins_;
};

// Whose keys a map holds, for messages: "session s, endpoint a (spawn)"
// with its options, "sessions[0]" with its keys, the root (no name).
struct owner {
  std::string name;
  std::string_view noun = "option";

  // "session s: ", or "" for the root.
  std::string prefix() const { return name.empty() ? std::string() : name + ": "; }
  // The owner of a section: "session s: option 'tls'".
  owner section(std::string_view key) const;
};

// A map's keys that its reader takes care of itself (a session's `a`, `b`
// and `filters`; an endpoint's transport options): read_options knows them
// but leaves them alone.
using own_keys = std::set<std::string, std::less<>>;

// Reads `map` against `schema`: refuses an unknown key (naming the nearest
// known one, or the known ones), a value of the wrong type, a missing
// required option; fills in the defaults of the others.
std::shared_ptr<option_values> read_options(const locator& loc, const YAML::Node& map,
                                            std::span<const option_spec> schema,
                                            const own_keys& caller_keys, const owner& who);

// Appends "name=value" for each option of `schema` that took its default,
// and for those inside the sections written, prefixed ("tls.timeout_ms=10000").
void list_defaults(const option_values& values, std::span<const option_spec> schema,
                   const std::string& prefix, std::vector<std::string>& out);

// Why `schema` cannot be used (a default that is no value of its option's
// type, a required option with a default, a name twice), or nullopt. The
// plugin loader skips a plugin whose schema has a problem.
std::optional<std::string> schema_problem(std::span<const option_spec> schema);

// Gives the options in `schema` that `values` lacks their defaults, as
// read_options does; for values made by hand (tests).
void fill_defaults(option_values& values, std::span<const option_spec> schema);

// A node's text, or a located error naming `what` when it is no scalar.
std::string scalar(const locator& loc, const YAML::Node& node, const std::string& what);
std::optional<std::int64_t> parse_integer(std::string_view s, int base = 10);
// "an integer", "a size (bytes, ...)": an option type in a message.
std::string_view type_name(option_type t);
std::string join(std::span<const std::string_view> words);  // "a, b, c"

}  // namespace pickleway
