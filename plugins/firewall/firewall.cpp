// The `firewall` filter: refuses, whole and before any byte of it goes on,
// a message that would import a global outside the allowlist, or use a
// copyreg extension code or a persistent id that is denied. Both
// directions are judged alike. See docs/firewall.md.
//
// A refusal reads "firewall: refused SUBJECT at offset N: CAUSE", SUBJECT
// being the global ("os.system"), "extension code 7", "persistent id" or
// what could not be followed, and N the stream offset of the opcode that
// does it. With `on_deny: error` it ends the instance; with `on_deny: drop`
// it is logged, counted, and the message dropped.
#include <charconv>
#include <new>
#include <optional>

#include <pickleway/plugin.hpp>

#include "judge.hpp"
#include "policy.hpp"

namespace {

using namespace pickleway;
using firewall::ext_mode;
using firewall::judge;
using firewall::policy;

constexpr std::string_view defaults_choices[] = {"safe", "none"};
constexpr std::string_view switch_choices[] = {"deny", "allow"};
constexpr std::string_view on_deny_choices[] = {"error", "drop"};
constexpr std::string_view unpickler_choices[] = {"fresh", "reused"};

constexpr option_spec firewall_options[] = {
    {.name = "allow",
     .type = option_type::string_list,
     .help = "globals let through besides the defaults: module.name (exactly that name, "
             "module.Outer.Inner for a nested class) or module.* (the names directly in module)",
     .default_value = "[]"},
    {.name = "defaults",
     .type = option_type::choice,
     .help = "safe: also let through the documented names that cannot run code; none: only "
             "`allow`",
     .choices = defaults_choices,
     .default_value = "safe"},
    {.name = "ext",
     .type = option_type::choice_or_list,
     .help = "copyreg extension codes: deny, allow, or the list of allowed codes [1, 2, 300]",
     .choices = switch_choices,
     .default_value = "deny"},
    {.name = "persid",
     .type = option_type::choice,
     .help = "persistent ids: deny or allow",
     .choices = switch_choices,
     .default_value = "deny"},
    {.name = "on_deny",
     .type = option_type::choice,
     .help = "error: a refused message ends the instance; drop: it is logged, counted and "
             "dropped",
     .choices = on_deny_choices,
     .default_value = "error"},
    {.name = "unpickler",
     .type = option_type::choice,
     .help = "fresh: the consumer loads each message with a fresh Unpickler (pickle.load); "
             "reused: with one Unpickler for the whole stream, whose memo carries over",
     .choices = unpickler_choices,
     .default_value = "fresh"},
};

class firewall_filter final : public filter {
 public:
  firewall_filter(const policy& p, bool drop, const open_context& context)
      : judges_{judge(p), judge(p)}, drop_(drop), sink_(context.log) {}

  filter_result on_message(direction d, message& m, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return filter_result::fail; }, [&]() -> filter_result {
      std::optional<firewall::refusal> refused;
      try {
        refused = judges_[index(d)].check(m.bytes());
      } catch (const std::bad_alloc&) {
        refused = firewall::refusal{0, "message", make_error_code(errc::out_of_memory).message()};
      }
      if (!refused) return filter_result::pass;
      // A message an earlier filter rewrote no longer maps onto the stream.
      std::string text = "firewall: " + firewall::describe(*refused, m.replaced() ? 0 : m.offset());
      if (m.replaced()) text += " (offset in the message as an earlier filter rewrote it)";
      if (!drop_) {
        error = std::move(text);
        return filter_result::fail;
      }
      ++dropped_[index(d)];
      if (sink_)
        sink_->line(text + "; message " + std::to_string(m.sequence()) + " " +
                    std::string(to_string(d)) + " dropped");
      return filter_result::drop;
    });
  }

  // Only a count for the log: one there is no memory to say is not said.
  filter_result on_end(direction d, std::string&) noexcept override {
    return guarded([](std::string_view) { return filter_result::pass; }, [&]() -> filter_result {
      const std::uint64_t n = dropped_[index(d)];
      if (drop_ && sink_)
        sink_->line("firewall: " + std::string(to_string(d)) + " ended, " + std::to_string(n) +
                    (n == 1 ? " message" : " messages") + " refused and dropped");
      return filter_result::pass;
    });
  }

 private:
  static std::size_t index(direction d) { return d == direction::a_to_b ? 0 : 1; }

  judge judges_[2];  // one per direction: a reused Unpickler's memo is per stream
  bool drop_;
  log_sink* sink_;
  std::uint64_t dropped_[2] = {0, 0};
};

