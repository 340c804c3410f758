// `pickleway bridge A B [--filter F]...`: the config document of the one
// session it stands for, made from the arguments (bridge_address.hpp) and
// then read by the same config reader as a file, so every key and every
// error is the YAML's; and that document as YAML text (--print-yaml).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "node_origins.hpp"

namespace pickleway {

inline constexpr const char* bridge_session_name = "bridge";

struct bridge_arguments {
  struct argument {
    std::string text;
    std::size_t number = 0;  // from 1, counting the words after `bridge`
  };
  argument a, b;
  std::vector<argument> filters;  // in order
};

struct bridge_document {
  YAML::Node root;
  node_origins origins;
};

// sessions: [{name: bridge, a: A, b: B, filters: [F...]}]; throws
// config_error "argument N, character C: ..." for an address that does
// not parse.
bridge_document make_bridge_document(const bridge_arguments& arguments);

// A document as YAML: maps in block style, lists of plain values in flow
// style ([python3, worker.py]), every value quoted where YAML needs it.
std::string to_yaml(const YAML::Node& root);

}  // namespace pickleway
