// relay_load: the load generator, sink, pinger and ponger of the relay
// benchmark (tools/bench/relay_bench.py). It knows nothing of pickleway: it
// reads and writes its standard input and output, so the same program runs
// on a plain pipe, under `pickleway run` (spawn) and under socat.
//
//   relay_load gen  CORPUS COUNT [--chunk BYTES] [--out JSON]
//   relay_load sink CORPUS COUNT [--out JSON]
//   relay_load ping CORPUS COUNT [--warmup N] [--out JSON]
//   relay_load pong
//   relay_load hop A_ARGV... -- B_ARGV...
//   relay_load fan    CORPUS COUNT --connect PORT --connections N [--chunk BYTES] [--out JSON]
//   relay_load gather CORPUS COUNT --connections N [--out JSON]
//
// CORPUS is a file of pickles written back to back, made once by Python,
// with their sizes in CORPUS.sizes (one decimal a line). The stream is the
// corpus's messages in order, cycled until COUNT messages.
//
//   gen   writes that stream to stdout as fast as it can, in writes of
//         --chunk bytes (default 64 KiB, a pipe's capacity), then exits.
//   sink  reads stdin to EOF and checks it is exactly that stream: COUNT
//         messages, each compared with the corpus message it must be (whole
//         up to 4 KiB; larger ones on their first and last 4 KiB and 64
//         bytes every 64 KiB). Times first byte to EOF.
//   ping  the corpus's first message, COUNT times after --warmup unrecorded
//         ones (default 1000): write it, read it back whole, time the round
//         trip. Reports min, median, p90, p99, max in microseconds.
//   pong  echoes stdin to stdout until EOF.
//   hop   the least a relay process can do, as a yardstick for pickleway's
//         hop: runs A and B on pipes (as pickleway's spawn does) and copies
//         whatever one writes to the other, with level-triggered epoll, one
//         read and one blocking write at a time, no framing. Exits 1 if a
//         child fails.
//   fan   opens N TCP connections to 127.0.0.1:PORT and writes the stream
//         on each, all at once (non-blocking, one epoll), then shuts each
//         down for writing.
//   gather listens on 127.0.0.1 (any port, printed on stdout as "port P"),
//         takes N connections and checks each carries exactly the stream,
//         as sink does; times the first byte to the last EOF.
//
// Results are one JSON line, to --out (default: stderr; stdout may be the
// stream). Exits 1, saying why on stderr, if the stream is not what it must
// be.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "relay_load: %s\n", why.c_str());
  std::exit(1);
}

std::string errno_text() { return std::strerror(errno); }

struct corpus {
  std::vector<std::uint8_t> bytes;
  std::vector<std::size_t> offsets, sizes;
};

corpus load_corpus(const std::string& path) {
  corpus c;
  std::ifstream data(path, std::ios::binary);
  if (!data) die("cannot open " + path);
  c.bytes.assign(std::istreambuf_iterator<char>(data), std::istreambuf_iterator<char>());
  std::ifstream sizes(path + ".sizes");
  if (!sizes) die("cannot open " + path + ".sizes");
  std::size_t offset = 0;
  for (std::size_t size; sizes >> size;) {
    c.offsets.push_back(offset);
    c.sizes.push_back(size);
    offset += size;
  }
  if (c.sizes.empty() || offset != c.bytes.size())
    die(path + ".sizes does not add up to the size of " + path);
  return c;
}

std::size_t parse_size(const std::string& text, const char* what) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno || end == text.c_str() || *end) die(std::string("bad ") + what + ": " + text);
  return static_cast<std::size_t>(v);
}

void write_all(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write failed: " + errno_text());
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Reads exactly n bytes; false at EOF before any byte.
bool read_exact(int fd, std::uint8_t* p, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read failed: " + errno_text());
    }
    if (r == 0) {
      if (got == 0) return false;
      die("EOF inside a message (" + std::to_string(got) + " of " + std::to_string(n) + " bytes)");
    }
    got += static_cast<std::size_t>(r);
  }
  return true;
}

