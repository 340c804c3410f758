// The spawn transport against real python3 children.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "pickleway/fd_stream.hpp"
#include "support/corpus.hpp"
#include "support/plugin_driver.hpp"

namespace pickleway::test {
namespace {

using clock = std::chrono::steady_clock;

// The loop the children's log pipes are watched on: this thread's, run
// whenever a test waits.
poll_watcher& test_loop() {
  static poll_watcher loop;
  return loop;
}

// What a test's log sink received.
class recording_sink final : public log_sink {
 public:
  void line(std::string_view text) noexcept override { lines_.emplace_back(text); }
  // Runs the loop until `text` has been logged as a whole line.
  bool wait_for(const std::string& text, std::chrono::milliseconds deadline = 10s) {
    const auto end = clock::now() + deadline;
    while (std::find(lines_.begin(), lines_.end(), text) == lines_.end()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now());
      if (left.count() <= 0 || !test_loop().run_once(left)) return false;
    }
    return true;
  }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
};

option_value text(std::string s) { return {std::move(s), "test"}; }
option_value words(option_value::list l) { return {std::move(l), "test"}; }
option_value vars(option_value::map m) { return {std::move(m), "test"}; }

// python3 -c CODE
option_value python(const std::string& code) { return words({PICKLEWAY_PYTHON, "-c", code}); }

// A python3 child that copies its input to its output, in chunks as they come.
const char* const echo_code =
    "import sys\n"
    "while True:\n"
    "    chunk = sys.stdin.buffer.read1(65536)\n"
    "    if not chunk: break\n"
    "    sys.stdout.buffer.write(chunk)\n"
    "    sys.stdout.buffer.flush()\n";

std::unique_ptr<byte_stream> spawn(const option_values& values, log_sink* sink = nullptr) {
  auto t = make_transport("spawn", values);
  auto o = open_endpoint(*t, open_context{"test", 1, sink, &test_loop()});
  std::string error;
  auto s = open_now(*o, error);
  REQUIRE_MESSAGE(s, error);
  return s;
}

std::string open_error(const option_values& values) {
  auto t = make_transport("spawn", values);
  auto o = open_endpoint(*t, open_context{"test", 1, nullptr, &test_loop()});
  std::string error;
  auto s = open_now(*o, error);
  CHECK_FALSE(s);
  return error;
}

// Waits for the child to exit and reaps it.
std::optional<std::string> wait_exit(child_process& c) {
  if (!wait_ready(c.exit_handle(), false, 10s)) return std::nullopt;
  return c.reap();
}

pid_t pid_of(const byte_stream& s) {
  const std::string peer = s.peer();  // "pid 1234 (python3)"
  REQUIRE(peer.rfind("pid ", 0) == 0);
  return static_cast<pid_t>(std::stol(peer.substr(4)));
}

// Writes `out` (then closes the writing side) while reading to EOF into
// `in`, waiting on both directions at once, and on the log pipes the loop
// watches, as the core's loop does.
bool exchange(byte_stream& s, std::string_view out, std::string& in,
              std::chrono::milliseconds deadline = 20s) {
  const auto end = clock::now() + deadline;
  std::vector<std::uint8_t> chunk(65536);
  bool writing = true;
  bool reading = true;
  if (out.empty()) {
    writing = false;
    if (s.close_write()) return false;
  }
  while (writing || reading) {
    std::vector<pollfd> waits;
    bool moved = false;
    if (writing) {
      const auto n = std::min<std::size_t>(out.size(), 100000);
      const auto r = s.write({reinterpret_cast<const std::uint8_t*>(out.data()), n});
      if (r.status == io_status::done) {
        moved = true;
        out.remove_prefix(r.bytes);
        if (out.empty()) {
          writing = false;
          if (s.close_write()) return false;
        }
      } else if (r.status == io_status::would_block) {
        waits.push_back({r.wait_handle, static_cast<short>(r.wait_writable ? POLLOUT : POLLIN), 0});
      } else {
        return false;
      }
    }
    if (reading) {
      const auto r = s.read(chunk);
      if (r.status == io_status::done) {
        moved = true;
        in.append(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(r.bytes));
      } else if (r.status == io_status::eof) {
        moved = true;
        reading = false;
      } else if (r.status == io_status::would_block) {
        waits.push_back({r.wait_handle, static_cast<short>(r.wait_writable ? POLLOUT : POLLIN), 0});
      } else {
        return false;
      }
    }
    if (!moved) {  // both directions wait
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now());
      if (left.count() <= 0 || !test_loop().run_once(left, &waits)) return false;
    }
  }
  return true;
}

// A child's writes to a pipe nobody reads are EPIPE here, not a signal.
const bool sigpipe_ignored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

