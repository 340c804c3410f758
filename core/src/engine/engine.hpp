// Runs the configured sessions until they end or a signal stops them.
#pragma once

#include <memory>
#include <optional>

#include "config.hpp"

namespace pickleway {

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
