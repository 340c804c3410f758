#include "config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include <yaml-cpp/yaml.h>

namespace pickleway {
namespace {

// Where a node stands in the file. A missing key has no mark of its own, so
// errors about it name the map that lacks it.
class locator {
 public:
  explicit locator(std::string file) : file_(std::move(file)) {}

  std::string at(const YAML::Node& node) const {
    const YAML::Mark m = node.Mark();
    if (m.is_null()) return file_;
    return file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  [[noreturn]] void fail(const YAML::Node& node, const std::string& message) const {
    throw config_error(at(node) + ": " + message);
  }
  [[noreturn]] void fail_at(const std::string& where, const std::string& message) const {
    throw config_error(where + ": " + message);
  }

 private:
  std::string file_;
};

std::string scalar(const locator& loc, const YAML::Node& node, const std::string& what) {
  if (!node.IsScalar()) loc.fail(node, what + " must be a single value");
  return node.Scalar();
}

std::optional<std::int64_t> parse_integer(std::string_view s, int base = 10) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

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

// Names the option types in error messages.
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

std::shared_ptr<option_values> read_options(const locator& loc, const YAML::Node& map,
                                            std::span<const option_spec> schema,
                                            const std::set<std::string>& ignored,
                                            const std::string& owner);

option_value read_value(const locator& loc, const YAML::Node& node, const option_spec& spec,
                        const std::string& owner) {
  const std::string where = loc.at(node);
  const std::string what = owner + ": option '" + std::string(spec.name) + "'";
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
        loc.fail(node, what + ": '" + s + "' is not one of " + join(spec.choices));
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
      return {read_options(loc, node, spec.section, {}, what), where};
  }
  return wrong();
}

// Reads `map` against `schema`; keys in `ignored` belong to the caller.
std::shared_ptr<option_values> read_options(const locator& loc, const YAML::Node& map,
                                            std::span<const option_spec> schema,
                                            const std::set<std::string>& ignored,
                                            const std::string& owner) {
  auto values = std::make_shared<option_values>();
  values->set_where(loc.at(map));
  for (const auto& item : map) {
    const std::string key = scalar(loc, item.first, "a key");
    if (ignored.count(key)) continue;
    const auto spec = std::find_if(schema.begin(), schema.end(),
                                   [&](const option_spec& s) { return s.name == key; });
    if (spec == schema.end()) {
      std::vector<std::string_view> known;
      for (const auto& s : schema) known.push_back(s.name);
      for (const auto& k : ignored) known.push_back(k);
      std::sort(known.begin(), known.end());
      loc.fail(item.first, owner + ": unknown option '" + key + "'" +
                               (known.empty() ? " (it takes none)" : " (known: " + join(known) + ")"));
    }
    values->set(key, read_value(loc, item.second, *spec, owner));
  }
  for (const auto& spec : schema)
    if (spec.required && !values->has(spec.name))
      loc.fail(map, owner + ": option '" + std::string(spec.name) + "' is required");
  return values;
}

void require_map(const locator& loc, const YAML::Node& node, const std::string& what) {
  if (!node.IsMap()) loc.fail(node, what + " must be a map");
}

// Runs a plugin factory, turning a refusal or an exception into a located error.
template <typename Made, typename Factory>
std::unique_ptr<Made> make_from(const locator& loc, Factory make, const option_values& options,
                                const std::string& owner) {
  option_error error;
  std::unique_ptr<Made> made;
  try {
    made = make(options, error);
  } catch (const std::exception& e) {
    loc.fail_at(options.where(), owner + ": " + e.what());
  } catch (...) {
    loc.fail_at(options.where(), owner + ": the plugin failed");
  }
  if (!made) {
    const std::string& where = error.option.empty() ? options.where() : options.where(error.option);
    loc.fail_at(where, owner + ": " + (error.message.empty() ? "refused its options" : error.message));
  }
  return made;
}

std::string searched_dirs(const plugin_registry& plugins) {
  std::string out;
  for (const auto& d : plugins.searched()) out += (out.empty() ? "" : ", ") + d.string();
  return out;
}

const loaded_plugin* find_plugin(const locator& loc, const YAML::Node& at,
                                 const plugin_registry& plugins, plugin_kind kind,
                                 const std::string& name) {
  const loaded_plugin* p = plugins.find(kind, name);
  if (!p)
    loc.fail(at, "no " + std::string(to_string(kind)) + " plugin named '" + name +
                     "' (searched: " + searched_dirs(plugins) + ")");
  return p;
}

// The options every endpoint takes beside its transport's own.
constexpr std::string_view framing_choices[] = {"pickle", "length"};
constexpr std::string_view stray_choices[] = {"error", "divert"};
constexpr std::string_view memo_choices[] = {"error", "allow"};
constexpr option_spec auth_options[] = {
    {"key_file", option_type::string, false, "file holding the shared key (its bytes as they are)"},
    {"key_env", option_type::string, false, "environment variable holding the shared key"},
    {"timeout_ms", option_type::integer, false, "limit for the whole handshake (10000)"},
};
constexpr option_spec endpoint_options[] = {
    {"transport", option_type::string, true, "the transport plugin"},
    {"framing", option_type::choice, false, "pickle or length", framing_choices},
    {"max_message", option_type::size, false, "largest message"},
    {"on_stray", option_type::choice, false, "error or divert", stray_choices},
    {"memo", option_type::choice, false, "error or allow", memo_choices},
    {"auth", option_type::section, false, "multiprocessing.connection's authkey challenge", {},
     auth_options},
};

// Keys larger than this are refused: a key is a secret of some bytes, and a
// path to something huge is a mistake.
constexpr std::uintmax_t largest_key = 1 << 20;

// Reads the key now, so a missing file or variable is a config error, not
// a failure at the first connection. The key is used byte for byte, as
// multiprocessing uses its authkey (a trailing newline is part of it).
auth_config read_auth(const locator& loc, const YAML::Node& node, const option_values& options,
                      const std::string& owner) {
  const std::string what = owner + ": auth";
  const auto file = options.get_string("key_file");
  const auto env = options.get_string("key_env");
  if (file.has_value() == env.has_value())
    loc.fail(node, what + " takes exactly one of key_file and key_env");
  auth_config a;
  if (file) {
    const std::string& where = options.where("key_file");
    if (file->empty()) loc.fail_at(where, what + ": key_file must not be empty");
    // Relative to the working directory, like every path in a session
    // (spawn's, fifo's, unix's, tls's): only plugin_path is the config's.
    const std::filesystem::path path(*file);
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(status))
      loc.fail_at(where, what + ": key_file " + path.string() + " does not exist");
    if (!std::filesystem::is_regular_file(status))
      loc.fail_at(where, what + ": key_file " + path.string() + " is not a regular file");
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > largest_key)
      loc.fail_at(where, what + ": key_file " + path.string() + " is larger than 1MiB");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f)
      loc.fail_at(where, what + ": cannot read key_file " + path.string() + ": " +
                             std::strerror(errno));
    std::uint8_t chunk[4096];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;)
      a.key.insert(a.key.end(), chunk, chunk + n);
    const bool bad = std::ferror(f) != 0;
    std::fclose(f);
    if (bad) loc.fail_at(where, what + ": cannot read key_file " + path.string());
    if (a.key.empty()) loc.fail_at(where, what + ": key_file " + path.string() + " is empty");
    a.source = "key_file " + path.string();
  } else {
    const std::string& where = options.where("key_env");
    const char* value = env->empty() ? nullptr : std::getenv(env->c_str());
    if (!value) loc.fail_at(where, what + ": environment variable '" + *env + "' is not set");
    if (!*value) loc.fail_at(where, what + ": environment variable '" + *env + "' is empty");
    if (std::strlen(value) > largest_key)
      loc.fail_at(where, what + ": environment variable '" + *env + "' is longer than 1MiB");
    a.key.assign(value, value + std::strlen(value));
    a.source = "key_env " + *env;
  }
  if (const auto ms = options.get_integer("timeout_ms")) {
    if (*ms < 1) loc.fail_at(options.where("timeout_ms"), what + ": timeout_ms must be at least 1");
    a.timeout = std::chrono::milliseconds(*ms);
  }
  return a;
}