void report(const std::string& out, const std::string& json) {
  if (out.empty() || out == "-") {
    std::fprintf(stderr, "%s\n", json.c_str());
    return;
  }
  std::FILE* f = std::fopen(out.c_str(), "w");
  if (!f) die("cannot write " + out + ": " + errno_text());
  std::fprintf(f, "%s\n", json.c_str());
  std::fclose(f);
}

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The stream of `count` messages, the corpus cycled: the corpus twice
// over, so that any window of up to one corpus length starting inside the
// first copy is contiguous, and the stream's length.
struct cycled_stream {
  std::vector<std::uint8_t> ring;
  std::size_t corpus_bytes, total;
};

cycled_stream cycled(const corpus& c, std::size_t count) {
  cycled_stream s{c.bytes, c.bytes.size(), (count / c.sizes.size()) * c.bytes.size()};
  s.ring.insert(s.ring.end(), c.bytes.begin(), c.bytes.end());
  for (std::size_t i = 0; i < count % c.sizes.size(); ++i) s.total += c.sizes[i];
  return s;
}

int run_gen(const corpus& c, std::size_t count, std::size_t chunk, const std::string& out) {
  const auto [ring, corpus_bytes, total] = cycled(c, count);
  chunk = std::clamp<std::size_t>(chunk, 1, corpus_bytes);

  const auto start = clock_type::now();
  std::size_t pos = 0;
  for (std::size_t left = total; left > 0;) {
    const std::size_t n = std::min(chunk, left);
    write_all(STDOUT_FILENO, ring.data() + pos, n);
    pos = (pos + n) % corpus_bytes;
    left -= n;
  }
  ::close(STDOUT_FILENO);  // the reader sees EOF now, not at exit
  const double s = seconds_between(start, clock_type::now());
  char json[256];
  std::snprintf(json, sizeof json,
                "{\"mode\": \"gen\", \"messages\": %zu, \"bytes\": %zu, \"seconds\": %.6f}", count,
                total, s);
  report(out, json);
  return 0;
}

// Checks the stream piece by piece against the corpus, cycled.
class checker {
 public:
  explicit checker(const corpus& c) : c_(c) {
    for (std::size_t size : c.sizes) ranges_.push_back(check_ranges(size));
  }

  void feed(const std::uint8_t* p, std::size_t n) {
    bytes_ += n;
    while (n > 0) {
      const std::size_t m = index_ % c_.sizes.size();
      const std::size_t size = c_.sizes[m];
      const std::size_t take = std::min(n, size - pos_);
      const std::uint8_t* expected = c_.bytes.data() + c_.offsets[m];
      for (const auto& [b, e] : ranges_[m]) {
        const std::size_t lo = std::max(b, pos_), hi = std::min(e, pos_ + take);
        if (lo < hi && std::memcmp(p + (lo - pos_), expected + lo, hi - lo) != 0)
          die("message " + std::to_string(index_) + " differs from the corpus near byte " +
              std::to_string(lo) + " of it (stream offset " + std::to_string(bytes_ - n + (lo - pos_)) +
              ")");
      }
      pos_ += take;
      p += take;
      n -= take;
      if (pos_ == size) {
        ++index_;
        pos_ = 0;
      }
    }
  }

  std::size_t messages() const { return index_; }
  std::size_t partial() const { return pos_; }
  std::size_t bytes() const { return bytes_; }

 private:
  static std::vector<std::pair<std::size_t, std::size_t>> check_ranges(std::size_t size) {
    constexpr std::size_t edge = 4096, stride = 64 << 10, sample = 64;
    if (size <= edge) return {{0, size}};
    std::vector<std::pair<std::size_t, std::size_t>> r{{0, edge}};
    for (std::size_t at = stride; at + sample < size - edge; at += stride) r.emplace_back(at, at + sample);
    r.emplace_back(size - edge, size);
    return r;
  }

  const corpus& c_;
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> ranges_;
  std::size_t index_ = 0, pos_ = 0, bytes_ = 0;
};

