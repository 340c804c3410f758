// The log filter's inspection and its records (text, jsonl, with dis and
// hex) over any message: nothing crashes or throws; a record is one record,
// never longer than max_record; a jsonl record is one line holding one
// object; what inspection says is consistent.
//
// Input: one byte of flags (bit 0: jsonl; bit 1: dis; bit 2: hex; bits
// 3-4: max_record, of 4 choices), then the message.
#include <chrono>
#include <memory>
#include <string>

#include "fuzz_input.hpp"
#include "inspect.hpp"
#include "record.hpp"

namespace {

using namespace pickleway;
namespace lg = pickleway::log;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t flags = in.take();
  const fuzz::exact_copy copy(in.rest());
  const bytes_view message = copy.view();

  static lg::inspector inspector;  // one for all inputs, as a writer thread keeps one
  lg::message_facts facts;
  inspector.inspect(message, facts);
  if (facts.error.empty()) PICKLEWAY_FUZZ_CHECK(facts.protocol && !facts.type.empty());
  if (!facts.protocol) PICKLEWAY_FUZZ_CHECK(facts.type.empty() && facts.globals.empty() && !facts.error.empty());

  lg::format_options options;
  options.form = (flags & 1) ? lg::format::jsonl : lg::format::text;
  options.dis = (flags & 2) != 0;
  options.hex = (flags & 4) != 0;
  constexpr std::size_t max_records[] = {lg::smallest_max_record, 1000, 4096, std::size_t{1} << 20};
  options.max_record = max_records[(flags >> 3) & 3];
  lg::record_formatter formatter(options);
  const lg::origin from{"fuzz", 1};
  lg::record r;
  r.time = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  r.from = &from;
  r.sequence = 7;
  r.size = message.size();
  std::string out;
  formatter.append(out, r, message, facts);
  PICKLEWAY_FUZZ_CHECK(!out.empty() && out.back() == '\n');
  PICKLEWAY_FUZZ_CHECK(out.size() <= options.max_record);
  if (options.form == lg::format::jsonl) {
    PICKLEWAY_FUZZ_CHECK(out.find('\n') == out.size() - 1);  // one line
    PICKLEWAY_FUZZ_CHECK(out.front() == '{' && out.ends_with("}\n"));
  }
  return 0;
}
