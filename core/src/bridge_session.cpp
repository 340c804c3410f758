#include "bridge_session.hpp"

#include "bridge_address.hpp"

namespace pickleway {
namespace {

// Whether `text` holds a control character, a line break YAML knows beside
// \n (NEL, U+2028, U+2029) or a byte order mark: yaml-cpp's emitter would
// write some of them raw in a plain scalar, where they do not read back.
bool needs_escapes(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) return true;
  }
  for (const std::string_view odd : {"\xC2\x85", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xEF\xBB\xBF"})
    if (text.find(odd) != std::string_view::npos) return true;
  return false;
}

bool all_scalars(const YAML::Node& sequence) {
  for (const auto& item : sequence)
    if (!item.IsScalar()) return false;
  return true;
}

void emit(YAML::Emitter& out, const YAML::Node& node) {
  if (node.IsMap()) {
    out << YAML::BeginMap;
    for (const auto& item : node) {
      out << YAML::Key;
      emit(out, item.first);
      out << YAML::Value;
      emit(out, item.second);
    }
    out << YAML::EndMap;
  } else if (node.IsSequence()) {
    if (all_scalars(node)) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const auto& item : node) emit(out, item);
    out << YAML::EndSeq;
  } else if (node.IsNull()) {
    out << YAML::Null;
  } else {
    if (needs_escapes(node.Scalar())) out << YAML::DoubleQuoted;
    out << node.Scalar();
  }
}

}  // namespace

bridge_document make_bridge_document(const bridge_arguments& arguments) {
  bridge_document doc;
  YAML::Node session(YAML::NodeType::Map);
  session["name"] = bridge_session_name;
  session["a"] = parse_endpoint_address(arguments.a.text, arguments.a.number, doc.origins);
  session["b"] = parse_endpoint_address(arguments.b.text, arguments.b.number, doc.origins);
  if (!arguments.filters.empty()) {
    YAML::Node filters(YAML::NodeType::Sequence);
    for (const auto& f : arguments.filters)
      filters.push_back(parse_filter_address(f.text, f.number, doc.origins));
    session["filters"] = filters;
  }
  doc.root = YAML::Node(YAML::NodeType::Map);
  doc.root["sessions"].push_back(session);
  return doc;
}

std::string to_yaml(const YAML::Node& root) {
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, root);
  return std::string(out.c_str()) + "\n";
}

}  // namespace pickleway
