// pickleway's command line.
#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string_view>
#include <vector>

#include "bridge_address.hpp"
#include "bridge_session.hpp"
#include "config.hpp"
#include "engine/engine.hpp"
#include "help.hpp"
#include "nearest_word.hpp"
#include "pickleway/disassembler.hpp"
#include "plugin_registry.hpp"

namespace {

using namespace pickleway;

constexpr std::string_view usage =
    "usage: pickleway run CONFIG.yaml [--session NAME]... [--stats SECONDS] [--plugin-path DIR]...\n"
    "       pickleway check CONFIG.yaml [--plugin-path DIR]...\n"
    "       pickleway bridge A B [--filter F]... [--print-yaml] [--stats SECONDS] [--plugin-path DIR]...\n"
    "       pickleway plugins [--plugin-path DIR]...\n"
    "       pickleway help [PLUGIN|config|session|endpoint] [--plugin-path DIR]...\n"
    "       pickleway dis [FILE|-] [--max-message SIZE]\n"
    "       pickleway --version\n";

int bad_usage(std::string_view why) {
  std::cerr << "pickleway: " << why << "\n" << usage;
  return 2;
}

struct command_line {
  std::string command;
  std::vector<std::string> positional;
  std::vector<std::size_t> positional_numbers;  // each one's place after the command, from 1
  std::vector<std::string> plugin_path;
  std::vector<std::string> sessions;
  std::optional<double> stats_seconds;
  std::optional<std::string> max_message;  // dis's
  // bridge's
  std::vector<bridge_arguments::argument> filters;
  bool print_yaml = false;
};

std::optional<command_line> parse(int argc, char** argv, std::string& error) {
  command_line c;
  c.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) return nullptr;
      return argv[++i];
    };
    const bool bridge_option = arg == "--filter" || arg == "--print-yaml";
    if (bridge_option && c.command != "bridge") {
      error = std::string(arg) + " is an option of bridge only";
      return std::nullopt;
    }
    if (arg == "--print-yaml") {
      c.print_yaml = true;
    } else if (arg == "--plugin-path" || arg == "--session" || arg == "--stats" || arg == "--filter" ||
               arg == "--max-message") {
      const char* v = value();
      if (!v) {
        error = std::string(arg) + " needs a value";
        return std::nullopt;
      }
      if (arg == "--plugin-path") c.plugin_path.emplace_back(v);
      if (arg == "--session") c.sessions.emplace_back(v);
      if (arg == "--max-message") c.max_message = v;
      if (arg == "--filter") c.filters.push_back({v, static_cast<std::size_t>(i - 1)});
      if (arg == "--stats") {
        char* end = nullptr;
        const double s = std::strtod(v, &end);
        if (*end != '\0' || !(s > 0)) {
          error = "--stats needs a number of seconds above 0";
          return std::nullopt;
        }
        c.stats_seconds = s;
      }
    } else if (arg.starts_with("--") && arg != "-") {
      error = "unknown option " + std::string(arg);
      return std::nullopt;
    } else {
      c.positional.emplace_back(arg);
      c.positional_numbers.push_back(static_cast<std::size_t>(i - 1));
    }
  }
  return c;
}

// Loads the plugins on the search path, warning of the files it skips.
void load_plugins(plugin_registry& registry, const command_line& c,
                  const std::vector<std::string>& config_paths,
                  const std::filesystem::path& config_dir) {
  for (const auto& dir : plugin_search_path(c.plugin_path, config_paths, config_dir))
    registry.load_directory(dir);
  for (const auto& w : registry.warnings()) std::cerr << "pickleway: warning: " << w << "\n";
}

int run_plugins(const command_line& c) {
  if (!c.positional.empty()) return bad_usage("plugins takes no arguments");
  plugin_registry registry;
  load_plugins(registry, c, {}, {});
  for (const auto& p : registry.plugins())
    std::cout << to_string(p.descriptor->kind) << "\t" << p.descriptor->name << "\t"
              << p.descriptor->version << "\t" << p.file.string() << "\n";
  return 0;
}

