// Session configuration: the YAML file, checked against the core's schema
// and each plugin's, every error located as FILE:LINE:COL.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "pickleway/filter.hpp"
#include "pickleway/framer.hpp"
#include "output_hints.hpp"
#include "pickleway/transport.hpp"
#include "plugin_registry.hpp"

namespace YAML {
class Node;
}

namespace pickleway {

class node_origins;

// "FILE:LINE:COL: message"; config and plugin-loading errors only.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `link: {...}` of an endpoint with `framing: link` (docs/framing.md).
struct link_options {
  std::uint64_t replay = std::uint64_t{64} << 20;  // bytes of unacknowledged messages
  std::chrono::milliseconds resume{60000};
  std::chrono::milliseconds keepalive{1000};
  std::chrono::milliseconds ack{20};
};

struct framing_config {
  framing_kind kind = framing_kind::pickle;
  framer_options pickle;  // max_message applies to every kind
  link_options link;      // framing: link
};

// `auth`: multiprocessing.connection's authkey challenge when the endpoint
// opens (`framing: length` only). The key is read when the config is.
struct auth_config {
  std::vector<std::uint8_t> key;  // never printed nor logged
  std::string source;             // "key_file /etc/pw.key" or "key_env PW_KEY", for messages
  std::chrono::milliseconds timeout{};  // for the whole handshake (timeout_ms)
};

// A key of the root or of a session as the config set it: its value, and
// where it was written (empty: it took its default).
template <typename T>
struct setting {
  T value{};
  std::string where;
  bool written() const { return !where.empty(); }
};

struct endpoint_config {
  std::string transport_name;
  std::string where;  // of the endpoint's map
  const loaded_plugin* plugin = nullptr;
  std::unique_ptr<pickleway::transport> endpoint;  // made by the plugin from the options
  framing_config framing;
  std::optional<auth_config> auth;
  // The transport's options that took their schema's default, as
  // "name=value" (in a section written: "tls.timeout_ms=10000").
  std::vector<std::string> defaults;
};

struct filter_config {
  std::string name;
  std::string where;
  const loaded_plugin* plugin = nullptr;
  std::unique_ptr<filter_factory> factory;
  std::vector<std::string> defaults;  // as endpoint_config's
};

struct session_config {
  std::string name;
  std::string where;
  endpoint_config a, b;
  std::vector<filter_config> filters;
  setting<std::uint64_t> max_instances{64, {}};  // with a listening endpoint
  setting<std::uint64_t> instances{1, {}};       // without one
  // For errors about bytes its endpoints cannot take (output_hints.hpp).
  output_hints hints;
};

struct config {
  std::filesystem::path file;
  std::vector<std::string> plugin_path;
  std::chrono::milliseconds grace{2000};
  std::vector<session_config> sessions;
  setting<std::string> metrics_listen;  // `metrics: {listen: HOST:PORT}`
  setting<unsigned> threads;            // default: the number of CPUs
};

// The YAML document, read but not yet checked; its plugin_path decides
// where plugins are searched before the rest can be checked.
class config_document {
 public:
  explicit config_document(const std::filesystem::path& file);  // throws config_error
  // The same from text already read; `file` names it in errors and places
  // its relative paths. For tools that hold the YAML in memory (the fuzzer).
  config_document(const std::filesystem::path& file, const std::string& text);
  // A document made in memory (`pickleway bridge`'s): errors name where
  // `origins` says each node came from, else `name`.
  config_document(std::string name, const YAML::Node& root, node_origins origins);
  ~config_document();
  std::vector<std::string> plugin_path() const;  // throws config_error
  std::filesystem::path directory() const { return file_.parent_path(); }

  // Checks everything and makes each endpoint's transport and each filter's
  // factory. Throws config_error at the first error.
  config build(const plugin_registry& plugins) const;

 private:
  void check_root() const;

  std::filesystem::path file_;
  std::unique_ptr<YAML::Node> root_;
  std::unique_ptr<node_origins> origins_;  // null for a file
};

// "64MiB" and kin, for sizes in options.
std::optional<std::uint64_t> parse_size(std::string_view text);

// The core's own schemas, for `pickleway help`: the keys of the file's
// root, of a session, and those every endpoint takes beside its
// transport's. (The keys whose values are sessions, endpoints or filters
// are listed for the help, and read by code of their own.)
std::span<const option_spec> root_schema();
std::span<const option_spec> session_schema();
std::span<const option_spec> endpoint_schema();

}  // namespace pickleway