int run_sink(const corpus& c, std::size_t count, const std::string& out) {
  checker check(c);
  std::vector<std::uint8_t> buffer(1 << 20);
  clock_type::time_point start{}, end{};
  std::size_t reads = 0;
  for (;;) {
    const ssize_t r = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read failed: " + errno_text());
    }
    if (r == 0) break;
    if (reads++ == 0) start = clock_type::now();
    check.feed(buffer.data(), static_cast<std::size_t>(r));
    if (check.messages() > count) die("more than the " + std::to_string(count) + " messages sent");
  }
  end = clock_type::now();
  if (check.partial() != 0)
    die("the stream ended inside message " + std::to_string(check.messages()) + " (" +
        std::to_string(check.partial()) + " bytes of it)");
  if (check.messages() != count)
    die("got " + std::to_string(check.messages()) + " messages, expected " + std::to_string(count));
  const double s = reads ? seconds_between(start, end) : 0.0;
  char json[320];
  std::snprintf(json, sizeof json,
                "{\"mode\": \"sink\", \"messages\": %zu, \"bytes\": %zu, \"reads\": %zu, "
                "\"seconds\": %.6f, \"messages_per_s\": %.1f, \"mb_per_s\": %.3f}",
                check.messages(), check.bytes(), reads, s,
                s > 0 ? static_cast<double>(check.messages()) / s : 0.0,
                s > 0 ? static_cast<double>(check.bytes()) / s / 1e6 : 0.0);
  report(out, json);
  return 0;
}

int run_ping(const corpus& c, std::size_t count, std::size_t warmup, const std::string& out) {
  const std::uint8_t* msg = c.bytes.data();
  const std::size_t size = c.sizes[0];
  std::vector<std::uint8_t> back(size);
  std::vector<double> us;
  us.reserve(count);
  for (std::size_t i = 0; i < warmup + count; ++i) {
    const auto t0 = clock_type::now();
    write_all(STDOUT_FILENO, msg, size);
    if (!read_exact(STDIN_FILENO, back.data(), size)) die("EOF after " + std::to_string(i) + " round trips");
    const auto t1 = clock_type::now();
    if (std::memcmp(back.data(), msg, size) != 0) die("round trip " + std::to_string(i) + " came back changed");
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  ::close(STDOUT_FILENO);
  if (us.empty()) die("no round trips timed");
  std::sort(us.begin(), us.end());
  const auto at = [&us](double q) {
    return us[std::min(us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(us.size())))];
  };
  double sum = 0;
  for (double v : us) sum += v;
  char json[320];
  std::snprintf(json, sizeof json,
                "{\"mode\": \"ping\", \"round_trips\": %zu, \"bytes\": %zu, \"min_us\": %.2f, "
                "\"median_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, \"max_us\": %.2f, "
                "\"mean_us\": %.2f}",
                us.size(), size, us.front(), at(0.5), at(0.9), at(0.99), us.back(),
                sum / static_cast<double>(us.size()));
  report(out, json);
  return 0;
}

int run_pong() {
  std::vector<std::uint8_t> buffer(64 << 10);
  for (;;) {
    const ssize_t r = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read failed: " + errno_text());
    }
    if (r == 0) return 0;
    write_all(STDOUT_FILENO, buffer.data(), static_cast<std::size_t>(r));
  }
}

// Starts argv with its stdin and stdout on new pipes; returns the pid and
// the parent's ends (to the child, from the child).
pid_t start_child(std::vector<char*> argv, int& to_child, int& from_child) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) < 0 || ::pipe2(out, O_CLOEXEC) < 0) die("pipe2: " + errno_text());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int e = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (e != 0) die(std::string("cannot start ") + argv[0] + ": " + std::strerror(e));
  ::close(in[0]);
  ::close(out[1]);
  to_child = in[1];
  from_child = out[0];
  return pid;
}

