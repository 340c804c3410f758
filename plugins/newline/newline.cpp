// The `newline` filter: translates the line terminators of pickles' text
// arguments between endpoint a's line ends and endpoint b's.
//
// `a: crlf, b: lf`: a writes and reads CRLF (a Windows text-mode pipe, a
// Python 2 pickle file opened "w"); a->b turns its CRLF into LF, b->a turns
// LF into CRLF. On a crlf side a bare LF is accepted as well. Binary
// arguments are never touched, whatever the protocol; see line_ends.hpp.
#include <new>

#include <pickleway/plugin.hpp>

#include "line_ends.hpp"

namespace {

using namespace pickleway;
using newline::line_end;
using newline::translator;

constexpr std::string_view line_end_choices[] = {"lf", "crlf"};

constexpr option_spec newline_options[] = {
    {.name = "a",
     .type = option_type::choice,
     .help = "the line terminators endpoint a writes and expects: lf or crlf",
     .choices = line_end_choices,
     .default_value = "lf"},
    {.name = "b",
     .type = option_type::choice,
     .help = "the line terminators endpoint b writes and expects: lf or crlf",
     .choices = line_end_choices,
     .default_value = "lf"},
};

class newline_filter final : public filter {
 public:
  newline_filter(line_end a, line_end b) : a_(a), b_(b) {}

  filter_result on_message(direction d, message& m, std::string& error) noexcept override {
    const line_end to = d == direction::a_to_b ? b_ : a_;
    const translator::result result = guarded(
        [&](std::string_view) {
          error = "newline: " + make_error_code(errc::out_of_memory).message();
          return translator::result::failed;
        },
        [&] { return translator_.translate(m.bytes(), m.info(), to, error); });
    switch (result) {
      case translator::result::unchanged:
        return filter_result::pass;
      case translator::result::translated:
        // message::replace takes ownership: the buffer leaves with the message.
        m.replace(translator_.take_output());
        return filter_result::pass;
      case translator::result::failed:
        break;
    }
    return filter_result::fail;
  }

 private:
  line_end a_;
  line_end b_;
  translator translator_;
};

// Both sides alike: nothing to translate, nothing to walk.
class pass_through final : public filter {
 public:
  filter_result on_message(direction, message&, std::string&) noexcept override {
    return filter_result::pass;
  }
};

class newline_factory final : public filter_factory {
 public:
  newline_factory(line_end a, line_end b) : a_(a), b_(b) {}

  std::unique_ptr<filter> make(const open_context&, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<filter>(); }, [&]() -> std::unique_ptr<filter> {
      if (a_ == b_) return std::make_unique<pass_through>();
      return std::make_unique<newline_filter>(a_, b_);
    });
  }

  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&]() -> std::string {
      std::string text =
          "newline a=" + std::string(to_string(a_)) + " b=" + std::string(to_string(b_));
      if (a_ == b_) text += " (pass-through)";
      return text;
    });
  }

 private:
  line_end a_;
  line_end b_;
};

// The core has checked the choices; a value from elsewhere is refused alike.
bool read_line_end(const option_values& values, std::string_view side, line_end& out,
                   option_error& error) {
  const std::string value = *values.get_string(side);
  if (value == "lf" || value == "crlf") {
    out = value == "lf" ? line_end::lf : line_end::crlf;
    return true;
  }
  error = {std::string(side),
           "newline: `" + std::string(side) + "` is lf or crlf, not `" + value + "`"};
  return false;
}

std::unique_ptr<filter_factory> build(const option_values& values, option_error& error) {
  line_end a{};
  line_end b{};
  if (!read_line_end(values, "a", a, error) || !read_line_end(values, "b", b, error))
    return nullptr;
  return std::make_unique<newline_factory>(a, b);
}

}  // namespace

PICKLEWAY_FILTER_PLUGIN("newline", "1.0.0",
                        "pickle-aware newline translation: rewrites only the line terminators of "
                        "text opcodes, never bytes inside binary payloads",
                        newline_options, guarded_factory<build>)