endpoint_config read_endpoint(const locator& loc, const YAML::Node& node,
                              const plugin_registry& plugins, const std::string& owner) {
  if (!node) throw config_error(owner + " is required");
  require_map(loc, node, owner);
  endpoint_config e;
  e.where = loc.at(node);
  // Endpoint options are flat: the core's keys and the transport's side by
  // side. Each pass reads its own and leaves the other's alone.
  std::set<std::string> core_keys, transport_keys;
  for (const auto& s : endpoint_options) core_keys.emplace(s.name);
  for (const auto& item : node) {
    const std::string key = scalar(loc, item.first, "a key");
    if (!core_keys.count(key)) transport_keys.insert(key);
  }
  if (!node["transport"]) loc.fail(node, owner + " needs a 'transport'");
  const auto common = read_options(loc, node, endpoint_options, transport_keys, owner);
  e.transport_name = *common->get_string("transport");
  e.plugin = find_plugin(loc, node["transport"], plugins, plugin_kind::transport, e.transport_name);

  if (common->get_string("framing") == "length") e.framing.kind = framing_kind::length;
  if (const auto size = common->get_integer("max_message")) {
    if (*size < 2 || static_cast<std::uint64_t>(*size) > largest_max_message)
      loc.fail(node["max_message"], owner + ": max_message must be from 2 bytes to 4GiB - 1");
    e.framing.pickle.max_message = static_cast<std::uint64_t>(*size);
  }
  for (const char* key : {"on_stray", "memo"})
    if (common->has(key) && e.framing.kind != framing_kind::pickle)
      loc.fail(node[key], owner + ": " + key + " applies only to framing: pickle");
  if (common->get_string("on_stray") == "divert") e.framing.pickle.on_stray = stray_policy::divert;
  if (common->get_string("memo") == "allow") e.framing.pickle.memo = memo_policy::allow;
  if (const option_values* auth = common->get_section("auth")) {
    if (e.framing.kind != framing_kind::length)
      loc.fail(node["auth"], owner + ": auth is valid only with framing: length");
    e.auth = read_auth(loc, node["auth"], *auth, owner);
  }

  const std::string what = owner + " (" + e.transport_name + ")";
  const auto options = read_options(loc, node, e.plugin->descriptor->options, core_keys, what);
  e.endpoint = make_from<transport>(loc, e.plugin->descriptor->make_transport, *options, what);
  return e;
}

