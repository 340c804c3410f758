#include "stream_entries.hpp"

#include <string_view>

namespace pickleway::redis {
namespace {

std::string_view text(const redisReply* r) {
  return {r->str, r->len};
}

bool is_text(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->str;
}

// [id, [field, value, ...]] or [id, nil].
bool one_entry(const redisReply* r, std::vector<stream_entry>& into, std::string& error) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_text(r->element[0])) {
    error = "a stream entry is not [id, fields]";
    return false;
  }
  stream_entry e;
  e.id = text(r->element[0]);
  const redisReply* fields = r->element[1];
  if (!fields) {
    error = "stream entry " + e.id + ": no fields";
    return false;
  }
  if (fields->type == REDIS_REPLY_NIL) {
    e.problem = "its entry was deleted (trimmed by MAXLEN?) before it was acknowledged";
  } else if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0) {
    error = "stream entry " + e.id + ": its fields are not [field, value, ...]";
    return false;
  } else {
    bool found = false;
    for (std::size_t i = 0; i + 1 < fields->elements; i += 2) {
      const redisReply* name = fields->element[i];
      const redisReply* value = fields->element[i + 1];
      if (!is_text(name) || !is_text(value)) {
        error = "stream entry " + e.id + ": a field or value is not a string";
        return false;
      }
      if (text(name) != "p" || found) continue;
      found = true;
      e.payload.assign(value->str, value->str + value->len);
    }
    if (!found) e.problem = "it has no field 'p'";
  }
  into.push_back(std::move(e));
  return true;
}

bool entry_list(const redisReply* r, std::vector<stream_entry>& into, std::string& error) {
  if (!r || r->type != REDIS_REPLY_ARRAY) {
    error = "the entries are not a list";
    return false;
  }
  for (std::size_t i = 0; i < r->elements; ++i)
    if (!one_entry(r->element[i], into, error)) return false;
  return true;
}

}  // namespace

bool read_group_entries(const redisReply* reply, std::vector<stream_entry>& into, std::string& error) {
  if (!reply) {
    error = "no reply";
    return false;
  }
  if (reply->type == REDIS_REPLY_NIL) return true;
  if (reply->type != REDIS_REPLY_ARRAY) {
    error = "XREADGROUP's reply is not a list of streams";
    return false;
  }
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* s = reply->element[i];
    if (!s || s->type != REDIS_REPLY_ARRAY || s->elements != 2 || !is_text(s->element[0])) {
      error = "XREADGROUP's reply names no stream";
      return false;
    }
    if (!entry_list(s->element[1], into, error)) return false;
  }
  return true;
}

bool autoclaim_entries(const redisReply* reply, std::string& cursor, std::vector<stream_entry>& into,
                       std::string& error) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY || (reply->elements != 2 && reply->elements != 3) ||
      !is_text(reply->element[0])) {
    error = "XAUTOCLAIM's reply is not [cursor, entries]";
    return false;
  }
  cursor = text(reply->element[0]);
  return entry_list(reply->element[1], into, error);
}

}  // namespace pickleway::redis
