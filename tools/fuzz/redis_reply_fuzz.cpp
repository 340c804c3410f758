// The redis transport's reading of stream replies over any bytes: the
// input is what a Redis server (or anything at its address) sends, parsed
// by hiredis's reader as the transport's connection parses it (arrays
// bounded, bounded_replies.hpp), then taken
// apart as XREADGROUP's and XAUTOCLAIM's replies. Every shape is either
// entries or an error: an entry has an id and carries a message or says
// why not, and a refused reply says why.
#include <hiredis/hiredis.h>

#include <memory>

#include "bounded_replies.hpp"
#include "fuzz_input.hpp"
#include "stream_entries.hpp"

using namespace pickleway::redis;

namespace {

void check(const std::vector<stream_entry>& entries) {
  for (const stream_entry& e : entries) {
    // An entry set aside carries no bytes to pass on.
    PICKLEWAY_FUZZ_CHECK(e.problem.empty() || e.payload.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader(
      redisReaderCreateWithFunctions(bounded_reply_functions()), redisReaderFree);
  if (!reader) return 0;
  if (redisReaderFeed(reader.get(), reinterpret_cast<const char*>(data), size) != REDIS_OK) return 0;
  for (;;) {
    void* parsed = nullptr;
    if (redisReaderGetReply(reader.get(), &parsed) != REDIS_OK || !parsed) break;
    const std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(static_cast<redisReply*>(parsed),
                                                                       freeReplyObject);
    std::vector<stream_entry> entries;
    std::string error;
    if (read_group_entries(reply.get(), entries, error)) {
      PICKLEWAY_FUZZ_CHECK(error.empty());
      check(entries);
    } else {
      PICKLEWAY_FUZZ_CHECK(!error.empty());
    }
    entries.clear();
    error.clear();
    std::string cursor;
    if (autoclaim_entries(reply.get(), cursor, entries, error)) {
      PICKLEWAY_FUZZ_CHECK(error.empty());
      check(entries);
    } else {
      PICKLEWAY_FUZZ_CHECK(!error.empty());
    }
  }
  return 0;
}
