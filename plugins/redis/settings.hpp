// A redis endpoint's options, as validated (redis.cpp reads them).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "../common/socket_endpoint.hpp"
#include "connection.hpp"

namespace pickleway::redis {

struct read_settings {
  std::string stream, group;
  std::string consumer;  // empty: HOSTNAME-PID
};

struct write_settings {
  std::string stream;
  std::uint64_t maxlen = 0;  // 0: the stream is not trimmed
};

struct settings {
  server_address address;
  std::optional<read_settings> read;
  std::optional<write_settings> write;
  bool ack_replied = false;  // ack: replied; else written
  std::chrono::milliseconds claim{30000};
  std::string password_env;  // empty: no AUTH
  sockets::retry_policy retry;
};

}  // namespace pickleway::redis
