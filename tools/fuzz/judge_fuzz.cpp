// The firewall's judge over any sequence of messages, under the policy the
// input picks. It never crashes; a refusal names a subject and points
// inside the message; and for a consumer with a fresh Unpickler per message
// its verdict on a message does not depend on the messages before it (a
// judge that has seen them agrees with one that has not).
//
// Input: one byte of flags (bit 0: defaults none; bit 1: unpickler reused;
// bit 2: ext allow; bit 3: persid allow; bit 4: allow collections.*), then
// messages, each behind a 16-bit little-endian length.
#include <optional>

#include "fuzz_input.hpp"
#include "judge.hpp"
#include "policy.hpp"

namespace {

using namespace pickleway;
using firewall::judge;
using firewall::policy;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t flags = in.take();
  policy p;
  p.set_safe_defaults((flags & 1) == 0);
  p.set_reused_unpickler((flags & 2) != 0);
  p.set_ext((flags & 4) ? firewall::ext_mode::allow : firewall::ext_mode::deny);
  p.set_persid((flags & 8) != 0);
  if (flags & 16) (void)p.add_allowed("collections.*");
  judge seen(p);
  while (!in.empty()) {
    const fuzz::exact_copy copy(in.take_bytes(in.take16()));
    const bytes_view message = copy.view();
    const std::optional<firewall::refusal> verdict = seen.check(message);
    if (verdict) {
      PICKLEWAY_FUZZ_CHECK(!verdict->subject.empty() && !verdict->cause.empty());
      PICKLEWAY_FUZZ_CHECK(verdict->offset <= message.size());
    }
    if (!p.reused_unpickler()) {
      judge fresh(p);
      const std::optional<firewall::refusal> again = fresh.check(message);
      PICKLEWAY_FUZZ_CHECK(again.has_value() == verdict.has_value());
      if (verdict) PICKLEWAY_FUZZ_CHECK(again->offset == verdict->offset && again->subject == verdict->subject);
    }
  }
  return 0;
}
