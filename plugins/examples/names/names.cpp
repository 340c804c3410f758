// The `names` filter: says on pickleway's log which globals each message
// names, as CPython's Unpickler would import them. It changes nothing.
//
//   filters:
//     - names
//
// An example of extending the SDK's model of the unpickler
// (pickle_machine.hpp) for the opcodes one cares about.
#include <string>
#include <vector>

#include <pickleway/pickle_machine.hpp>
#include <pickleway/plugin.hpp>

namespace {

using namespace pickleway;

// A Value per stack item: the index of a str known for certain in `strs_`,
// or -1 for anything else. Every opcode not handled here gets the table's
// stack effect, and a -1 pushed.
class globals_of final : public pickle_machine<globals_of, int> {
  friend class pickle_machine<globals_of, int>;

 public:
  // The dotted names `message` imports, "?" for one computed at load time.
  std::vector<std::string> names(bytes_view message) {
    names_.clear();
    strs_.clear();
    if (!run(message)) names_.push_back("(not a pickle: " + error().describe() + ")");
    return names_;
  }

 private:
  bool apply(const pickle_op& o, std::span<int> items, std::span<int>, int& result) {
    result = -1;
    if (const auto s = string_constant(o)) {
      result = static_cast<int>(strs_.size());
      strs_.push_back(s->text);
    } else if (o.code() == op::GLOBAL || o.code() == op::INST) {
      names_.push_back(std::string(without_cr(o.text)) + "." + std::string(without_cr(o.second)));
    } else if (o.code() == op::STACK_GLOBAL) {
      const bool known = items[0] >= 0 && items[1] >= 0;
      names_.push_back(known ? std::string(strs_[static_cast<std::size_t>(items[0])]) + "." +
                                   std::string(strs_[static_cast<std::size_t>(items[1])])
                             : "?");
    }
    return true;
  }

  std::vector<std::string> names_;
  std::vector<std::string_view> strs_;
};

class names_filter final : public filter {
 public:
  explicit names_filter(log_sink* sink) : sink_(sink) {}

  // Only observing: a message too large to follow (or anything else that
  // throws) goes on unnamed.
  filter_result on_message(direction d, message& m, std::string&) noexcept override {
    return guarded([](std::string_view) { return filter_result::pass; }, [&] {
      std::string line = "names: " + std::string(to_string(d)) + " message " + std::to_string(m.sequence()) + ":";
      for (const std::string& name : machine_.names(m.bytes())) line += " " + name;
      if (sink_) sink_->line(line);
      return filter_result::pass;
    });
  }

 private:
  log_sink* sink_;
  globals_of machine_;
};

class names_factory final : public filter_factory {
 public:
  std::unique_ptr<filter> make(const open_context& context, std::string& error) noexcept override {
    return guarded(
        [&](std::string_view why) {
          error = why;
          return std::unique_ptr<filter>();
        },
        [&] { return std::unique_ptr<filter>(std::make_unique<names_filter>(context.log)); });
  }
  std::string describe() const noexcept override { return "names"; }
};

std::unique_ptr<filter_factory> build(const option_values&, option_error&) {
  return std::make_unique<names_factory>();
}

}  // namespace

PICKLEWAY_FILTER_PLUGIN("names", "1.0.0", "logs the globals each message names", {}, guarded_factory<build>)
