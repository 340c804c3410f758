// The `stdio` transport: pickleway's own standard input and output, for a
// pickleway that is the child of a Python parent.
#include <unistd.h>

#include <atomic>

#include <pickleway/fd_stream.hpp>
#include <pickleway/plugin.hpp>

namespace {

using namespace pickleway;

class stdio_opener final : public opener {
 public:
  open_step step(bool) noexcept override {
    return guarded([](std::string_view why) { return open_step::fail(std::string(why)); }, [&]() -> open_step {
      // There is one standard input and output; instances on two loops may
      // reach for it at once.
      static std::atomic<bool> taken = false;
      if (taken.exchange(true)) return open_step::fail("stdio: already in use by another instance");
      // Duplicates, so that closing the stream's writing side (the EOF that
      // tells the parent the stream has ended) leaves fds 0 and 1 valid.
      unique_fd in(::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3));
      unique_fd out(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
      if (!in || !out) return open_step::fail("stdio: " + last_error().message());
      for (const int fd : {in.get(), out.get()})
        if (const auto e = set_nonblocking(fd)) return open_step::fail("stdio: " + e.message());
      // The duplicate is then all that holds standard output open, so the
      // parent reads EOF when the stream's writing side closes.
      unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
      if (!null || ::dup2(null.get(), STDOUT_FILENO) < 0)
        return open_step::fail("stdio: " + last_error().message());
      return open_step::ready(fd_stream::pipes(std::move(in), std::move(out), "stdio"));
    });
  }
};

class stdio_transport final : public transport {
 public:
  std::unique_ptr<opener> open(const open_context&, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<opener>(); },
                   [] { return std::unique_ptr<opener>(std::make_unique<stdio_opener>()); });
  }
  std::string describe() const noexcept override { return "stdio"; }
};

std::unique_ptr<transport> build(const option_values&, option_error&) {
  return std::make_unique<stdio_transport>();
}

}  // namespace

PICKLEWAY_TRANSPORT_PLUGIN("stdio", "1.0.0", "pickleway's own standard input and output",
                           {}, guarded_factory<build>)