TEST_CASE("a spawned child reads the stream on its stdin and writes it back on its stdout") {
  auto s = spawn(options({{"command", python(echo_code)}}));
  CHECK(s->can_read());
  CHECK(s->can_write());
  const std::string sent = "\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K*.";
  REQUIRE(write_all(*s, sent));
  REQUIRE_FALSE(s->close_write());
  std::string got;
  REQUIRE(read_to_end(*s, got));
  CHECK(got == sent);
  REQUIRE(s->child());
  CHECK(wait_exit(*s->child()) == std::string());
}

TEST_CASE("megabytes cross a spawned child both ways without deadlock") {
  auto s = spawn(options({{"command", python(echo_code)}}));
  std::string sent(3 * 1024 * 1024 + 17, '\0');
  std::mt19937 random(42);
  for (auto& c : sent) c = static_cast<char>(random());
  std::string got;
  REQUIRE(exchange(*s, sent, got));
  CHECK(got.size() == sent.size());
  CHECK(got == sent);
  CHECK(wait_exit(*s->child()) == std::string());
}

TEST_CASE("a child's exit is reported once it has exited") {
  SUBCASE("a non-zero status") {
    auto s = spawn(options({{"command", python("import sys; sys.exit(3)")}}));
    CHECK(wait_exit(*s->child()) == std::string("exited with status 3"));
    CHECK(s->child()->reap() == std::string("exited with status 3"));  // asked again
  }
  SUBCASE("a clean exit, not before it happens") {
    auto s = spawn(options({{"command", python("import sys; sys.stdin.read()")}}));
    CHECK_FALSE(s->child()->reap());  // it waits for EOF on its stdin
    CHECK_FALSE(wait_ready(s->child()->exit_handle(), false, 0ms));
    REQUIRE_FALSE(s->close_write());
    CHECK(wait_exit(*s->child()) == std::string());
  }
}

TEST_CASE("terminate and kill end a child, and reap names the signal") {
  // The child says when it is ready, so the signal finds Python running.
  auto s = spawn(options({{"command", python("import time; print('up'); time.sleep(60)")}}));
  std::string line;
  std::vector<std::uint8_t> chunk(16);
  while (line.find('\n') == std::string::npos) {
    const auto r = s->read(chunk);
    if (r.status == io_status::would_block) {
      REQUIRE(wait_ready(r.wait_handle, false, 10s));
      continue;
    }
    REQUIRE(r.status == io_status::done);
    line.append(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(r.bytes));
  }
  SUBCASE("terminate") {
    s->child()->terminate();
    CHECK(wait_exit(*s->child()) == std::string("killed by signal SIGTERM"));
  }
  SUBCASE("kill") {
    s->child()->kill();
    CHECK(wait_exit(*s->child()) == std::string("killed by signal SIGKILL"));
  }
  // After the reap, signalling is a no-op, never a stray signal to a new pid.
  s->child()->kill();
}

// A variable of the test process's environment, for one test.
struct scoped_env {
  std::string name;
  scoped_env(std::string n, const char* value) : name(std::move(n)) {
    ::setenv(name.c_str(), value, 1);
  }
  ~scoped_env() { ::unsetenv(name.c_str()); }
};

