// pickleway's own log: lines on standard error, whole even when several
// threads (a child's stderr reader) write at once.
#pragma once

#include <string_view>

namespace pickleway {

void log_line(std::string_view line);

}  // namespace pickleway
