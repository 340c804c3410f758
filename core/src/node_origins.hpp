// Where the nodes of a YAML document made in memory came from, for its
// error messages: `pickleway bridge` builds its session's document from
// command-line arguments, and an error about a node reads "argument 2,
// character 5: ..." instead of a file's LINE:COL.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace pickleway {

class node_origins {
 public:
  void add(const YAML::Node& node, std::string where) { origins_.emplace_back(node, std::move(where)); }
  // Where `node` (or a handle of the same node) came from, if it is known.
  std::optional<std::string> find(const YAML::Node& node) const {
    if (!node.IsDefined()) return std::nullopt;
    for (const auto& [known, where] : origins_)
      if (known.is(node)) return where;
    return std::nullopt;
  }

 private:
  std::vector<std::pair<YAML::Node, std::string>> origins_;
};

}  // namespace pickleway
