// One log record, and its two written forms (text and jsonl).
//
// A record is made on the event loop thread from what is cheap there: the
// clock, the message's sequence and size, and a copy of its bytes (kept by
// the writer's queue, see writer.hpp). Inspecting the bytes (framing, type
// walk, globals) and formatting the record (timestamp, escaping,
// disassembly, hex dump) happen on the writer thread.
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
    retired,  // the instance ended with none dropped: nothing is written
  };
  kind what = kind::message;
  // The bytes the record keeps are the whole message, and the writer
  // inspects them; otherwise `facts` says what the event loop found.
  bool inspect_kept = false;
  direction dir = direction::a_to_b;
  std::chrono::system_clock::time_point time;
  // The instance's origin, kept alive by the instance while it queues
  // records, then by its last record (dropped or retired) in `keep`, which
  // the writer lets go only after the records before it: the event loop
  // never touches a reference count the writer thread also touches.
  const origin* from = nullptr;
  std::shared_ptr<const origin> keep;
  std::uint64_t sequence = 0;
  std::uint64_t size = 0;   // of the message
  std::uint64_t count = 0;  // dropped: how many
  // Where the kept bytes are in the byte store of the record's batch (see
  // writer::push): the whole message, or for `hex` alone its first
  // hex_limit bytes, or nothing.
  std::size_t kept_at = 0;
  std::size_t kept_size = 0;
  // A message too large to copy for the writer is inspected on the event
  // loop (its framing skips the payloads); null when inspect_kept.
  std::unique_ptr<message_facts> facts;
};

enum class format : std::uint8_t { text, jsonl };

// The marker a record cut at max_record ends with.
inline constexpr std::string_view truncated_marker = "\xe2\x80\xa6truncated";  // U+2026
// The least max_record: room for a record's fixed fields and the marker.
inline constexpr std::size_t smallest_max_record = 1024;

struct format_options {
  log::format form = format::text;
  bool dis = false;
  bool hex = false;
  std::size_t hex_limit = 256;
  // A record longer than this is cut, ending in truncated_marker: jsonl
  // inside the string or list it cut, so it stays one JSON object.
  std::size_t max_record = std::size_t{1} << 20;
};

// Formats records; one per writer thread, as it keeps state from record
// to record (the formatted second of the last timestamp).
class record_formatter {
 public:
  explicit record_formatter(const format_options& options) : options_(options) {}

  // Appends the record's lines, each ending in '\n', to `out`. `kept` is
  // the record's kept bytes; `facts` what is known of the message.
  void append(std::string& out, const record& r, bytes_view kept, const message_facts& facts);

 private:
  void append_time(std::string& out, std::chrono::system_clock::time_point t);
  // What the record that began at `start` may still add to `out`, keeping
  // `reserve` bytes for what must follow.
  std::size_t room(const std::string& out, std::size_t start, std::size_t reserve) const;
  void append_jsonl(std::string& out, const record& r, bytes_view kept, const message_facts& facts);
  void append_text(std::string& out, const record& r, bytes_view kept, const message_facts& facts);

  const format_options options_;
  std::int64_t second_ = INT64_MIN;  // the second `second_text_` shows
  std::string second_text_;          // "2024-05-01T12:00:00."
};

// RFC 3339 in UTC with microseconds: 2024-05-01T12:00:00.123456Z.
std::string rfc3339(std::chrono::system_clock::time_point t);

}  // namespace pickleway::log
