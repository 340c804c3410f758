// What to add to an error about bytes an endpoint could not take, when a
// plugin the session does not run recognises them as its own output: a
// compress frame reaching a gateway whose session has no compress filter
// then reads "... unknown opcode 0xf3 ...: looks like a frame of the
// compress filter: does this session need compress?". The core knows no
// plugin's format: it asks each loaded plugin's recognize_output.
#pragma once

#include <string>
#include <vector>

#include "pickleway/plugin.hpp"
#include "plugin_registry.hpp"

namespace pickleway {

class output_hints {
 public:
  output_hints() = default;
  // The recognisers of every plugin in `plugins` but those in `used` (a
  // session that runs compress is told nothing of compress frames).
  output_hints(const plugin_registry& plugins, const std::vector<const loaded_plugin*>& used);

  // ": HINT" to end an error about `message`, one message's bytes; or "".
  std::string for_message(bytes_view message) const;
  // The same for a pickle-framed stream whose message starting at `data`
  // did not frame. A length-framed sender puts a 4-byte length first, so a
  // message behind such a length is asked about too.
  std::string for_stream(bytes_view data) const;

 private:
  const char* recognise(bytes_view message) const;

  std::vector<recognize_output_fn> recognisers_;
};

}  // namespace pickleway
