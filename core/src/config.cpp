#include "config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "nearest_word.hpp"
#include "node_origins.hpp"
#include "option_reader.hpp"

namespace pickleway {
namespace {

void require_map(const locator& loc, const YAML::Node& node, const std::string& what) {
  if (!node.IsMap()) loc.fail(node, what + " must be a map");
}

// Runs a plugin factory (noexcept, as every plugin entry point), turning a
// refusal into a located error.
template <typename Made, typename Factory>
std::unique_ptr<Made> make_from(const locator& loc, Factory make, const option_values& options,
                                const std::string& owner) {
  option_error error;
  std::unique_ptr<Made> made = make(options, error);
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
  if (!p) {
    std::vector<std::string_view> names;
    for (const auto& candidate : plugins.plugins())
      if (candidate.descriptor->kind == kind) names.emplace_back(candidate.descriptor->name);
    loc.fail(at, "no " + std::string(to_string(kind)) + " plugin named '" + name +
                     "' (searched: " + searched_dirs(plugins) + ")" + did_you_mean(name, names));
  }
  return p;
}

// The options every endpoint takes beside its transport's own.
constexpr std::string_view framing_choices[] = {"pickle", "length", "link"};
constexpr std::string_view stray_choices[] = {"error", "divert"};
constexpr std::string_view memo_choices[] = {"error", "allow"};
constexpr option_spec auth_options[] = {
    {"key_file", option_type::string, false, "file holding the shared key (its bytes as they are)"},
    {"key_env", option_type::string, false, "environment variable holding the shared key"},
    {.name = "timeout_ms",
     .type = option_type::integer,
     .help = "limit for the whole handshake, in milliseconds",
     .default_value = "10000"},
};
constexpr option_spec link_options_schema[] = {
    {.name = "replay",
     .type = option_type::size,
     .help = "messages kept until the far gateway acknowledges them, in bytes; full, the "
             "producer is slowed",
     .default_value = "64MiB"},
    {.name = "resume_ms",
     .type = option_type::integer,
     .help = "how long a broken link may take to come back before its instance fails",
     .default_value = "60000"},
    {.name = "keepalive_ms",
     .type = option_type::integer,
     .help = "an idle link says so this often; 3 times this without a word is a broken link",
     .default_value = "1000"},
    {.name = "ack_ms",
     .type = option_type::integer,
     .help = "the longest a side waits to acknowledge what it has written",
     .default_value = "20"},
};
constexpr option_spec endpoint_options[] = {
    {"transport", option_type::string, true, "the transport plugin"},
    {.name = "framing",
     .type = option_type::choice,
     .help = "pickle: find each pickle's end; length: multiprocessing.connection's 4-byte lengths; "
             "link: between two pickleways (tcp, unix), a connection that may break without a "
             "message lost",
     .choices = framing_choices,
     .default_value = "pickle"},
    {.name = "max_message",
     .type = option_type::size,
     .help = "largest message, from 2 bytes to 4GiB - 1",
     .default_value = "64MiB"},
    {.name = "on_stray",
     .type = option_type::choice,
     .help = "framing pickle: bytes where a message should start end the stream (error) or are "
             "logged and skipped (divert)",
     .choices = stray_choices,
     .default_value = "error"},
    {.name = "memo",
     .type = option_type::choice,
     .help = "framing pickle: a message reading memo entries it did not make is an error, or is "
             "allowed",
     .choices = memo_choices,
     .default_value = "error"},
    {.name = "auth",
     .type = option_type::section,
     .help = "framing length or link: multiprocessing.connection's authkey challenge when the "
             "endpoint opens (each connection of a link)",
     .section = auth_options},
    {.name = "link",
     .type = option_type::section,
     .help = "framing link: the replay buffer, resume, keepalive and acknowledgement times",
     .section = link_options_schema},
};

// `link: {...}`, its times at least 1 ms, the keepalive below resume_ms.
link_options read_link(const locator& loc, const option_values& options, const std::string& owner) {
  link_options l;
  const auto ms = [&](const char* key) {
    const std::int64_t v = *options.get_integer(key);
    if (v < 1 || v > 86'400'000)
      loc.fail_at(options.where(key), owner + ": link: " + key + " must be from 1 to 86400000");
    return std::chrono::milliseconds(v);
  };
  l.resume = ms("resume_ms");
  l.keepalive = ms("keepalive_ms");
  l.ack = ms("ack_ms");
  const std::int64_t replay = *options.get_integer("replay");
  if (replay < 1024)
    loc.fail_at(options.where("replay"), owner + ": link: replay must be at least 1KiB");
  l.replay = static_cast<std::uint64_t>(replay);
  return l;
}

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
  const std::int64_t ms = *options.get_integer("timeout_ms");
  if (ms < 1) loc.fail_at(options.where("timeout_ms"), what + ": timeout_ms must be at least 1");
  a.timeout = std::chrono::milliseconds(ms);
  return a;
}

endpoint_config read_endpoint(const locator& loc, const YAML::Node& node,
                              const plugin_registry& plugins, const std::string& owner) {
  require_map(loc, node, owner);
  endpoint_config e;
  e.where = loc.at(node);
  // Endpoint options are flat: the core's keys and the transport's side by
  // side. Each pass reads its own and leaves the other's alone.
  own_keys core_keys, transport_keys;
  for (const auto& s : endpoint_options) core_keys.emplace(s.name);
  for (const auto& item : node) {
    const std::string key = scalar(loc, item.first, "a key");
    if (!core_keys.count(key)) transport_keys.insert(key);
  }
  if (!node["transport"]) loc.fail(node, owner + " needs a 'transport'");
  const auto common = read_options(loc, node, endpoint_options, transport_keys, {owner});
  e.transport_name = *common->get_string("transport");
  e.plugin = find_plugin(loc, node["transport"], plugins, plugin_kind::transport, e.transport_name);

  const std::string framing = *common->get_string("framing");
  if (framing == "length") e.framing.kind = framing_kind::length;
  if (framing == "link") {
    e.framing.kind = framing_kind::link;
    // The other end must be a pickleway: a socket between two gateways.
    if (e.transport_name != "tcp" && e.transport_name != "unix")
      loc.fail_at(common->where("framing"),
                  owner + ": framing: link joins two pickleways over tcp or unix, not " +
                      e.transport_name);
  }
  if (common->has("link") && e.framing.kind != framing_kind::link)
    loc.fail(node["link"], owner + ": link applies only to framing: link");
  if (const option_values* l = common->get_section("link")) e.framing.link = read_link(loc, *l, owner);
  const std::int64_t size = *common->get_integer("max_message");
  if (size < 2 || static_cast<std::uint64_t>(size) > largest_max_message)
    loc.fail_at(common->where("max_message"), owner + ": max_message must be from 2 bytes to 4GiB - 1");
  e.framing.pickle.max_message = static_cast<std::uint64_t>(size);
  for (const char* key : {"on_stray", "memo"})
    if (common->has(key) && e.framing.kind != framing_kind::pickle)
      loc.fail(node[key], owner + ": " + key + " applies only to framing: pickle");
  if (*common->get_string("on_stray") == "divert") e.framing.pickle.on_stray = stray_policy::divert;
  if (*common->get_string("memo") == "allow") e.framing.pickle.memo = memo_policy::allow;
  if (common->has("auth")) {
    if (e.framing.kind == framing_kind::pickle)
      loc.fail(node["auth"], owner + ": auth is valid only with framing: length or link");
    e.auth = read_auth(loc, node["auth"], *common->get_section("auth"), owner);
  }

  const std::string what = owner + " (" + e.transport_name + ")";
  const auto schema = e.plugin->descriptor->options;
  const auto options = read_options(loc, node, schema, core_keys, {what});
  list_defaults(*options, schema, "", e.defaults);
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
  const auto schema = f.plugin->descriptor->options;
  // Written without options (NAME, or NAME: and nothing), the filter has no
  // map to point at for a required option it lacks: name the item instead.
  if (!options_node.IsMap())
    for (const auto& spec : schema)
      if (spec.required) loc.fail(item, what + ": option '" + std::string(spec.name) + "' is required");
  YAML::Node written = options_node.IsMap() ? options_node : YAML::Node(YAML::NodeType::Map);
  const auto options = read_options(loc, written, schema, {}, {what});
  if (!options_node.IsMap()) options->set_where(f.where);
  list_defaults(*options, schema, "", f.defaults);
  f.factory = make_from<filter_factory>(loc, f.plugin->descriptor->make_filter, *options, what);
  return f;
}

constexpr option_spec session_options[] = {
    {"name", option_type::string, true, "the session's name, unique in the file"},
    {"a", option_type::section, true,
     "endpoint a, the local side: transport, its options, framing (pickleway help endpoint)"},
    {"b", option_type::section, true, "endpoint b, often the wire side: as a"},
    {"filters", option_type::string_list, false,
     "filter plugins, each NAME or NAME: {options}; a>b runs them in order, b>a in reverse"},
    {.name = "max_instances",
     .type = option_type::integer,
     .help = "with a listening endpoint: instances (connections) at once; more wait in the backlog",
     .default_value = "64"},
    {.name = "instances",
     .type = option_type::integer,
     .help = "without a listening endpoint: instances side by side, each with its own children "
             "and connections",
     .default_value = "1"},
};
// Read by read_session itself, as endpoints and filters.
const own_keys session_own_keys = {"a", "b", "filters"};

// A whole number from 1, as a setting.
setting<std::uint64_t> read_count(const locator& loc, const option_values& values,
                                  const std::string& key, const std::string& owner) {
  const std::int64_t n = *values.get_integer(key);
  if (n < 1) loc.fail_at(values.where(key), owner + ": " + key + " must be a whole number from 1");
  return {static_cast<std::uint64_t>(n), values.has(key) ? values.where(key) : std::string()};
}

session_config read_session(const locator& loc, const YAML::Node& node,
                            const plugin_registry& plugins, std::size_t index) {
  const std::string crumb = "sessions[" + std::to_string(index) + "]";
  require_map(loc, node, crumb);
  const auto keys = read_options(loc, node, session_options, session_own_keys, {crumb, "key"});
  session_config s;
  s.where = loc.at(node);
  s.name = *keys->get_string("name");
  if (s.name.empty()) loc.fail_at(keys->where("name"), crumb + ".name must not be empty");
  const std::string owner = "session " + s.name;
  if (!node["a"]) loc.fail(node, owner + " needs endpoint 'a'");
  if (!node["b"]) loc.fail(node, owner + " needs endpoint 'b'");
  s.a = read_endpoint(loc, node["a"], plugins, owner + ", endpoint a");
  s.b = read_endpoint(loc, node["b"], plugins, owner + ", endpoint b");
  const bool listens = s.a.endpoint->listens() || s.b.endpoint->listens();
  if (s.a.endpoint->listens() && s.b.endpoint->listens())
    loc.fail(node["b"], owner + ": only one endpoint of a session may listen");
  s.max_instances = read_count(loc, *keys, "max_instances", owner);
  s.instances = read_count(loc, *keys, "instances", owner);
  if (listens && s.instances.written())
    loc.fail_at(s.instances.where,
                owner + ": instances applies only to a session without a listening endpoint (a "
                        "listening one runs an instance per connection, up to max_instances)");
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
  std::vector<const loaded_plugin*> used;
  for (const auto& f : s.filters) used.push_back(f.plugin);
  s.hints = output_hints(plugins, used);
  return s;
}

constexpr option_spec metrics_options[] = {
    {"listen", option_type::address, true, "HOST:PORT to serve /metrics, /status and / on"},
};
constexpr option_spec root_options[] = {
    {"plugin_path", option_type::string_list, false,
     "directories searched for plugins first, relative to this file"},
    {"sessions", option_type::string_list, true, "the sessions, each a map (pickleway help session)"},
    {.name = "grace",
     .type = option_type::string,
     .help = "on SIGINT/SIGTERM, how long children have to exit before SIGKILL: 2s, 500ms",
     .default_value = "2s"},
    {.name = "metrics",
     .type = option_type::section,
     .help = "metrics and a status page over HTTP",
     .section = metrics_options},
    {"threads", option_type::integer, false,
     "event loops to spread instances over (default: the number of CPUs)"},
};
const own_keys root_own_keys = {"sessions"};

// Above this, a typo: no machine runs a thousand event loops usefully.
constexpr std::int64_t most_threads = 1024;

std::chrono::milliseconds read_grace(const locator& loc, const option_values& root) {
  const std::string text = *root.get_string("grace");
  std::string_view s = text;
  int scale = 1000;  // a bare number is seconds
  if (s.ends_with("ms")) {
    scale = 1;
    s.remove_suffix(2);
  } else if (s.ends_with("s")) {
    s.remove_suffix(1);
  }
  const auto n = parse_integer(s);
  if (!n || *n < 0 || *n > INT64_MAX / 1000)
    loc.fail_at(root.where("grace"), "grace must be a duration such as 2s or 500ms");
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
  const locator loc(file_.string(), origins_.get());
  if (!root_->IsMap()) loc.fail(*root_, "the file must hold a map with 'sessions'");
}

config_document::config_document(std::string name, const YAML::Node& root, node_origins origins)
    : file_(std::move(name)),
      root_(std::make_unique<YAML::Node>(root)),
      origins_(std::make_unique<node_origins>(std::move(origins))) {
  check_root();
}

config_document::~config_document() = default;

std::vector<std::string> config_document::plugin_path() const {
  const locator loc(file_.string(), origins_.get());
  const auto root = read_options(loc, *root_, root_options, root_own_keys, {"", "key"});
  return root->get_list("plugin_path").value_or(option_value::list{});
}

config config_document::build(const plugin_registry& plugins) const {
  const locator loc(file_.string(), origins_.get());
  const YAML::Node& doc = *root_;
  const auto root = read_options(loc, doc, root_options, root_own_keys, {"", "key"});
  config c;
  c.file = file_;
  c.plugin_path = root->get_list("plugin_path").value_or(option_value::list{});
  c.grace = read_grace(loc, *root);
  if (root->has("metrics"))
    c.metrics_listen = {*root->get_section("metrics")->get_string("listen"), root->where("metrics")};
  c.threads.value = std::max(1u, std::thread::hardware_concurrency());
  if (root->has("threads")) {
    const std::int64_t n = *root->get_integer("threads");
    if (n < 1 || n > most_threads)
      loc.fail_at(root->where("threads"),
                  "threads must be a whole number from 1 to " + std::to_string(most_threads));
    c.threads = {static_cast<unsigned>(n), root->where("threads")};
  }
  const YAML::Node sessions = doc["sessions"];
  if (!sessions) loc.fail(doc, "'sessions' is required");
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

std::span<const option_spec> root_schema() { return root_options; }
std::span<const option_spec> session_schema() { return session_options; }
std::span<const option_spec> endpoint_schema() { return endpoint_options; }

}  // namespace pickleway