class firewall_factory final : public filter_factory {
 public:
  firewall_factory(policy p, bool drop) : policy_(std::move(p)), drop_(drop) {}

  std::unique_ptr<filter> make(const open_context& context, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<filter>(); }, [&] {
      return std::unique_ptr<filter>(std::make_unique<firewall_filter>(policy_, drop_, context));
    });
  }

  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&]() -> std::string {
      std::string text = "firewall allow=" + std::to_string(policy_.allowed_count()) +
                         " defaults=" + (policy_.safe_defaults() ? "safe" : "none") + " ext=";
      switch (policy_.ext()) {
        case ext_mode::deny: text += "deny"; break;
        case ext_mode::allow: text += "allow"; break;
        case ext_mode::listed:
          for (std::size_t i = 0; i < policy_.ext_codes().size(); ++i) {
            if (i) text += ',';
            text += std::to_string(policy_.ext_codes()[i]);
          }
          break;
      }
      text += std::string(" persid=") + (policy_.allows_persid() ? "allow" : "deny") +
              " on_deny=" + (drop_ ? "drop" : "error") +
              " unpickler=" + (policy_.reused_unpickler() ? "reused" : "fresh");
      return text;
    });
  }

 private:
  policy policy_;  // shared, read-only, by every instance's judge
  bool drop_;
};

// `ext`: deny or allow (the core has checked the word), or a list of codes,
// each 1 to 2**31 - 1 (the codes copyreg.add_extension accepts).
bool read_ext(const option_values& values, policy& p, option_error& error) {
  const auto codes = values.get_list("ext");
  if (!codes) {
    p.set_ext(*values.get_string("ext") == "allow" ? ext_mode::allow : ext_mode::deny);
    return true;
  }
  std::vector<std::int64_t> allowed;
  for (const std::string& text : *codes) {
    std::int64_t code = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
    if (ec != std::errc() || end != text.data() + text.size() || code < 1 || code > 0x7FFF'FFFF) {
      error = {"ext", "firewall: ext: `" + text +
                          "` is not an extension code (a whole number from 1 to 2147483647)"};
      return false;
    }
    allowed.push_back(code);
  }
  if (allowed.empty()) {
    error = {"ext", "firewall: ext: an empty list; write `ext: deny` to allow no code"};
    return false;
  }
  p.set_ext(ext_mode::listed, std::move(allowed));
  return true;
}

std::unique_ptr<filter_factory> build(const option_values& values, option_error& error) {
  policy p;
  const option_value::list allow = *values.get_list("allow");
  for (const std::string& entry : allow) {
    if (const auto problem = p.add_allowed(entry)) {
      error = {"allow", "firewall: allow: " + *problem};
      return nullptr;
    }
  }
  p.set_safe_defaults(*values.get_string("defaults") == "safe");
  p.set_persid(*values.get_string("persid") == "allow");
  p.set_reused_unpickler(*values.get_string("unpickler") == "reused");
  if (!read_ext(values, p, error)) return nullptr;
  const bool drop = *values.get_string("on_deny") == "drop";
  return std::make_unique<firewall_factory>(std::move(p), drop);
}

}  // namespace

PICKLEWAY_FILTER_PLUGIN("firewall", "1.0.0",
                        "refuses a message that would import a global outside the allowlist, or "
                        "use a denied extension code or persistent id; judged by simulating the "
                        "unpickler",
                        firewall_options, guarded_factory<build>)
