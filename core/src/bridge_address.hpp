// The endpoints and filters of `pickleway bridge`, written socat-style:
//
//   TRANSPORT:MAIN[,key=value]...     an endpoint; MAIN is the transport's
//                                     main option (see the table in the .cpp)
//   NAME[,key=value]...               a filter (after --filter)
//
// Every key is the endpoint's (or filter's) YAML key; a dotted key goes
// into a section (read.stream=jobs is read: {stream: jobs}). Quotes and
// backslashes work as in sh: '...' keeps everything; "..." everything but
// a backslash before one of " \ $ ` (which it quotes); a backslash outside
// quotes quotes the character after it; an unquoted comma ends a value. spawn's MAIN is split into words at unquoted blanks,
// as sh splits a command. A value that opens with [ or { is YAML flow
// (allow=[collections.*, mymod.Order]), commas inside it included.
//
// Pure: it turns one argument into the YAML node it stands for, recording
// where each node came from in `origins`, so that the config reader's
// errors point at the argument and the character. Its own errors throw
// config_error, "argument N, character C: message": arguments count from
// 1 after `bridge`, characters from 1 (UTF-8 characters, not bytes).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "node_origins.hpp"

namespace pickleway {

// "argument 2, character 5"
std::string command_line_place(std::size_t argument, std::size_t character);

// The argument and character of a message that starts with a place, as
// command_line_place writes it.
struct command_line_position {
  std::size_t argument = 0;
  std::size_t character = 0;
};
std::optional<command_line_position> read_command_line_place(std::string_view message);

// The endpoint map `text` (argument number `argument`) stands for.
YAML::Node parse_endpoint_address(std::string_view text, std::size_t argument,
                                  node_origins& origins);

// The filter item `text` stands for: NAME, or {NAME: {options}}.
YAML::Node parse_filter_address(std::string_view text, std::size_t argument,
                                node_origins& origins);

}  // namespace pickleway
