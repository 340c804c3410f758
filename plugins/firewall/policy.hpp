// What the firewall lets through: the allowlist, the safe defaults, and
// whether copyreg extension codes and persistent ids may be used.
//
// Built once from the filter's options (the factory), then only read, so
// every instance's judge shares it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pickleway::firewall {

// What a resolved global may do. Most allowed names are `allowed` outright;
// a few safe defaults only under conditions on their arguments, which the
// judge checks where they are called.
enum class grant : std::uint8_t {
  denied,
  allowed,
  reconstructor,  // copyreg._reconstructor: only on an allowed class and base
  new_object,     // copyreg.__newobj__, __newobj_ex__: only on an allowed class
  latin1_encode,  // _codecs.encode: only as (text, 'latin1'), the bytes of protocols 0-2
  get_attribute,  // builtins.getattr: only as getattr(allowed global, 'name'), judged as
                  // the dotted name, which is how protocols 0-3 reach a nested class
  partial,        // functools.partial: only of an allowed class's __new__, how protocols
                  // 2-3 write an object whose __getnewargs_ex__ has keyword arguments
};

enum class ext_mode : std::uint8_t { deny, allow, listed };

class policy {
 public:
  // Adds one `allow` entry: "module.name" (that name exactly, dotted names
  // included: "module.Outer.Inner") or "module.*" (names directly in
  // `module`). The reason when the entry is malformed.
  std::optional<std::string> add_allowed(std::string_view entry);

  void set_safe_defaults(bool on) { safe_defaults_ = on; }
  void set_ext(ext_mode mode, std::vector<std::int64_t> codes = {});
  void set_persid(bool allowed) { persid_ = allowed; }
  // The consumer reuses one Unpickler for the stream, so its memo carries
  // over from message to message (`unpickler: reused`).
  void set_reused_unpickler(bool on) { reused_unpickler_ = on; }

  // The verdict on `module`.`name` as CPython 3 resolves it (after the
  // Python 2 mapping). The allowlist wins over the safe defaults' conditions.
  grant judge_global(std::string_view module, std::string_view name) const;
  bool allows_ext(std::int64_t code) const;
  bool allows_persid() const { return persid_; }
  bool reused_unpickler() const { return reused_unpickler_; }

  bool safe_defaults() const { return safe_defaults_; }
  ext_mode ext() const { return ext_; }
  const std::vector<std::int64_t>& ext_codes() const { return ext_codes_; }
  std::size_t allowed_count() const { return names_.size() + modules_.size(); }

 private:
  std::vector<std::string> names_;    // "module.name", exact
  std::vector<std::string> modules_;  // "module" of "module.*"
  bool safe_defaults_ = true;
  ext_mode ext_ = ext_mode::deny;
  std::vector<std::int64_t> ext_codes_;
  bool persid_ = false;
  bool reused_unpickler_ = false;
};

// The names `defaults: safe` allows (some under conditions), as
// "module.name", for the docs and the tests.
std::vector<std::string> safe_default_names();

}  // namespace pickleway::firewall
