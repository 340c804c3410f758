#include "plugin_registry.hpp"

#include <algorithm>
#include <cstdlib>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include "option_reader.hpp"

namespace pickleway {

std::string_view to_string(plugin_kind kind) {
  switch (kind) {
    case plugin_kind::transport: return "transport";
    case plugin_kind::filter: return "filter";
  }
  return "unknown";
}

plugin_registry::plugin_registry() = default;
plugin_registry::~plugin_registry() = default;

void plugin_registry::load_directory(const std::filesystem::path& dir) {
  searched_.push_back(dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().extension() == ".so") files.push_back(entry.path());
  std::sort(files.begin(), files.end());  // the same order on every machine
  for (const auto& file : files) load_file(file);
}

void plugin_registry::load_file(const std::filesystem::path& file) {
  auto library = std::make_unique<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  library->load(file, boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    warnings_.push_back(file.string() + ": cannot load: " + ec.message());
    return;
  }
  if (!library->has(plugin_symbol)) {
    warnings_.push_back(file.string() + ": not a pickleway plugin (no " +
                        std::string(plugin_symbol) + " symbol), skipped");
    return;
  }
  const auto entry = library->get_alias<plugin_entry_fn>(plugin_symbol);
  const plugin_descriptor* d = entry();
  if (!d || d->abi_version != abi_version) {
    warnings_.push_back(file.string() + ": built for plugin ABI version " +
                        (d ? std::to_string(d->abi_version) : std::string("?")) +
                        ", this pickleway has " + std::to_string(abi_version) + ", skipped");
    return;
  }
  const bool has_factory = d->kind == plugin_kind::transport ? d->make_transport != nullptr
                           : d->kind == plugin_kind::filter  ? d->make_filter != nullptr
                                                             : false;
  if (!d->name || !has_factory) {
    warnings_.push_back(file.string() + ": malformed plugin descriptor, skipped");
    return;
  }
  // Its schema is data the core trusts from here on (its defaults above all).
  if (const auto problem = schema_problem(d->options)) {
    warnings_.push_back(file.string() + ": " + *problem + ", skipped");
    return;
  }
  if (find(d->kind, d->name)) return;  // an earlier directory has it
  plugins_.push_back({d, file});
  libraries_.push_back(std::move(library));
}

const loaded_plugin* plugin_registry::find(plugin_kind kind, const std::string& name) const {
  for (const auto& p : plugins_)
    if (p.descriptor->kind == kind && name == p.descriptor->name) return &p;
  return nullptr;
}

std::vector<std::filesystem::path> plugin_search_path(
    const std::vector<std::string>& command_line, const std::vector<std::string>& config_paths,
    const std::filesystem::path& config_dir) {
  std::vector<std::filesystem::path> dirs(command_line.begin(), command_line.end());
  if (const char* env = std::getenv("PICKLEWAY_PLUGIN_PATH")) {
    std::string_view rest = env;
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      const auto part = rest.substr(0, colon);
      if (!part.empty()) dirs.emplace_back(part);
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    }
  }
  for (const auto& p : config_paths) dirs.push_back(config_dir / p);
  const std::filesystem::path exe_dir = boost::dll::program_location().parent_path();
  dirs.push_back(exe_dir / "plugins");
  // Installed as PREFIX/bin/pickleway: wherever PREFIX was moved to.
  dirs.push_back((exe_dir / ".." / "lib" / "pickleway" / "plugins").lexically_normal());
  // A directory named twice is searched once, where it first comes.
  std::vector<std::filesystem::path> unique;
  for (auto& d : dirs) {
    d = d.lexically_normal();
    if (std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(d);
  }
  return unique;
}

}  // namespace pickleway
