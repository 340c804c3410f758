// The `tap` filter: copies every message going one way to a file, as a
// pickle stream that `pickleway dis` reads back. It changes nothing.
//
//   filters:
//     - tap: {path: copies.pickles, direction: a>b}
#include <cstdio>
#include <memory>
#include <string>

#include <pickleway/plugin.hpp>

namespace {

using namespace pickleway;

constexpr std::string_view directions[] = {"a>b", "b>a"};

constexpr option_spec tap_options[] = {
    {"path", option_type::string, true, "the file to append the copies to"},
    {.name = "direction",
     .type = option_type::choice,
     .help = "the direction copied: a>b or b>a",
     .choices = directions,
     .default_value = "a>b"},
};

// One per instance. The file is opened per instance, so instances of a
// listening session each append whole messages of their own.
struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

class tap_filter final : public filter {
 public:
  tap_filter(file_ptr file, direction watched) : file_(std::move(file)), watched_(watched) {}

  filter_result on_message(direction d, message& m, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return filter_result::fail; }, [&]() -> filter_result {
      if (d != watched_) return filter_result::pass;
      const bytes_view bytes = m.bytes();
      if (std::fwrite(bytes.data(), 1, bytes.size(), file_.get()) != bytes.size() || std::fflush(file_.get()) != 0) {
        error = "tap: cannot write the copy";
        return filter_result::fail;
      }
      return filter_result::pass;
    });
  }

 private:
  file_ptr file_;
  direction watched_;
};

class tap_factory final : public filter_factory {
 public:
  tap_factory(std::string path, direction watched) : path_(std::move(path)), watched_(watched) {}

  std::unique_ptr<filter> make(const open_context&, std::string& error) noexcept override {
    return guarded(
        [&](std::string_view why) {
          error = why;
          return std::unique_ptr<filter>();
        },
        [&]() -> std::unique_ptr<filter> {
          file_ptr file(std::fopen(path_.c_str(), "ab"));
          if (!file) {
            error = "tap: cannot open " + path_;
            return nullptr;
          }
          return std::make_unique<tap_filter>(std::move(file), watched_);
        });
  }

  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&]() -> std::string {
      return "tap " + path_ + " (" + std::string(to_string(watched_)) + ")";
    });
  }

 private:
  std::string path_;
  direction watched_;
};

std::unique_ptr<filter_factory> build(const option_values& options, option_error& error) {
  const std::string path = options.get_string("path").value_or("");
  if (path.empty()) {
    error = {"path", "tap: path must not be empty"};
    return nullptr;
  }
  const bool backwards = options.get_string("direction") == "b>a";
  return std::make_unique<tap_factory>(path, backwards ? direction::b_to_a : direction::a_to_b);
}

}  // namespace

PICKLEWAY_FILTER_PLUGIN("tap", "1.0.0", "copies the messages of one direction to a file",
                        tap_options, guarded_factory<build>)
