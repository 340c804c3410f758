// Finds, loads and keeps the plugin libraries.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pickleway/plugin.hpp"

namespace boost::dll {
class shared_library;
}

namespace pickleway {

struct loaded_plugin {
  const plugin_descriptor* descriptor;
  std::filesystem::path file;
};

class plugin_registry {
 public:
  plugin_registry();
  ~plugin_registry();
  plugin_registry(const plugin_registry&) = delete;
  plugin_registry& operator=(const plugin_registry&) = delete;

  // Loads every plugin library in `dir` (a missing directory is skipped).
  // The first plugin of a name wins, so earlier directories come first.
  // A .so that is no pickleway plugin, or has another ABI version, or fails
  // to load, is skipped with a warning naming the file.
  void load_directory(const std::filesystem::path& dir);

  const loaded_plugin* find(plugin_kind kind, const std::string& name) const;
  const std::vector<loaded_plugin>& plugins() const { return plugins_; }
  const std::vector<std::filesystem::path>& searched() const { return searched_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  void load_file(const std::filesystem::path& file);

  // Never unloaded before the registry dies, which is after every session:
  // nothing a plugin made can outlive its code.
  std::vector<std::unique_ptr<boost::dll::shared_library>> libraries_;
  std::vector<loaded_plugin> plugins_;
  std::vector<std::filesystem::path> searched_;
  std::vector<std::string> warnings_;
};

// The directories to search, in order: --plugin-path options,
// PICKLEWAY_PLUGIN_PATH (colon-separated), the config's plugin_path
// (relative to the config file), <dir of the executable>/plugins, and the
// install prefix's lib/pickleway/plugins (<dir of the executable>/../lib/...).
std::vector<std::filesystem::path> plugin_search_path(
    const std::vector<std::string>& command_line, const std::vector<std::string>& config_paths,
    const std::filesystem::path& config_dir);

std::string_view to_string(plugin_kind kind);

}  // namespace pickleway
