#include "output_hints.hpp"

#include <algorithm>

namespace pickleway {

output_hints::output_hints(const plugin_registry& plugins,
                           const std::vector<const loaded_plugin*>& used) {
  for (const auto& p : plugins.plugins()) {
    const bool in_use = std::any_of(used.begin(), used.end(), [&](const loaded_plugin* u) {
      return u->descriptor == p.descriptor;
    });
    if (p.descriptor->recognize_output && !in_use) recognisers_.push_back(p.descriptor->recognize_output);
  }
}

const char* output_hints::recognise(bytes_view message) const {
  for (const auto recognise : recognisers_)
    if (const char* hint = recognise(message)) return hint;
  return nullptr;
}

std::string output_hints::for_message(bytes_view message) const {
  const char* hint = recognise(message);
  return hint ? std::string(": ") + hint : std::string();
}

std::string output_hints::for_stream(bytes_view data) const {
  if (const char* hint = recognise(data)) return std::string(": ") + hint;
  // framing: length's header, as multiprocessing.connection writes it for
  // a message under 2 GiB: a big-endian 32-bit length.
  constexpr std::size_t header = 4;
  if (data.size() <= header) return {};
  std::uint64_t length = 0;
  for (std::size_t i = 0; i < header; ++i) length = (length << 8) | data[i];
  if (length == 0 || length > 0x7FFF'FFFF) return {};
  const bytes_view message = data.subspan(header, std::min<std::uint64_t>(length, data.size() - header));
  if (const char* hint = recognise(message))
    return std::string(": a 4-byte length (framing: length), then what ") + hint;
  return {};
}

}  // namespace pickleway
