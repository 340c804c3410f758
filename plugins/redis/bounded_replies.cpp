#include "bounded_replies.hpp"

#include <memory>

namespace pickleway::redis {
namespace {

// hiredis's default functions, as a fresh reader holds them (hiredis
// exports no name for them).
redisReplyObjectFunctions defaults() {
  const std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader(redisReaderCreate(), redisReaderFree);
  return reader && reader->fn ? *reader->fn : redisReplyObjectFunctions{};
}

const redisReplyObjectFunctions hiredis_functions = defaults();

void* bounded_array(const redisReadTask* task, int elements) {
  if (elements > max_reply_elements || !hiredis_functions.createArray) return nullptr;
  return hiredis_functions.createArray(task, elements);
}

}  // namespace

redisReplyObjectFunctions* bounded_reply_functions() {
  static redisReplyObjectFunctions functions = [] {
    redisReplyObjectFunctions f = hiredis_functions;
    f.createArray = bounded_array;
    return f;
  }();
  return &functions;
}

}  // namespace pickleway::redis
