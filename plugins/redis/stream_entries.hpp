// The entries of Redis's stream replies (XREADGROUP, XAUTOCLAIM), taken
// apart as hiredis parsed them: every shape is checked, since the bytes
// come from the network. One entry is one message: field `p`.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pickleway::redis {

struct stream_entry {
  std::string id;                     // "1700000000000-0"
  std::vector<std::uint8_t> payload;  // field `p`
  // Why the entry carries no message (deleted by MAXLEN while pending, no
  // field `p`); empty when it does.
  std::string problem;
};

// XREADGROUP's reply: nil (BLOCK timed out) or [[stream, [entry...]]],
// each entry [id, [field, value, ...]] or [id, nil]. Appends to `into`;
// false, and why, on any other shape.
bool read_group_entries(const redisReply* reply, std::vector<stream_entry>& into, std::string& error);

// XAUTOCLAIM's reply: [next-cursor, [entry...]] (Redis 6.2), with a third
// element of deleted ids on Redis 7. Appends the entries to `into` and
// sets `cursor`; false, and why, on any other shape.
bool autoclaim_entries(const redisReply* reply, std::string& cursor, std::vector<stream_entry>& into,
                       std::string& error);

}  // namespace pickleway::redis
