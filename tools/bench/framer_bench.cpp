// framer_bench: how fast pickleway::framer splits a pickle stream, against
// a memchr pass over the same bytes (the floor: touching every byte once).
//
//   framer_bench FILE [--expect N] [--chunk BYTES] [--runs N] [--seconds S]
//
// The whole FILE is read into memory first, so no I/O is timed. Prints one
// JSON line; exits non-zero when the framer fails or finds a message count
// other than --expect.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pickleway/framer.hpp"

namespace {

using pickleway::bytes_view;
using pickleway::frame_status;
using pickleway::framer;

struct options {
  std::string path;
  long long expect = -1;       // messages the stream must hold; -1: unchecked
  std::size_t chunk = 64 << 10;  // read size of the chunked mode; 0: skip it
  int runs = 5;
  double seconds = 1.0;  // at least this long per measurement, all runs together
};

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "framer_bench: %s\n", why.c_str());
  std::exit(1);
}

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) die("cannot open " + path + ": " + std::strerror(errno));
  std::vector<std::uint8_t> bytes;
  std::uint8_t block[1 << 16];
  for (std::size_t n; (n = std::fread(block, 1, sizeof block, file)) > 0;)
    bytes.insert(bytes.end(), block, block + n);
  std::fclose(file);
  return bytes;
}

// Frames one message after another, each time from the unconsumed rest of
// `data`, the way a session does with what one large read brought in.
// Returns the number of bytes consumed; messages are counted in `messages`.
std::size_t frame_all(framer& f, bytes_view data, std::size_t& messages) {
  std::size_t consumed = 0;
  for (;;) {
    switch (f.next(data.subspan(consumed))) {
      case frame_status::message:
        consumed += f.message().size;
        ++messages;
        continue;
      case frame_status::need_more:
        return consumed;
      default:  // the streams are clean: stray bytes are an error too
        die("framing failed: " + f.error().describe());
    }
  }
}

void finish_clean(framer& f, bytes_view rest) {
  if (f.finish(rest) != frame_status::end)
    die("stream does not end at a message boundary: " + f.error().describe());
}

// The whole stream is available at once.
std::size_t frame_whole(bytes_view stream) {
  framer f;
  std::size_t messages = 0;
  const std::size_t consumed = frame_all(f, stream, messages);
  finish_clean(f, stream.subspan(consumed));
  return messages;
}

// A session's read buffer: each read appends up to `chunk` bytes (a memcpy
// stands in for the read), the framer takes the whole messages, and the
// unconsumed tail moves to the front. The buffer grows when a message does
// not fit, and is kept from pass to pass as a session keeps its own.
class chunked_feeder {
 public:
  explicit chunked_feeder(std::size_t chunk) : chunk_(chunk) {}

  std::size_t operator()(bytes_view stream) {
    framer f;
    std::size_t messages = 0, filled = 0, read = 0;
    while (read < stream.size()) {
      if (buffer_.size() - filled < chunk_) buffer_.resize(filled + chunk_);
      const std::size_t n = std::min(chunk_, stream.size() - read);
      std::memcpy(buffer_.data() + filled, stream.data() + read, n);
      filled += n;
      read += n;
      const std::size_t consumed =
          frame_all(f, bytes_view(buffer_.data(), filled), messages);
      if (consumed > 0) {
        std::memmove(buffer_.data(), buffer_.data() + consumed, filled - consumed);
        filled -= consumed;
      }
    }
    finish_clean(f, bytes_view(buffer_.data(), filled));
    return messages;
  }

 private:
  std::size_t chunk_;
  std::vector<std::uint8_t> buffer_;
};

// The floor: one memchr pass over every byte, counting the '.' (STOP) bytes.
std::size_t count_dots(bytes_view stream) {
  const auto* p = stream.data();
  const auto* const end = p + stream.size();
  std::size_t dots = 0;
  while ((p = static_cast<const std::uint8_t*>(
              std::memchr(p, '.', static_cast<std::size_t>(end - p))))) {
    ++dots;
    ++p;
  }
  return dots;
}

