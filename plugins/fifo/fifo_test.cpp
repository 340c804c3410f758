// The fifo transport against python3 peers on the other side of each FIFO.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "pickleway/fd_stream.hpp"
#include "support/corpus.hpp"
#include "support/plugin_driver.hpp"

extern char** environ;

namespace pickleway::test {
namespace {

namespace fs = std::filesystem;

// A python3 process running `code` with `args` in sys.argv[1:], killed and
// reaped if the test leaves it running.
class python_peer {
 public:
  python_peer(const std::string& code, std::vector<std::string> args) {
    args.insert(args.begin(), {PICKLEWAY_PYTHON, "-c", code});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    REQUIRE(::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    REQUIRE(pidfd_);
  }
  ~python_peer() {
    if (reaped_) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  python_peer(const python_peer&) = delete;
  python_peer& operator=(const python_peer&) = delete;

  // Its exit status; -1 when it has not exited by the deadline.
  int wait(std::chrono::milliseconds deadline = 10s) {
    if (!wait_ready(pidfd_.get(), false, deadline)) return -1;
    int status = 0;
    REQUIRE(::waitpid(pid_, &status, 0) == pid_);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  unique_fd pidfd_;
  bool reaped_ = false;
};

// 256000 bytes: more than a pipe holds, so the writer meets backpressure.
const char* const python_data = "bytes(range(256)) * 1000";
std::string expected_data() {
  std::string s;
  for (int i = 0; i < 1000; ++i)
    for (int b = 0; b < 256; ++b) s += static_cast<char>(b);
  return s;
}

option_value text(std::string s) { return {std::move(s), "test"}; }
option_value flag(bool b) { return {b, "test"}; }

std::unique_ptr<byte_stream> open_fifo(const option_values& values, std::string& error) {
  auto t = make_transport("fifo", values);
  auto o = open_endpoint(*t, open_context{"test", 1, nullptr});
  return open_now(*o, error);
}

std::unique_ptr<byte_stream> open_fifo(const option_values& values) {
  std::string error;
  auto s = open_fifo(values, error);
  REQUIRE_MESSAGE(s, error);
  return s;
}

void make_fifo(const fs::path& path) { REQUIRE(::mkfifo(path.c_str(), 0600) == 0); }

// The temporary directory of one test, removed at its end.
struct temp_dir {
  fs::path path = make_temp_dir();
  ~temp_dir() { fs::remove_all(path); }
  std::string operator/(const char* name) const { return (path / name).string(); }
};

// Writes on a FIFO whose reader has gone are EPIPE here, not a signal.
const bool sigpipe_ignored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

TEST_CASE("a read-only endpoint reads what a python3 writer sends, then ends when it closes") {
  temp_dir dir;
  const auto path = dir / "in";
  make_fifo(path);
  python_peer writer(
      "import sys\nwith open(sys.argv[1], 'wb') as f: f.write(" + std::string(python_data) + ")",
      {path});
  auto s = open_fifo(options({{"read", text(path)}}));
  CHECK(s->can_read());
  CHECK_FALSE(s->can_write());
  std::string got;
  REQUIRE(read_to_end(*s, got));
  CHECK(got == expected_data());
  CHECK(writer.wait() == 0);
}

TEST_CASE("a write-only endpoint's bytes reach a python3 reader") {
  temp_dir dir;
  const auto path = dir / "out";
  const auto copy = dir / "copy";
  make_fifo(path);
  SUBCASE("the opener waits, without blocking, until a reader comes") {
    auto t = make_transport("fifo", options({{"write", text(path)}}));
    auto o = open_endpoint(*t, open_context{"test", 1, nullptr});
    const auto step = o->step(false);
    CHECK(step.what == open_step::kind::wait);
    CHECK(step.handle == -1);
    CHECK(step.timeout == 50ms);
  }
  python_peer reader(
      "import sys\n"
      "data = open(sys.argv[1], 'rb').read()\n"
      "open(sys.argv[2], 'wb').write(data)\n",
      {path, copy});
  auto s = open_fifo(options({{"write", text(path)}}));
  CHECK(s->can_write());
  CHECK_FALSE(s->can_read());
  REQUIRE(write_all(*s, expected_data()));
  REQUIRE_FALSE(s->close_write());
  REQUIRE(reader.wait() == 0);
  const auto written = read_file(copy);
  CHECK(std::string(written.begin(), written.end()) == expected_data());
}

TEST_CASE("an endpoint with both sides talks to a python3 peer both ways") {
  temp_dir dir;
  const auto to_peer = dir / "to_peer";
  const auto from_peer = dir / "from_peer";
  // The peer opens its reading side first, as a blocking open() that waits
  // for pickleway's writer; the order pickleway opens in must not matter.
  python_peer peer(
      "import sys\n"
      "r = open(sys.argv[1], 'rb')\n"
      "w = open(sys.argv[2], 'wb')\n"
      "w.write(r.read()[::-1])\n",
      {to_peer, from_peer});
  auto s = open_fifo(
      options({{"read", text(from_peer)}, {"write", text(to_peer)}, {"create", flag(true)}}));
  REQUIRE(write_all(*s, "\x80\x04K*."));
  REQUIRE_FALSE(s->close_write());
  std::string got;
  REQUIRE(read_to_end(*s, got));
  CHECK(got == ".*K\x04\x80");
  CHECK(peer.wait() == 0);
}

TEST_CASE("create: true makes the missing FIFOs, mode 0600") {
  temp_dir dir;
  const auto in = dir / "in";
  const auto out = dir / "out";
  auto t = make_transport(
      "fifo", options({{"read", text(in)}, {"write", text(out)}, {"create", flag(true)}}));
  auto o = open_endpoint(*t, open_context{"test", 1, nullptr});
  CHECK(o->step(false).what == open_step::kind::wait);  // no reader on `out` yet
  for (const auto& path : {in, out}) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);
  }
  SUBCASE("and uses FIFOs that exist already") {
    o.reset();
    auto s = open_fifo(options({{"read", text(in)}, {"create", flag(true)}}));
    CHECK(s->can_read());
  }
}

TEST_CASE("a missing FIFO without create fails the open and says so") {
  temp_dir dir;
  const auto path = dir / "missing";
  std::string error;
  SUBCASE("read") { CHECK_FALSE(open_fifo(options({{"read", text(path)}}), error)); }
  SUBCASE("write") { CHECK_FALSE(open_fifo(options({{"write", text(path)}}), error)); }
  CHECK(error == "fifo: '" + path + "' does not exist (`create: true` makes it)");
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("a path that exists but is not a FIFO is refused") {
  temp_dir dir;
  const auto file = dir / "file";
  std::ofstream(file) << "not a fifo";
  std::string error;
  SUBCASE("a regular file to read") {
    CHECK_FALSE(open_fifo(options({{"read", text(file)}}), error));
    CHECK(error == "fifo: '" + file + "' exists but is not a FIFO");
  }
  SUBCASE("a regular file to write, even with create") {
    CHECK_FALSE(open_fifo(options({{"write", text(file)}, {"create", flag(true)}}), error));
    CHECK(error == "fifo: '" + file + "' exists but is not a FIFO");
  }
  SUBCASE("a directory") {
    CHECK_FALSE(open_fifo(options({{"read", text(dir.path.string())}}), error));
    CHECK(error == "fifo: '" + dir.path.string() + "' exists but is not a FIFO");
  }
}

TEST_CASE("reopen: true keeps reading across successive writers") {
  temp_dir dir;
  const auto path = dir / "in";
  make_fifo(path);
  auto s = open_fifo(options({{"read", text(path)}, {"reopen", flag(true)}}));
  const std::string write_argv1 = "import sys\nopen(sys.argv[1], 'wb').write(sys.argv[2].encode())";
  std::string got;
  std::vector<std::uint8_t> chunk(4096);
  // Reads until `want` bytes have come, failing on EOF or the deadline.
  auto read_until = [&](std::size_t want) {
    while (got.size() < want) {
      const auto r = s->read(chunk);
      if (r.status == io_status::would_block) {
        REQUIRE(wait_ready(r.wait_handle, r.wait_writable, 10s));
        continue;
      }
      REQUIRE(r.status == io_status::done);
      got.append(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(r.bytes));
    }
  };
  {
    python_peer first(write_argv1, {path, "first writer;"});
    CHECK(first.wait() == 0);
  }
  read_until(13);
  CHECK(s->read(chunk).status == io_status::would_block);  // the writer left: no EOF
  {
    python_peer second(write_argv1, {path, "second writer"});
    CHECK(second.wait() == 0);
  }
  read_until(26);
  CHECK(got == "first writer;second writer");
  CHECK(s->read(chunk).status == io_status::would_block);
}

TEST_CASE("without reopen the stream ends when its writer closes") {
  temp_dir dir;
  const auto path = dir / "in";
  make_fifo(path);
  auto s = open_fifo(options({{"read", text(path)}}));
  python_peer writer("import sys\nopen(sys.argv[1], 'wb').write(b'only')", {path});
  std::string got;
  REQUIRE(read_to_end(*s, got));
  CHECK(got == "only");
  CHECK(writer.wait() == 0);
}

TEST_CASE("a read side does not report EOF before its first writer has come and gone") {
  temp_dir dir;
  const auto path = dir / "in";
  make_fifo(path);
  std::vector<std::uint8_t> chunk(64);
  SUBCASE("no writer yet, then one that writes") {
    auto s = open_fifo(options({{"read", text(path)}}));
    const auto r = s->read(chunk);
    REQUIRE(r.status == io_status::would_block);
    CHECK_FALSE(wait_ready(r.wait_handle, false, 100ms));  // nothing to wake for yet
    python_peer writer("import sys\nopen(sys.argv[1], 'wb').write(b'late')", {path});
    std::string got;
    REQUIRE(read_to_end(*s, got));
    CHECK(got == "late");
    CHECK(writer.wait() == 0);
  }
  SUBCASE("a writer that comes and goes without writing ends the stream") {
    auto s = open_fifo(options({{"read", text(path)}}));
    const auto r = s->read(chunk);
    REQUIRE(r.status == io_status::would_block);
    ::close(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    REQUIRE(wait_ready(r.wait_handle, false, 10s));
    CHECK(s->read(chunk).status == io_status::eof);
  }
  SUBCASE("a writer that was already there before the endpoint opened") {
    // A reader of our own lets the writer open without blocking, then goes.
    unique_fd helper(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    unique_fd writer(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    REQUIRE(writer);
    helper.reset();
    auto s = open_fifo(options({{"read", text(path)}}));
    CHECK(s->read(chunk).status == io_status::would_block);
    REQUIRE(::write(writer.get(), "early", 5) == 5);
    writer.reset();
    std::string got;
    REQUIRE(read_to_end(*s, got));
    CHECK(got == "early");
  }
}

TEST_CASE("no descriptor stays open after the stream or an abandoned open") {
  temp_dir dir;
  const auto in = dir / "in";
  const auto out = dir / "out";
  auto count_open_fds = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  const std::size_t before = count_open_fds();
  {
    // The read side is open while the opener waits for a reader of `out`.
    auto t = make_transport(
        "fifo", options({{"read", text(in)}, {"write", text(out)}, {"create", flag(true)}}));
    auto o = open_endpoint(*t, open_context{"test", 1, nullptr});
    CHECK(o->step(false).what == open_step::kind::wait);
  }
  CHECK(count_open_fds() == before);
  {
    unique_fd reader(::open(out.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    auto s = open_fifo(options({{"read", text(in)}, {"write", text(out)}}));
  }
  CHECK(count_open_fds() == before);
}

TEST_CASE("the options are refused when they name no usable FIFO") {
  option_error error;
  SUBCASE("neither read nor write") {
    CHECK_FALSE(make_transport("fifo", options({{"create", flag(true)}}), &error));
    CHECK(error.option.empty());
  }
  SUBCASE("the same FIFO both ways") {
    CHECK_FALSE(make_transport(
        "fifo", options({{"read", text("/tmp/x")}, {"write", text("/tmp/x")}}), &error));
    CHECK(error.option == "write");
  }
  SUBCASE("reopen without read") {
    CHECK_FALSE(make_transport("fifo", options({{"write", text("/tmp/x")}, {"reopen", flag(true)}}),
                               &error));
    CHECK(error.option == "reopen");
  }
  SUBCASE("an empty path") {
    CHECK_FALSE(make_transport("fifo", options({{"read", text("")}}), &error));
    CHECK(error.option == "read");
  }
  CHECK(error.message.rfind("fifo: ", 0) == 0);
}

TEST_CASE("describe names the FIFOs") {
  CHECK(make_transport("fifo", options({{"read", text("/tmp/a")}, {"write", text("/tmp/b")}}))
            ->describe() == "fifo read=/tmp/a write=/tmp/b");
  CHECK(make_transport("fifo", options({{"write", text("/tmp/b")}}))->describe() ==
        "fifo write=/tmp/b");
  CHECK(make_transport(
            "fifo",
            options({{"read", text("/tmp/a")}, {"reopen", flag(true)}, {"create", flag(true)}}))
            ->describe() == "fifo read=/tmp/a (create, reopen)");
}

}  // namespace
}  // namespace pickleway::test