// The options of a plugin, or the keys of a config's root, a session, an
// endpoint: what the config reader checks, from the same schemas.
int run_help(const command_line& c) {
  if (c.positional.empty()) {
    std::cout << usage;
    return 0;
  }
  if (c.positional.size() > 1) return bad_usage("help takes one topic");
  const std::string& topic = c.positional[0];
  const std::pair<std::string_view, std::span<const option_spec>> core_topics[] = {
      {"config", root_schema()}, {"session", session_schema()}, {"endpoint", endpoint_schema()}};
  for (const auto& [name, schema] : core_topics) {
    if (topic != name) continue;
    std::cout << (name == "config" ? "the keys of a config file's root:\n"
                  : name == "session" ? "the keys of a session:\n"
                                      : "the keys every endpoint takes beside its transport's "
                                        "options:\n");
    print_options(std::cout, schema);
    return 0;
  }
  plugin_registry registry;
  load_plugins(registry, c, {}, {});
  bool found = false;
  for (const auto& p : registry.plugins()) {
    if (topic != p.descriptor->name) continue;
    if (found) std::cout << "\n";
    found = true;
    std::cout << to_string(p.descriptor->kind) << " " << p.descriptor->name << " "
              << p.descriptor->version << " (" << p.file.string() << ")\n"
              << p.descriptor->description << "\n";
    print_options(std::cout, p.descriptor->options);
  }
  if (!found) {
    std::vector<std::string_view> topics{"config", "session", "endpoint"};
    for (const auto& p : registry.plugins()) topics.emplace_back(p.descriptor->name);
    std::cerr << "pickleway: no plugin named '" << topic << "' and no such topic"
              << did_you_mean(topic, topics) << "\n";
    return 2;
  }
  return 0;
}

std::string framing_text(const framing_config& f) {
  constexpr const char* names[] = {"framing=pickle", "framing=length", "framing=link"};
  std::string s = names[static_cast<int>(f.kind)];
  s += " max_message=" + std::to_string(f.pickle.max_message);
  if (f.kind == framing_kind::pickle) {
    s += f.pickle.on_stray == stray_policy::divert ? " on_stray=divert" : " on_stray=error";
    s += f.pickle.memo == memo_policy::allow ? " memo=allow" : " memo=error";
  }
  if (f.kind == framing_kind::link)
    s += " replay=" + std::to_string(f.link.replay) + " resume_ms=" +
         std::to_string(f.link.resume.count()) + " keepalive_ms=" +
         std::to_string(f.link.keepalive.count()) + " ack_ms=" + std::to_string(f.link.ack.count());
  return s;
}

// The auth settings, never the key.
std::string auth_text(const std::optional<auth_config>& a) {
  if (!a) return {};
  return " auth=" + a->source + " timeout_ms=" + std::to_string(a->timeout.count());
}

// Loads and checks a config; prints the error and returns nullopt on failure.
std::optional<config> load(const command_line& c, plugin_registry& registry) {
  try {
    const config_document doc(c.positional[0]);
    load_plugins(registry, c, doc.plugin_path(), doc.directory());
    return doc.build(registry);
  } catch (const config_error& e) {
    std::cerr << e.what() << "\n";
    return std::nullopt;
  }
}

// "    defaults: a=1 b=2\n" (with `label` before "defaults"), or nothing.
std::string defaults_line(const std::string& label, const std::vector<std::string>& defaults) {
  if (defaults.empty()) return {};
  std::string line = "    " + label + "defaults:";
  for (const auto& d : defaults) line += " " + d;
  return line + "\n";
}

template <typename T>
std::string setting_text(const setting<T>& s) {
  return std::to_string(s.value) + (s.written() ? "" : " (default)");
}

int run_check(const command_line& c) {
  if (c.positional.size() != 1) return bad_usage("check takes one CONFIG.yaml");
  plugin_registry registry;
  const auto cfg = load(c, registry);
  if (!cfg) return 2;
  for (const auto& s : cfg->sessions) {
    std::cout << "session " << s.name << "\n"
              << "  a: " << s.a.endpoint->describe() << " " << framing_text(s.a.framing) << auth_text(s.a.auth)
              << "\n"
              << defaults_line("", s.a.defaults);
    std::string chain, filter_defaults;
    for (const auto& f : s.filters) {
      chain += (chain.empty() ? "" : " -> ") + f.factory->describe();
      filter_defaults += defaults_line(f.name + " ", f.defaults);
    }
    std::cout << "  filters a>b: " << (chain.empty() ? "(none)" : chain) << "\n"
              << filter_defaults
              << "  b: " << s.b.endpoint->describe() << " " << framing_text(s.b.framing) << auth_text(s.b.auth)
              << "\n"
              << defaults_line("", s.b.defaults);
    if (s.a.endpoint->listens() || s.b.endpoint->listens())
      std::cout << "  max_instances: " << setting_text(s.max_instances) << "\n";
    else
      std::cout << "  instances: " << setting_text(s.instances) << "\n";
  }
  std::cout << "threads: " << cfg->threads.value
            << (cfg->threads.written() ? "" : " (default: the number of CPUs)") << "\n";
  if (cfg->metrics_listen.written()) std::cout << "metrics: listen " << cfg->metrics_listen.value << "\n";
  std::cout << "ok: " << cfg->sessions.size() << " session(s)\n";
  return 0;
}

