// Runs the configured sessions until they end or a signal stops them.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "config.hpp"

namespace pickleway {

// The first key of `c` that `check` accepts but this engine cannot honour
// yet, as "FILE:LINE:COL: KEY: not supported by this version yet": more
// than one thread, more than one instance of a session. nullopt when
// it can run `c` as written.
std::optional<std::string> not_yet_supported(const config& c);

class engine {
 public:
  engine(config cfg, std::optional<double> stats_seconds);
  ~engine();
  // Returns the exit status of `pickleway run`: 0 when every instance ended
  // cleanly, 1 when any failed (or the metrics could not be served).
  int run();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pickleway