int run_hop(int argc, char** argv) {
  int sep = 2;
  while (sep < argc && std::strcmp(argv[sep], "--") != 0) ++sep;
  if (sep == 2 || sep + 1 >= argc) die("hop needs A_ARGV... -- B_ARGV...");
  int to_a = -1, from_a = -1, to_b = -1, from_b = -1;
  const pid_t a = start_child({argv + 2, argv + sep}, to_a, from_a);
  const pid_t b = start_child({argv + sep + 1, argv + argc}, to_b, from_b);
  const int src[2] = {from_a, from_b};
  int dst[2] = {to_b, to_a};
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (std::uint32_t i = 0; i < 2; ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, src[i], &ev) < 0) die("epoll_ctl: " + errno_text());
  }
  std::vector<std::uint8_t> buffer(64 << 10);
  for (int open = 2; open > 0;) {
    epoll_event events[2];
    const int n = ::epoll_wait(ep, events, 2, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait: " + errno_text());
    for (int k = 0; k < n; ++k) {
      const std::uint32_t i = events[k].data.u32;
      const ssize_t r = ::read(src[i], buffer.data(), buffer.size());
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {  // EOF (or an error): the other side reads EOF too
        ::epoll_ctl(ep, EPOLL_CTL_DEL, src[i], nullptr);
        ::close(dst[i]);
        dst[i] = -1;
        --open;
        continue;
      }
      if (dst[i] >= 0) write_all(dst[i], buffer.data(), static_cast<std::size_t>(r));
    }
  }
  int failed = 0;
  for (const pid_t pid : {a, b}) {
    int status = 0;
    if (::waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
  }
  return failed;
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(port);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return at;
}

int run_fan(const corpus& c, std::size_t count, std::uint16_t port, std::size_t connections,
            std::size_t chunk, const std::string& out) {
  const auto [ring, corpus_bytes, total] = cycled(c, count);
  chunk = std::clamp<std::size_t>(chunk, 1, corpus_bytes);
  struct stream {
    int fd;
    std::size_t pos = 0, left;
  };
  std::vector<stream> streams;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (std::size_t i = 0; i < connections; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in at = loopback(port);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) < 0)
      die("connect to port " + std::to_string(port) + ": " + errno_text());
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    streams.push_back({fd, 0, total});
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = i;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl: " + errno_text());
  }
  const auto start = clock_type::now();
  std::vector<epoll_event> events(connections);
  for (std::size_t open = connections; open > 0;) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno != EINTR) die("epoll_wait: " + errno_text());
    for (int k = 0; k < n; ++k) {
      stream& s = streams[events[static_cast<std::size_t>(k)].data.u64];
      while (s.left > 0) {
        const ssize_t w = ::write(s.fd, ring.data() + s.pos, std::min(chunk, s.left));
        if (w < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) break;
          die("write failed: " + errno_text());
        }
        s.pos = (s.pos + static_cast<std::size_t>(w)) % corpus_bytes;
        s.left -= static_cast<std::size_t>(w);
      }
      if (s.left == 0) {
        ::epoll_ctl(ep, EPOLL_CTL_DEL, s.fd, nullptr);
        ::shutdown(s.fd, SHUT_WR);
        --open;
      }
    }
  }
  const double seconds = seconds_between(start, clock_type::now());
  for (const stream& s : streams) ::close(s.fd);
  char json[256];
  std::snprintf(json, sizeof json,
                "{\"mode\": \"fan\", \"connections\": %zu, \"messages\": %zu, \"bytes\": %zu, "
                "\"seconds\": %.6f}",
                connections, count * connections, total * connections, seconds);
  report(out, json);
  return 0;
}

