// The page served at /: self-contained (no outside assets), it reads
// /status every second and shows each session, its instances, message
// counts and rates each way, and its last errors.
#pragma once

#include <string_view>

namespace pickleway {

std::string_view status_page();

}  // namespace pickleway