int run_run(const command_line& c) {
  if (c.positional.size() != 1) return bad_usage("run takes one CONFIG.yaml");
  plugin_registry registry;
  auto cfg = load(c, registry);
  if (!cfg) return 2;
  if (!c.sessions.empty()) {
    std::vector<session_config> chosen;
    for (const auto& name : c.sessions) {
      const auto it = std::find_if(cfg->sessions.begin(), cfg->sessions.end(),
                                   [&](const session_config& s) { return s.name == name; });
      if (it == cfg->sessions.end()) return bad_usage("no session named '" + name + "' in the config");
      chosen.push_back(std::move(*it));
      cfg->sessions.erase(it);
    }
    cfg->sessions = std::move(chosen);
  }
  engine e(std::move(*cfg), c.stats_seconds);
  return e.run();
}

// An error of bridge: located at an argument, it also shows the argument
// with a caret under the character.
void report_bridge_error(const std::string& message, char** argv) {
  std::cerr << "pickleway: " << message << "\n";
  const auto place = read_command_line_place(message);
  if (!place) return;
  std::string argument = argv[1 + place->argument];
  std::replace(argument.begin(), argument.end(), '\t', ' ');
  std::replace(argument.begin(), argument.end(), '\n', ' ');
  std::cerr << "  " << argument << "\n  " << std::string(place->character - 1, ' ') << "^\n";
}

// One session from the command line: the document it stands for is read
// as a config file is, so its keys and errors are the YAML's.
int run_bridge(const command_line& c, char** argv) {
  if (c.positional.size() != 2) return bad_usage("bridge takes two endpoints, A and B");
  if (!c.sessions.empty()) return bad_usage("bridge runs one session: --session does not apply");
  std::optional<config> cfg;
  plugin_registry registry;
  try {
    bridge_arguments arguments{{c.positional[0], c.positional_numbers[0]},
                               {c.positional[1], c.positional_numbers[1]},
                               c.filters};
    bridge_document doc = make_bridge_document(arguments);
    if (c.print_yaml) {
      std::cout << to_yaml(doc.root);
      return 0;
    }
    load_plugins(registry, c, {}, {});
    const config_document document("the command line", doc.root, std::move(doc.origins));
    cfg = document.build(registry);
  } catch (const config_error& e) {
    report_bridge_error(e.what(), argv);
    return 2;
  }
  engine e(std::move(*cfg), c.stats_seconds);
  return e.run();
}

int run_dis(const command_line& c) {
  if (c.positional.size() > 1) return bad_usage("dis takes at most one FILE");
  const std::string path = c.positional.empty() ? "-" : c.positional[0];
  std::uint64_t max_message = dis_default_max_message;
  if (c.max_message) {
    const auto size = parse_size(*c.max_message);
    if (!size || *size == 0)
      return bad_usage("--max-message needs a size: bytes, or a number with KiB, MiB or GiB, not '" +
                       *c.max_message + "'");
    max_message = std::min(*size, largest_max_message);  // message offsets are 32-bit
  }
  std::ios::sync_with_stdio(false);
  if (path == "-") return disassemble_stream(std::cin, std::cout, std::cerr, max_message);
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::cerr << "pickleway dis: cannot open " << path << ": " << std::strerror(errno) << "\n";
    return 2;
  }
  return disassemble_stream(file, std::cout, std::cerr, max_message);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return bad_usage("a command is required");
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h") {
    std::cout << usage;
    return 0;
  }
  if (command == "--version") {
    if (argc > 2) return bad_usage("--version takes no arguments");
    std::cout << "pickleway " << PICKLEWAY_VERSION << " (plugin ABI " << abi_version << ")\n";
    return 0;
  }
  std::string error;
  const auto c = parse(argc, argv, error);
  if (!c) return bad_usage(error);
  // A peer that went away is an error on that stream, never a signal.
  std::signal(SIGPIPE, SIG_IGN);
  if (command == "dis") return run_dis(*c);
  if (command == "plugins") return run_plugins(*c);
  if (command == "help") return run_help(*c);
  if (command == "check") return run_check(*c);
  if (command == "run") return run_run(*c);
  if (command == "bridge") return run_bridge(*c, argv);
  return bad_usage("unknown command '" + std::string(command) + "'");
}
