// The config loader over any text: config_document, then build() with the
// plugins of this build, so each transport's and filter's own option checks
// run too. The input either builds, or is refused with a config_error that
// reads "FILE:LINE:COL: message"; any other exception is a finding (the
// command line would die of it). Building never opens a socket, spawns or
// creates a file: transports only check their options until a session runs.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "config.hpp"
#include "fuzz_input.hpp"
#include "plugin_registry.hpp"

namespace {

using namespace pickleway;

// Relative paths in the config (plugin_path, key files) lead nowhere.
const std::string config_file = "/nonexistent/pickleway-fuzz/config.yaml";

const plugin_registry& plugins() {
  static const auto registry = [] {
    auto r = std::make_unique<plugin_registry>();
    r->load_directory(PICKLEWAY_FUZZ_PLUGIN_DIR);
    if (r->plugins().empty()) {
      std::cerr << "no plugins in " << PICKLEWAY_FUZZ_PLUGIN_DIR << "\n";
      std::abort();
    }
    return r;
  }();
  return *registry;
}

// "FILE:LINE:COL: message". An empty document has nothing to point at.
bool located(std::string_view message) {
  if (message == config_file + ": the file must hold a map with 'sessions'") return true;
  if (!message.starts_with(config_file + ":")) return false;
  message.remove_prefix(config_file.size() + 1);
  for (int number = 0; number < 2; ++number) {
    const auto digits = message.find_first_not_of("0123456789");
    if (digits == 0 || digits == std::string_view::npos) return false;
    message.remove_prefix(digits);
    if (number == 0 && !message.starts_with(":")) return false;
    if (number == 0) message.remove_prefix(1);
  }
  return message.starts_with(": ") && message.size() > 2;
}

void use(const config& c) {
  PICKLEWAY_FUZZ_CHECK(!c.sessions.empty());
  for (const session_config& s : c.sessions) {
    PICKLEWAY_FUZZ_CHECK(!s.name.empty() && s.max_instances.value >= 1);
    for (const endpoint_config* e : {&s.a, &s.b}) {
      PICKLEWAY_FUZZ_CHECK(e->endpoint && e->plugin);
      PICKLEWAY_FUZZ_CHECK(e->framing.pickle.max_message >= 2 &&
                           e->framing.pickle.max_message <= largest_max_message);
      (void)e->endpoint->describe();
    }
    PICKLEWAY_FUZZ_CHECK(!(s.a.endpoint->listens() && s.b.endpoint->listens()));
    for (const filter_config& f : s.filters) {
      PICKLEWAY_FUZZ_CHECK(f.factory && f.plugin);
      (void)f.factory->describe();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)plugins();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(fuzz::text({data, size}));
  try {
    const config_document doc(config_file, text);
    (void)doc.plugin_path();
    use(doc.build(plugins()));
  } catch (const config_error& e) {
    if (!located(e.what())) {
      std::cerr << "config error without FILE:LINE:COL: " << e.what() << "\n";
      std::abort();
    }
  } catch (const std::exception& e) {
    std::cerr << "not a config_error: " << e.what() << "\n";
    std::abort();
  }
  return 0;
}