struct timing {
  double seconds = 0;  // of the fastest pass
  int passes = 0;      // per run
  std::size_t result = 0;
};

// Runs `pass` in `runs` runs of equally many passes, enough for all of them
// to take about `total` seconds, and keeps the best run: the one least
// disturbed by the rest of the machine. All passes must agree on the result.
timing measure(const std::function<std::size_t()>& pass, int runs, double total) {
  using clock = std::chrono::steady_clock;
  const auto elapsed = [](clock::time_point since) {
    return std::chrono::duration<double>(clock::now() - since).count();
  };
  timing t;
  auto start = clock::now();
  t.result = pass();  // warms caches and the buffers, and sizes the runs
  const double one = std::max(elapsed(start), 1e-9);
  t.passes = static_cast<int>(std::clamp(std::ceil(total / runs / one), 1.0, 1e9));
  t.seconds = one;
  for (int r = 0; r < runs; ++r) {
    start = clock::now();
    for (int i = 0; i < t.passes; ++i)
      if (pass() != t.result) die("a pass gave another result than the first");
    t.seconds = std::min(t.seconds, elapsed(start) / t.passes);
  }
  return t;
}

std::string json_result(const timing& t, std::size_t bytes, std::size_t messages) {
  char out[256];
  std::snprintf(out, sizeof out,
                "{\"seconds\": %.9g, \"mb_per_s\": %.6g, \"messages_per_s\": %.6g, "
                "\"passes\": %d",
                t.seconds, static_cast<double>(bytes) / t.seconds / 1e6,
                static_cast<double>(messages) / t.seconds, t.passes);
  return out;
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(std::string(arg) + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--expect") o.expect = std::stoll(value());
      else if (arg == "--chunk") o.chunk = std::stoull(value());
      else if (arg == "--runs") o.runs = std::max(1, std::stoi(value()));
      else if (arg == "--seconds") o.seconds = std::stod(value());
      else if (!arg.starts_with("--") && o.path.empty()) o.path = arg;
      else die("unknown argument " + std::string(arg));
    } catch (const std::logic_error&) {
      die("bad value for " + std::string(arg));
    }
  }
  if (o.path.empty())
    die("usage: framer_bench FILE [--expect N] [--chunk BYTES] [--runs N] [--seconds S]");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  const std::vector<std::uint8_t> bytes = read_file(o.path);
  const bytes_view stream(bytes);

  const timing whole = measure([&] { return frame_whole(stream); }, o.runs, o.seconds);
  const std::size_t messages = whole.result;
  if (o.expect >= 0 && messages != static_cast<std::size_t>(o.expect))
    die("framed " + std::to_string(messages) + " messages, expected " +
        std::to_string(o.expect));

  std::string chunked_json = "null";
  if (o.chunk > 0) {
    chunked_feeder feeder(o.chunk);
    const timing chunked = measure([&] { return feeder(stream); }, o.runs, o.seconds);
    if (chunked.result != messages)
      die("chunked framing found " + std::to_string(chunked.result) + " messages, not " +
          std::to_string(messages));
    chunked_json = json_result(chunked, bytes.size(), messages) +
                   ", \"chunk\": " + std::to_string(o.chunk) + "}";
  }

  const timing floor = measure([&] { return count_dots(stream); }, o.runs, o.seconds);

  // messages_per_s of the floor is the stream's messages over its time, for
  // comparison; "dots" is what it actually counted.
  std::printf(
      "{\"bytes\": %zu, \"messages\": %zu, \"expected\": %lld, "
      "\"runs\": %d, \"framer_whole\": %s}, \"framer_chunked\": %s, "
      "\"memchr\": %s, \"dots\": %zu}}\n",
      bytes.size(), messages, o.expect, o.runs,
      json_result(whole, bytes.size(), messages).c_str(), chunked_json.c_str(),
      json_result(floor, bytes.size(), messages).c_str(), floor.result);
  return 0;
}
