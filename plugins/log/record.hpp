// One log record, and its two written forms (text and jsonl).
//
// A record is made on the event loop thread from cheap facts; formatting it
// (timestamp, escaping, disassembly, hex dump) happens on the writer thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <pickleway/filter.hpp>

#include "inspect.hpp"

namespace pickleway::log {

// Who a record is from: one instance of a session. Shared by its records.
struct origin {
  std::string session;
  std::uint64_t instance = 0;
};

struct record {
  enum class kind : std::uint8_t {
    message,  // one message seen
    dropped,  // the instance ended after `count` of its records were dropped
  };
  kind what = kind::message;
  std::chrono::system_clock::time_point time;
  std::shared_ptr<const origin> from;
  direction dir = direction::a_to_b;
  std::uint64_t sequence = 0;
  std::uint64_t size = 0;   // of the message
  std::uint64_t count = 0;  // dropped: how many
  message_facts facts;
  // With dis: the whole message; with hex alone: its first hex_limit bytes.
  std::vector<std::uint8_t> bytes;
};

enum class format : std::uint8_t { text, jsonl };

struct format_options {
  log::format form = format::text;
  bool dis = false;
  bool hex = false;
  std::size_t hex_limit = 256;
};

// Appends the record's lines, each ending in '\n', to `out`.
void append_record(std::string& out, const record& r, const format_options& options);

// RFC 3339 in UTC with microseconds: 2024-05-01T12:00:00.123456Z.
std::string rfc3339(std::chrono::system_clock::time_point t);

}  // namespace pickleway::log