filter_config read_filter(const locator& loc, const YAML::Node& item,
                          const plugin_registry& plugins, const std::string& owner) {
  filter_config f;
  f.where = loc.at(item);
  YAML::Node name_node = item, options_node;
  if (item.IsMap()) {
    if (item.size() != 1) loc.fail(item, owner + " must be NAME or NAME: {options}");
    const auto only = *item.begin();
    name_node = only.first;
    options_node = only.second;
    if (!options_node.IsNull() && !options_node.IsMap())
      loc.fail(options_node, owner + " options must be a map");
  } else if (!item.IsScalar()) {
    loc.fail(item, owner + " must be NAME or NAME: {options}");
  }
  f.name = name_node.Scalar();
  f.plugin = find_plugin(loc, name_node, plugins, plugin_kind::filter, f.name);
  const std::string what = owner + " (" + f.name + ")";
  // Written without options (NAME, or NAME: and nothing), the filter has no
  // map to point at for a required option it lacks: name the item instead.
  if (!options_node.IsMap())
    for (const auto& spec : f.plugin->descriptor->options)
      if (spec.required) loc.fail(item, what + ": option '" + std::string(spec.name) + "' is required");
  const auto options = options_node.IsMap()
                           ? read_options(loc, options_node, f.plugin->descriptor->options, {}, what)
                           : read_options(loc, YAML::Node(YAML::NodeType::Map),
                                          f.plugin->descriptor->options, {}, what);
  if (!options_node.IsMap()) options->set_where(f.where);
  f.factory = make_from<filter_factory>(loc, f.plugin->descriptor->make_filter, *options, what);
  return f;
}

constexpr std::string_view session_keys[] = {"a", "b", "filters", "max_instances", "name"};

session_config read_session(const locator& loc, const YAML::Node& node,
                            const plugin_registry& plugins, std::size_t index) {
  const std::string crumb = "sessions[" + std::to_string(index) + "]";
  require_map(loc, node, crumb);
  for (const auto& item : node) {
    const std::string key = scalar(loc, item.first, "a key");
    if (std::find(std::begin(session_keys), std::end(session_keys), key) == std::end(session_keys))
      loc.fail(item.first, "unknown session key '" + key + "' (known: " + join(session_keys) + ")");
  }
  session_config s;
  s.where = loc.at(node);
  if (!node["name"]) loc.fail(node, crumb + " needs a 'name'");
  s.name = scalar(loc, node["name"], crumb + ".name");
  if (s.name.empty()) loc.fail(node["name"], crumb + ".name must not be empty");
  const std::string owner = "session " + s.name;
  if (!node["a"]) loc.fail(node, owner + " needs endpoint 'a'");
  if (!node["b"]) loc.fail(node, owner + " needs endpoint 'b'");
  s.a = read_endpoint(loc, node["a"], plugins, owner + ", endpoint a");
  s.b = read_endpoint(loc, node["b"], plugins, owner + ", endpoint b");
  if (s.a.endpoint->listens() && s.b.endpoint->listens())
    loc.fail(node["b"], owner + ": only one endpoint of a session may listen");
  if (const auto max = node["max_instances"]) {
    const auto n = max.IsScalar() ? parse_integer(max.Scalar()) : std::nullopt;
    if (!n || *n < 1) loc.fail(max, owner + ": max_instances must be a whole number from 1");
    s.max_instances = static_cast<std::uint64_t>(*n);
  }
  if (const auto filters = node["filters"]) {
    if (!filters.IsSequence()) loc.fail(filters, owner + ": filters must be a list");
    const chain_context chain{s.a.framing.kind, s.b.framing.kind, s.a.framing.pickle.max_message,
                              s.b.framing.pickle.max_message};
    for (std::size_t i = 0; i < filters.size(); ++i) {
      auto f = read_filter(loc, filters[i], plugins,
                           owner + ", filters[" + std::to_string(i) + "]");
      if (const auto refused = f.factory->check(chain))
        loc.fail_at(f.where, owner + ", filter " + f.name + ": " + refused->message);
      s.filters.push_back(std::move(f));
    }
  }
  return s;
}

