#include "help.hpp"

#include <string>

namespace pickleway {
namespace {

std::string choices_text(std::span<const std::string_view> choices) {
  std::string out;
  for (const auto c : choices) {
    if (!out.empty()) out += '|';
    out += c;
  }
  return out;
}

std::string type_word(const option_spec& spec) {
  switch (spec.type) {
    case option_type::string: return "string";
    case option_type::integer: return "integer";
    case option_type::size: return "size";
    case option_type::boolean: return "boolean";
    case option_type::mode: return "octal mode";
    case option_type::address: return "HOST:PORT";
    case option_type::choice: return choices_text(spec.choices);
    case option_type::string_list: return "list";
    case option_type::string_map: return "map of strings";
    case option_type::section: return "map";
    case option_type::choice_or_list: return choices_text(spec.choices) + " or a list";
  }
  return "value";
}

void print(std::ostream& out, std::span<const option_spec> schema, const std::string& prefix,
           const std::string& indent) {
  for (const auto& spec : schema) {
    out << indent << prefix << spec.name << ": " << type_word(spec);
    if (spec.required) out << ", required";
    if (!spec.default_value.empty()) out << ", default " << spec.default_value;
    out << "\n";
    if (!spec.help.empty()) out << indent << "    " << spec.help << "\n";
    if (spec.type == option_type::section)
      print(out, spec.section, prefix + std::string(spec.name) + ".", indent + "  ");
  }
}

}  // namespace

void print_options(std::ostream& out, std::span<const option_spec> schema) {
  if (schema.empty()) out << "  (no options)\n";
  print(out, schema, "", "  ");
}

}  // namespace pickleway
