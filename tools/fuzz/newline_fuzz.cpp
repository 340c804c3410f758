// The newline filter's translation, both ways, over any message:
//  - a message it translates is exactly one whole pickle, else it reports
//    an error (never a translation that frames otherwise);
//  - given what the framer found (message_info), it translates exactly as
//    when it walks the message itself;
//  - for a message that is one whole pickle, LF -> CRLF -> LF gives it back
//    byte for byte (when the CRLF form is a pickle at all).
// One translator per direction serves every message of an input, as one
// filter instance serves a stream, so its reused buffers and framer are
// exercised too.
//
// Input: one byte of flags (bit 0: CRLF first; bit 1: several messages,
// each behind a 16-bit little-endian length), then the message(s).
#include <optional>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "line_ends.hpp"

namespace {

using namespace pickleway;
using newline::line_end;
using newline::translator;
using bytes = std::vector<std::uint8_t>;

// Whether `b` is exactly one whole pickle, as the filter's own check judges
// (any size, memo reads allowed: the source's framer applied those rules).
bool one_pickle(bytes_view b) {
  static constexpr std::uint8_t primer[] = {'N', '.'};  // so no message is read tentatively
  framer f({largest_max_message, stray_policy::error, memo_policy::allow});
  if (f.next(primer) != frame_status::message) fuzz::broken("primer", __FILE__, __LINE__);
  const fuzz::exact_copy copy(b);
  return f.next(copy.view()) == frame_status::message && f.message().size == b.size();
}

struct outcome {
  bool ok = false;
  bytes out;  // the message as it goes on
};

outcome translate(translator& t, bytes_view message, line_end to, const message_info* info = nullptr) {
  const fuzz::exact_copy copy(message);
  std::string error;
  switch (t.translate(copy.view(), info, to, error)) {
    case translator::result::unchanged:
      PICKLEWAY_FUZZ_CHECK(error.empty());
      return {true, bytes(message.begin(), message.end())};
    case translator::result::translated: {
      bytes out = t.take_output();
      PICKLEWAY_FUZZ_CHECK(one_pickle(out));
      // To LF only '\r's go; to CRLF only '\r's come.
      if (to == line_end::lf)
        PICKLEWAY_FUZZ_CHECK(out.size() < message.size());
      else
        PICKLEWAY_FUZZ_CHECK(out.size() > message.size());
      return {true, std::move(out)};
    }
    case translator::result::failed:
      PICKLEWAY_FUZZ_CHECK(!error.empty());
      return {false, {}};
  }
  fuzz::broken("translate() returned no result", __FILE__, __LINE__);
}

// LF -> CRLF -> LF restores a whole pickle.
void round_trip(translator& to_crlf, translator& to_lf, const bytes& lf) {
  const outcome crlf = translate(to_crlf, lf, line_end::crlf);
  if (!crlf.ok) return;  // e.g. "I1\r\n" becomes "I1\r\r\n", which no framer takes
  const outcome back = translate(to_lf, crlf.out, line_end::lf);
  PICKLEWAY_FUZZ_CHECK(back.ok);
  PICKLEWAY_FUZZ_CHECK(back.out == lf);
}

// The message as framed, when it is one whole pickle (the primer: see one_pickle).
std::optional<message_info> framed(bytes_view b) {
  static constexpr std::uint8_t primer[] = {'N', '.'};
  framer f({largest_max_message, stray_policy::error, memo_policy::allow});
  (void)f.next(primer);
  if (f.next(b) != frame_status::message || f.message().size != b.size()) return std::nullopt;
  return f.message();
}

void check_message(translator& to_crlf, translator& to_lf, bytes_view message, bool crlf_first) {
  const outcome first = translate(crlf_first ? to_crlf : to_lf, message,
                                  crlf_first ? line_end::crlf : line_end::lf);
  const outcome second = translate(crlf_first ? to_lf : to_crlf, message,
                                   crlf_first ? line_end::lf : line_end::crlf);
  if (const auto info = framed(message)) {
    for (const line_end to : {line_end::lf, line_end::crlf}) {
      const outcome walked = translate(to == line_end::lf ? to_lf : to_crlf, message, to);
      const outcome told = translate(to == line_end::lf ? to_lf : to_crlf, message, to, &*info);
      PICKLEWAY_FUZZ_CHECK(walked.ok == told.ok && walked.out == told.out);
    }
  }
  if (one_pickle(message)) {
    round_trip(to_crlf, to_lf, bytes(message.begin(), message.end()));
    // The LF form, once made, round-trips as well.
    const outcome& lf = crlf_first ? second : first;
    if (lf.ok) round_trip(to_crlf, to_lf, lf.out);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t flags = in.take();
  const bool crlf_first = (flags & 1) != 0;
  translator to_crlf, to_lf;
  if ((flags & 2) == 0) {
    check_message(to_crlf, to_lf, in.rest(), crlf_first);
    return 0;
  }
  while (!in.empty()) {
    const std::size_t n = in.take16();
    check_message(to_crlf, to_lf, in.take_bytes(n), crlf_first);
  }
  return 0;
}
