// pickleway's own log: lines on standard error, each in one write. Called
// from every loop's thread (plugins reach it through their log_sink), so a
// line is written whole under a lock: a short write's rest is not
// interleaved with another thread's line.
#pragma once

#include <string_view>

namespace pickleway {

void log_line(std::string_view line);

}  // namespace pickleway