int run_gather(const corpus& c, std::size_t count, std::size_t connections, const std::string& out) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in at = loopback(0);
  socklen_t length = sizeof at;
  if (listener < 0 || ::bind(listener, reinterpret_cast<const sockaddr*>(&at), sizeof at) < 0 ||
      ::listen(listener, 4096) < 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&at), &length) < 0)
    die("cannot listen: " + errno_text());
  std::printf("port %u\n", ntohs(at.sin_port));
  std::fflush(stdout);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event listening{};
  listening.events = EPOLLIN;
  listening.data.u64 = ~std::uint64_t{0};
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &listening);
  std::vector<int> fds;
  std::vector<checker> checks;
  checks.reserve(connections);
  std::vector<std::uint8_t> buffer(1 << 20);
  std::vector<epoll_event> events(connections + 1);
  clock_type::time_point start{};
  bool started = false;
  std::size_t reads = 0;
  for (std::size_t open = connections, accepted = 0; open > 0;) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno != EINTR) die("epoll_wait: " + errno_text());
    for (int k = 0; k < n; ++k) {
      const std::uint64_t i = events[static_cast<std::size_t>(k)].data.u64;
      if (i == ~std::uint64_t{0}) {
        for (int fd; accepted < connections && (fd = ::accept4(listener, nullptr, nullptr,
                                                                SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = accepted++;
          fds.push_back(fd);
          checks.emplace_back(c);
          ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      for (;;) {
        const ssize_t r = ::read(fds[i], buffer.data(), buffer.size());
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        if (r < 0) die("read failed: " + errno_text());
        if (r == 0) {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], nullptr);
          ::close(fds[i]);
          if (checks[i].partial() != 0 || checks[i].messages() != count)
            die("connection " + std::to_string(i) + " carried " + std::to_string(checks[i].messages()) +
                " whole messages and " + std::to_string(checks[i].partial()) + " bytes, expected " +
                std::to_string(count) + " messages");
          --open;
          break;
        }
        if (!started) start = clock_type::now(), started = true;
        ++reads;
        checks[i].feed(buffer.data(), static_cast<std::size_t>(r));
      }
    }
  }
  const double s = seconds_between(start, clock_type::now());
  std::size_t bytes = 0;
  for (const checker& check : checks) bytes += check.bytes();
  const std::size_t messages = count * connections;
  char json[320];
  std::snprintf(json, sizeof json,
                "{\"mode\": \"gather\", \"connections\": %zu, \"messages\": %zu, \"bytes\": %zu, "
                "\"reads\": %zu, \"seconds\": %.6f, \"messages_per_s\": %.1f, \"mb_per_s\": %.3f}",
                connections, messages, bytes, reads, s, static_cast<double>(messages) / s,
                static_cast<double>(bytes) / s / 1e6);
  report(out, json);
  return 0;
}

[[noreturn]] void usage() {
  std::fputs(
      "usage: relay_load gen  CORPUS COUNT [--chunk BYTES] [--out JSON]\n"
      "       relay_load sink CORPUS COUNT [--out JSON]\n"
      "       relay_load ping CORPUS COUNT [--warmup N] [--out JSON]\n"
      "       relay_load pong\n"
      "       relay_load hop A_ARGV... -- B_ARGV...\n"
      "       relay_load fan    CORPUS COUNT --connect PORT --connections N [--chunk BYTES] [--out JSON]\n"
      "       relay_load gather CORPUS COUNT --connections N [--out JSON]\n",
      stderr);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a vanished reader is an error message, not a silent death
  if (argc < 2) usage();
  const std::string mode = argv[1];
  if (mode == "pong") return run_pong();
  if (mode == "hop") return run_hop(argc, argv);
  if (argc < 4) usage();
  const corpus c = load_corpus(argv[2]);
  const std::size_t count = parse_size(argv[3], "COUNT");
  std::string out;
  std::size_t chunk = 64 << 10, warmup = 1000, connections = 1, port = 0;
  for (int i = 4; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) usage();
    const std::string value = argv[++i];
    if (arg == "--out") out = value;
    else if (arg == "--chunk") chunk = parse_size(value, "--chunk");
    else if (arg == "--warmup") warmup = parse_size(value, "--warmup");
    else if (arg == "--connections") connections = parse_size(value, "--connections");
    else if (arg == "--connect") port = parse_size(value, "--connect");
    else usage();
  }
  if (mode == "gen") return run_gen(c, count, chunk, out);
  if (mode == "sink") return run_sink(c, count, out);
  if (mode == "ping") return run_ping(c, count, warmup, out);
  if (mode == "fan") return run_fan(c, count, static_cast<std::uint16_t>(port), connections, chunk, out);
  if (mode == "gather") return run_gather(c, count, connections, out);
  usage();
}
