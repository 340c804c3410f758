// hiredis's reply objects, but for arrays longer than any reply the redis
// endpoint asks for: hiredis 0.14 allocates an array's element pointers as
// soon as it reads the declared count, so "*700000000\r\n" from whatever
// answers at the address would cost gigabytes before one element arrived.
// Such an array is refused instead (hiredis reports it as out of memory,
// and the connection breaks). Newer hiredis has maxelements for this.
#pragma once

#include <hiredis/hiredis.h>  // redisReaderCreate, with hiredis's functions

namespace pickleway::redis {

// Elements any reply of ours has at most: XREADGROUP's batch of entries,
// each [id, [field, value]], is far below it.
inline constexpr int max_reply_elements = 1 << 16;

// For redisReader::fn: hiredis's own functions, with the bound on arrays.
redisReplyObjectFunctions* bounded_reply_functions();

}  // namespace pickleway::redis