TEST_CASE("env, cwd and PYTHONUNBUFFERED reach the child") {
  const auto dir = make_temp_dir();
  const scoped_env inherited("PICKLEWAY_TEST_INHERITED", "from-parent");
  const scoped_env overridden("PICKLEWAY_TEST_OVERRIDDEN", "from-parent");
  const scoped_env fds("PICKLEWAY_FDS", "3,4");  // as if pickleway were itself a fds child
  const std::string show =
      "import os\n"
      "for name in ['PICKLEWAY_TEST_INHERITED', 'PICKLEWAY_TEST_OVERRIDDEN', "
      "'PICKLEWAY_TEST_ADDED',\n"
      "             'PYTHONUNBUFFERED', 'PICKLEWAY_FDS']:\n"
      "    print(name, os.environ.get(name, '-'))\n"
      "print('cwd', os.getcwd())\n";
  SUBCASE("env adds and overrides, PYTHONUNBUFFERED is set, cwd is used") {
    auto s = spawn(options({{"command", python(show)},
                            {"env", vars({{"PICKLEWAY_TEST_OVERRIDDEN", "from-env"},
                                          {"PICKLEWAY_TEST_ADDED", "added"}})},
                            {"cwd", text(dir.string())}}));
    std::string got;
    REQUIRE(exchange(*s, "", got));
    CHECK(got ==
          "PICKLEWAY_TEST_INHERITED from-parent\n"
          "PICKLEWAY_TEST_OVERRIDDEN from-env\n"
          "PICKLEWAY_TEST_ADDED added\n"
          "PYTHONUNBUFFERED 1\n"
          "PICKLEWAY_FDS -\n"
          "cwd " +
              std::filesystem::canonical(dir).string() + "\n");
  }
  SUBCASE("env may set PYTHONUNBUFFERED itself") {
    auto s = spawn(options({{"command", python(show)}, {"env", vars({{"PYTHONUNBUFFERED", ""}})}}));
    std::string got;
    REQUIRE(exchange(*s, "", got));
    CHECK(got.find("PYTHONUNBUFFERED \n") != std::string::npos);
  }
  SUBCASE("a relative program is found in the PATH env sets") {
    const auto bin = dir / "bin";
    std::filesystem::create_directory(bin);
    {
      std::ofstream script(bin / "pickleway-test-program");
      script << "#!/bin/sh\necho found \"$1\"\n";
    }
    std::filesystem::permissions(bin / "pickleway-test-program", std::filesystem::perms::owner_all);
    auto s = spawn(options({{"command", words({"pickleway-test-program", "here"})},
                            {"env", vars({{"PATH", "/nonexistent::" + bin.string()}})}}));
    std::string got;
    REQUIRE(exchange(*s, "", got));
    CHECK(got == "found here\n");
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("channel fds carries exact bytes on fds 3 and 4 while stdout goes to the log") {
  recording_sink sink;
  const std::string code =
      "import os, sys\n"
      "print('junk before')\n"
      "print('PICKLEWAY_FDS=' + os.environ['PICKLEWAY_FDS'])\n"
      "print('stdin holds', repr(sys.stdin.read()))\n"
      "with os.fdopen(3, 'rb') as r, os.fdopen(4, 'wb') as w:\n"
      "    while True:\n"
      "        chunk = r.read1(65536)\n"
      "        if not chunk: break\n"
      "        w.write(chunk)\n"
      "        print('junk', len(chunk))\n"
      "print('junk after', end='')\n";
  auto s = spawn(options({{"command", python(code)}, {"channel", text("fds")}}), &sink);
  std::string sent(300000, '\0');
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 % 251);
  std::string got;
  REQUIRE(exchange(*s, sent, got));
  CHECK(got == sent);
  CHECK(wait_exit(*s->child()) == std::string());
  CHECK(sink.wait_for("junk before"));
  CHECK(sink.wait_for("PICKLEWAY_FDS=3,4"));
  CHECK(sink.wait_for("stdin holds ''"));
  CHECK(sink.wait_for("junk after"));  // a last line without its newline
}

TEST_CASE("stderr: log sends each line of the child's stderr to the log sink") {
  recording_sink sink;
  auto s = spawn(options({{"command", python("import sys\n"
                                             "sys.stderr.write('first line\\nsecond line\\r\\n')\n"
                                             "sys.stdout.write('on stdout')\n"
                                             "sys.stderr.write('unterminated')\n")},
                          {"stderr", text("log")}}),
                 &sink);
  std::string got;
  REQUIRE(exchange(*s, "", got));
  CHECK(got == "on stdout");  // the channel carries stdout alone
  CHECK(sink.wait_for("first line"));
  CHECK(sink.wait_for("second line"));
  CHECK(sink.wait_for("unterminated"));
  s.reset();  // forwards what is left and stops watching
  CHECK(sink.lines() == std::vector<std::string>{"first line", "second line", "unterminated"});
  CHECK(test_loop().watched() == 0);
}

TEST_CASE("stderr: discard gives the child /dev/null as its stderr") {
  auto s = spawn(options({{"command", python("import os; print(os.readlink('/proc/self/fd/2'))")},
                          {"stderr", text("discard")}}));
  std::string got;
  REQUIRE(exchange(*s, "", got));
  CHECK(got == "/dev/null\n");
}

TEST_CASE("a program that cannot run fails the open and says why") {
  SUBCASE("a missing executable") {
    CHECK(open_error(options({{"command", words({"pickleway-no-such-program", "x"})}})) ==
          "spawn: cannot run 'pickleway-no-such-program': No such file or directory");
  }
  SUBCASE("a missing executable by path") {
    CHECK(open_error(options({{"command", words({"/nonexistent/python3"})}})) ==
          "spawn: cannot run '/nonexistent/python3': No such file or directory");
  }
  SUBCASE("a file that is not executable") {
    const auto dir = make_temp_dir();
    const auto script = dir / "script.py";
    std::filesystem::copy_file(std::string(PICKLEWAY_SOURCE_DIR) + "/CMakeLists.txt", script);
    CHECK(open_error(options({{"command", words({script.string()})}})) ==
          "spawn: cannot run '" + script.string() + "': Permission denied");
    std::filesystem::remove_all(dir);
  }
  SUBCASE("a missing cwd") {
    CHECK(open_error(options({{"command", python("pass")}, {"cwd", text("/nonexistent/dir")}})) ==
          "spawn: cannot use cwd '/nonexistent/dir': No such file or directory");
  }
}

TEST_CASE("destroying the stream leaves no zombie and no orphan") {
  SUBCASE("a child that already exited is reaped") {
    auto s = spawn(options({{"command", python("pass")}}));
    const pid_t pid = pid_of(*s);
    REQUIRE(wait_ready(s->child()->exit_handle(), false, 10s));  // exited, not reaped
    s.reset();
    errno = 0;
    CHECK(::waitpid(pid, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
  }
  SUBCASE("a running child and its own children are killed and reaped") {
    auto s = spawn(options({{"command", python("import subprocess, time\n"
                                               "p = subprocess.Popen(['sleep', '60'])\n"
                                               "print(p.pid)\n"
                                               "time.sleep(60)\n")},
                            {"stderr", text("log")}}));
    const pid_t pid = pid_of(*s);
    std::string line;
    std::vector<std::uint8_t> chunk(64);
    while (line.find('\n') == std::string::npos) {
      const auto r = s->read(chunk);
      if (r.status == io_status::would_block) {
        REQUIRE(wait_ready(r.wait_handle, false, 10s));
        continue;
      }
      REQUIRE(r.status == io_status::done);
      line.append(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(r.bytes));
    }
    const auto grandchild = static_cast<pid_t>(std::stol(line));
    unique_fd grandchild_fd(static_cast<int>(::syscall(SYS_pidfd_open, grandchild, 0)));
    REQUIRE(grandchild_fd);
    const auto before = clock::now();
    s.reset();
    CHECK(clock::now() - before < 5s);
    errno = 0;
    CHECK(::waitpid(pid, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
    CHECK(wait_ready(grandchild_fd.get(), false, 10s));  // it has exited too
  }
}

std::size_t count_open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

TEST_CASE("the child gets only its channel's descriptors and none stay open after it") {
  // Another part of the process forgot close-on-exec: the child must not
  // inherit it (a pipe end held by the wrong child would hide an EOF).
  const unique_fd leaked(::open("/dev/null", O_RDONLY));
  REQUIRE(leaked);
  const std::size_t before = count_open_fds();
  const std::string list_fds =
      "import os\n"
      "fds = []\n"
      "for fd in range(1024):\n"
      "    try:\n"
      "        os.fstat(fd)\n"
      "        fds.append(str(fd))\n"
      "    except OSError:\n"
      "        pass\n"
      "os.write(OUT, ' '.join(fds).encode())\n";
  std::string got;
  SUBCASE("channel stdio") {
    auto s = spawn(options({{"command", python("OUT = 1\n" + list_fds)}, {"stderr", text("log")}}));
    REQUIRE(exchange(*s, "", got));
    CHECK(got == "0 1 2");
  }
  SUBCASE("channel fds") {
    auto s =
        spawn(options({{"command", python("OUT = 4\n" + list_fds)}, {"channel", text("fds")}}));
    REQUIRE(exchange(*s, "", got));
    CHECK(got == "0 1 2 3 4");
  }
  CHECK(count_open_fds() == before);
}

TEST_CASE("the options are refused when they cannot describe a child") {
  option_error error;
  SUBCASE("an empty command") {
    CHECK_FALSE(make_transport("spawn", options({{"command", words({})}}), &error));
    CHECK(error.option == "command");
  }
  SUBCASE("an env name with '='") {
    CHECK_FALSE(make_transport(
        "spawn", options({{"command", python("pass")}, {"env", vars({{"A=B", "c"}})}}), &error));
    CHECK(error.option == "env");
  }
  SUBCASE("PICKLEWAY_FDS in env with channel fds") {
    CHECK_FALSE(make_transport("spawn",
                               options({{"command", python("pass")},
                                        {"channel", text("fds")},
                                        {"env", vars({{"PICKLEWAY_FDS", "5,6"}})}}),
                               &error));
    CHECK(error.option == "env");
  }
  CHECK(error.message.rfind("spawn: ", 0) == 0);
}

TEST_CASE("describe names the command and peer names the child") {
  auto t = make_transport("spawn", options({{"command", words({"python3", "producer.py"})}}));
  CHECK(t->describe() == "spawn python3 producer.py");
  auto u =
      make_transport("spawn", options({{"command", words({"python3", "-c", "print('hi there')"})},
                                       {"channel", text("fds")},
                                       {"stderr", text("log")}}));
  CHECK(u->describe() == "spawn python3 -c 'print('\\''hi there'\\'')' (channel fds, stderr log)");
  auto s = spawn(options({{"command", python("pass")}}));
  CHECK(s->peer() == "pid " + std::to_string(pid_of(*s)) + " (" +
                         std::filesystem::path(PICKLEWAY_PYTHON).filename().string() + ")");
}

}  // namespace
}  // namespace pickleway::test