std::chrono::milliseconds read_grace(const locator& loc, const YAML::Node& node) {
  const std::string text = scalar(loc, node, "grace");
  std::string_view s = text;
  int scale = 1000;  // a bare number is seconds
  if (s.ends_with("ms")) {
    scale = 1;
    s.remove_suffix(2);
  } else if (s.ends_with("s")) {
    s.remove_suffix(1);
  }
  const auto n = parse_integer(s);
  if (!n || *n < 0) loc.fail(node, "grace must be a duration such as 2s or 500ms");
  return std::chrono::milliseconds(*n * scale);
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t scale = 1;
  for (const auto& [suffix, factor] : {std::pair<std::string_view, std::uint64_t>{"KiB", 1ull << 10},
                                       {"MiB", 1ull << 20},
                                       {"GiB", 1ull << 30},
                                       {"B", 1}}) {
    if (text.ends_with(suffix)) {
      scale = factor;
      text.remove_suffix(suffix.size());
      break;
    }
  }
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  if (n > UINT64_MAX / scale) return std::nullopt;
  return n * scale;
}

config_document::config_document(const std::filesystem::path& file) : file_(file) {
  try {
    root_ = std::make_unique<YAML::Node>(YAML::LoadFile(file.string()));
  } catch (const YAML::BadFile&) {
    throw config_error(file.string() + ": cannot read the file");
  } catch (const YAML::ParserException& e) {
    throw config_error(file.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                       std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  check_root();
}

config_document::config_document(const std::filesystem::path& file, const std::string& text)
    : file_(file) {
  try {
    root_ = std::make_unique<YAML::Node>(YAML::Load(text));
  } catch (const YAML::ParserException& e) {
    throw config_error(file.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                       std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  check_root();
}

void config_document::check_root() const {
  const locator loc(file_.string());
  if (!root_->IsMap()) loc.fail(*root_, "the file must hold a map with 'sessions'");
}

config_document::~config_document() = default;

std::vector<std::string> config_document::plugin_path() const {
  const locator loc(file_.string());
  std::vector<std::string> dirs;
  if (const auto p = (*root_)["plugin_path"]) {
    if (!p.IsSequence()) loc.fail(p, "plugin_path must be a list of directories");
    for (const auto& d : p) dirs.push_back(scalar(loc, d, "plugin_path items"));
  }
  return dirs;
}

config config_document::build(const plugin_registry& plugins) const {
  const locator loc(file_.string());
  const YAML::Node& root = *root_;
  for (const auto& item : root) {
    const std::string key = scalar(loc, item.first, "a key");
    if (key != "sessions" && key != "plugin_path" && key != "grace")
      loc.fail(item.first, "unknown key '" + key + "' (known: grace, plugin_path, sessions)");
  }
  config c;
  c.file = file_;
  c.plugin_path = plugin_path();
  if (const auto g = root["grace"]) c.grace = read_grace(loc, g);
  const YAML::Node sessions = root["sessions"];
  if (!sessions) loc.fail(root, "'sessions' is required");
  if (!sessions.IsSequence() || sessions.size() == 0)
    loc.fail(sessions, "'sessions' must be a list of at least one session");
  std::set<std::string> names;
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    session_config s = read_session(loc, sessions[i], plugins, i);
    if (!names.insert(s.name).second)
      loc.fail(sessions[i]["name"], "duplicate session name '" + s.name + "'");
    c.sessions.push_back(std::move(s));
  }
  return c;
}

}  // namespace pickleway
