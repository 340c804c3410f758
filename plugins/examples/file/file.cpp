// The `file` transport: reads a recorded pickle stream from a file and
// writes what comes back to another, so a session can replay a recording
// to a consumer and keep its answers.
//
//   a: {transport: file, read: recorded.pickles, write: answers.pickles}
#include <fcntl.h>

#include <memory>
#include <string>

#include <pickleway/fd_stream.hpp>
#include <pickleway/guarded.hpp>
#include <pickleway/plugin.hpp>

namespace {

using namespace pickleway;

constexpr option_spec file_options[] = {
    {"read", option_type::string, false, "the file to read a pickle stream from"},
    {"write", option_type::string, false, "the file to write the other direction to"},
};

// Regular files never block, so opening is one step and the stream is a
// plain fd_stream; a missing side makes a one-way endpoint.
class file_opener final : public opener {
 public:
  file_opener(std::string read, std::string write) : read_(std::move(read)), write_(std::move(write)) {}

  open_step step(bool) noexcept override {
    return guarded([](std::string_view why) { return open_step::fail(std::string(why)); }, [&]() -> open_step {
      unique_fd in, out;
      if (!read_.empty()) {
        in.reset(::open(read_.c_str(), O_RDONLY | O_CLOEXEC));
        if (!in) return open_step::fail("file: cannot read " + read_ + ": " + last_error().message());
      }
      if (!write_.empty()) {
        out.reset(::open(write_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!out) return open_step::fail("file: cannot write " + write_ + ": " + last_error().message());
      }
      return open_step::ready(fd_stream::pipes(std::move(in), std::move(out), "file " + read_));
    });
  }

 private:
  std::string read_, write_;
};

class file_transport final : public transport {
 public:
  file_transport(std::string read, std::string write) : read_(std::move(read)), write_(std::move(write)) {}

  std::unique_ptr<opener> open(const open_context&, std::string& error) noexcept override {
    return pickleway::guarded(
        [&](std::string_view why) {
          error = why;
          return std::unique_ptr<opener>();
        },
        [&] { return std::unique_ptr<opener>(std::make_unique<file_opener>(read_, write_)); });
  }
  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); },
                   [&] { return "file read=" + read_ + " write=" + write_; });
  }

 private:
  std::string read_, write_;
};

std::unique_ptr<transport> build(const option_values& options, option_error& error) {
  const std::string read = options.get_string("read").value_or("");
  const std::string write = options.get_string("write").value_or("");
  if (read.empty() && write.empty()) {
    error = {"", "file: give `read`, `write` or both"};
    return nullptr;
  }
  return std::make_unique<file_transport>(read, write);
}

}  // namespace

PICKLEWAY_TRANSPORT_PLUGIN("file", "1.0.0", "replays a recorded pickle stream from a file",
                           file_options, guarded_factory<build>)
