// The addresses of `pickleway bridge` over any bytes: the input is the
// arguments after `bridge`, separated by NUL bytes (A, B, then one filter
// each; "stdio" stands in for a missing endpoint). Either the document is
// made, or the parser refuses with a config_error at a place that exists
// ("argument N, character C: ..."). A document made must print as YAML
// that reads back as the same tree, and the config reader, with every
// plugin of this build, must locate each of its errors the same way.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "bridge_address.hpp"
#include "bridge_session.hpp"
#include "config.hpp"
#include "fuzz_input.hpp"
#include "plugin_registry.hpp"

namespace {

using namespace pickleway;

// Beyond these the input is too slow to be worth running.
constexpr std::size_t most_arguments = 12;

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

std::size_t characters(const std::string& text) {
  std::size_t n = 0;
  for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// A message that names a place among `arguments`, and says something.
void check_located(const std::string& message, const std::vector<std::string>& arguments) {
  const auto place = read_command_line_place(message);
  if (!place || place->argument < 1 || place->argument > arguments.size() || place->character < 1 ||
      place->character > characters(arguments[place->argument - 1]) + 1 ||
      message.find(": ") + 2 >= message.size()) {
    std::cerr << "an error without a place in the arguments: " << message << "\n";
    std::abort();
  }
}

bool same_tree(const YAML::Node& a, const YAML::Node& b) {
  if (a.Type() != b.Type()) return false;
  if (a.IsScalar()) return a.Scalar() == b.Scalar();
  if (!a.IsMap() && !a.IsSequence()) return true;
  if (a.size() != b.size()) return false;
  auto i = a.begin(), j = b.begin();
  for (; i != a.end(); ++i, ++j) {
    if (a.IsMap() ? !same_tree(i->first, j->first) || !same_tree(i->second, j->second)
                  : !same_tree(*i, *j))
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)plugins();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::text({data, size});
  std::vector<std::string> arguments;
  for (std::size_t start = 0;;) {
    const std::size_t nul = text.find('\0', start);
    arguments.emplace_back(text.substr(start, nul - start));
    if (nul == std::string_view::npos) break;
    start = nul + 1;
  }
  if (arguments.size() > most_arguments) return -1;  // not added to the corpus
  while (arguments.size() < 2) arguments.emplace_back("stdio");
  // Arguments as they stand after `bridge`: a filter's follows its --filter.
  bridge_arguments given{{arguments[0], 1}, {arguments[1], 2}, {}};
  std::vector<std::string> words = {arguments[0], arguments[1]};
  for (std::size_t i = 2; i < arguments.size(); ++i) {
    words.emplace_back("--filter");
    words.push_back(arguments[i]);
    given.filters.push_back({arguments[i], words.size()});
  }
  try {
    bridge_document doc = make_bridge_document(given);
    const YAML::Node printed = YAML::Load(to_yaml(doc.root));
    if (!same_tree(doc.root, printed)) {
      std::cerr << "--print-yaml reads back as another tree:\n" << to_yaml(doc.root) << "\n";
      std::abort();
    }
    const config_document document("the command line", doc.root, std::move(doc.origins));
    (void)document.build(plugins());
  } catch (const config_error& e) {
    check_located(e.what(), words);
  } catch (const std::exception& e) {
    std::cerr << "not a config_error: " << e.what() << "\n";
    std::abort();
  }
  return 0;
}
