// pickleway's own log: lines on standard error, each in one write. Called
// from the event loop thread only; plugins reach it through their
// log_sink, on that thread too, so it needs no lock.
#pragma once

#include <string_view>

namespace pickleway {

void log_line(std::string_view line);

}  // namespace pickleway
