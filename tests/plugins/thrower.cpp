// A filter whose bodies throw where it is told to, each inside guarded() as
// the SDK asks: the exception must become the entry point's error, and end
// only the instance it runs in, with the exception's text.
#include <stdexcept>

#include <pickleway/plugin.hpp>

namespace {

using namespace pickleway;

constexpr std::string_view places[] = {"make", "message"};
constexpr option_spec thrower_options[] = {
    {"when", option_type::choice, true, "make or message", places},
};

class throwing_filter final : public filter {
 public:
  filter_result on_message(direction, message& m, std::string& error) noexcept override {
    return guarded(
        [&](std::string_view why) {
          error = why;
          return filter_result::fail;
        },
        [&] {
          if (m.sequence() == 3) throw std::runtime_error("thrown on message 3");
          return filter_result::pass;
        });
  }
};

class thrower_factory final : public filter_factory {
 public:
  explicit thrower_factory(bool on_make) : on_make_(on_make) {}
  std::unique_ptr<filter> make(const open_context&, std::string& error) noexcept override {
    return guarded(
        [&](std::string_view why) {
          error = why;
          return std::unique_ptr<filter>();
        },
        [&]() -> std::unique_ptr<filter> {
          if (on_make_) throw std::runtime_error("thrown while making the filter");
          return std::make_unique<throwing_filter>();
        });
  }
  std::string describe() const noexcept override { return "thrower"; }

 private:
  bool on_make_;
};

std::unique_ptr<filter_factory> build(const option_values& options, option_error&) {
  return std::make_unique<thrower_factory>(options.get_string("when") == "make");
}

}  // namespace

PICKLEWAY_FILTER_PLUGIN("thrower", "1.0.0", "throws where it is told to, inside guarded()",
                        thrower_options, guarded_factory<build>)
