// The compress filter through its built plugin, without the engine. A link
// has two gateways: the sender's instance compresses a->b, the receiver's
// restores b->a, each with its own filter instance, as on two hosts.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>

#include "support/corpus.hpp"
#include "support/plugin_driver.hpp"
#include "support/process.hpp"

namespace pickleway::test {
namespace {

using bytes = std::vector<std::uint8_t>;

const char* const codecs[] = {"zstd", "lz4", "zlib"};

option_value text(std::string s) { return {std::move(s), "test"}; }
option_value number(std::int64_t n) { return {n, "test"}; }

std::unique_ptr<filter_factory> compress(const std::string& codec,
                                         std::optional<std::int64_t> level = std::nullopt,
                                         std::int64_t min_size = 0) {
  auto values = options({{"codec", text(codec)}, {"min_size", number(min_size)}});
  if (level) values.set("level", number(*level));
  return make_filter("compress", values);
}

// One gateway's compress filter: its factory and one instance of it.
struct gateway_filter {
  explicit gateway_filter(std::unique_ptr<filter_factory> f)
      : factory(std::move(f)), instance(make_instance(*factory, open_context{"test", 1, nullptr})) {}
  std::unique_ptr<filter_factory> factory;
  std::unique_ptr<filter> instance;
};

struct outcome {
  filter_result result;
  bytes out;
  std::string error;
};

outcome pass_through(filter& f, direction d, const bytes& in, std::uint64_t sequence) {
  message m(in, sequence);
  outcome o;
  o.result = f.on_message(d, m, o.error);
  o.out = m.replaced() ? m.take_replacement() : in;
  return o;
}

// a->b through the sending gateway: the frame for the wire.
bytes send(gateway_filter& g, const bytes& in, std::uint64_t sequence) {
  auto o = pass_through(*g.instance, direction::a_to_b, in, sequence);
  REQUIRE_MESSAGE(o.result == filter_result::pass, o.error);
  return std::move(o.out);
}

// b->a through the receiving gateway.
outcome receive(gateway_filter& g, const bytes& frame, std::uint64_t sequence) {
  return pass_through(*g.instance, direction::b_to_a, frame, sequence);
}

// The messages of every corpus, in order.
std::vector<bytes> corpus_messages() {
  std::vector<bytes> out;
  for (const auto& c : corpora())
    for (const auto& m : c.messages) {
      const auto begin = c.stream.begin() + static_cast<std::ptrdiff_t>(m.offset);
      out.emplace_back(begin, begin + static_cast<std::ptrdiff_t>(m.size));
    }
  return out;
}

// A stream of small pickles, as a service sends them: dicts of a few short
// fields, about 60 bytes each (protocol 4), made by python3.
const std::vector<bytes>& small_pickles() {
  static const std::vector<bytes> messages = [] {
    const auto r = run({PICKLEWAY_PYTHON, "-c",
                        "import pickle, struct, sys\n"
                        "syms = ['AAPL', 'MSFT', 'GOOG', 'AMZN']\n"
                        "for i in range(5000):\n"
                        "    p = pickle.dumps({'seq': i, 'sym': syms[i % 4], 'qty': 100 + i % 9,\n"
                        "                      'side': 'buy' if i % 3 else 'sell'}, 4)\n"
                        "    sys.stdout.buffer.write(struct.pack('>I', len(p)) + p)\n"});
    REQUIRE(r.exit_status == 0);
    std::vector<bytes> out;
    for (std::size_t at = 0; at + 4 <= r.out.size();) {
      std::size_t n = 0;
      for (int i = 0; i < 4; ++i)
        n = n << 8 | static_cast<std::uint8_t>(r.out[at + static_cast<std::size_t>(i)]);
      at += 4;
      out.emplace_back(r.out.begin() + static_cast<std::ptrdiff_t>(at),
                       r.out.begin() + static_cast<std::ptrdiff_t>(at + n));
      at += n;
    }
    REQUIRE(out.size() == 5000);
    return out;
  }();
  return messages;
}

// Sends `messages` through a fresh link and checks each comes back intact;
// the frames, for a look at them.
std::vector<bytes> round_trip(const std::string& codec, const std::vector<bytes>& messages,
                              std::optional<std::int64_t> level = std::nullopt,
                              std::int64_t min_size = 0) {
  gateway_filter sender(compress(codec, level, min_size));
  gateway_filter receiver(compress(codec));  // level and min_size are the sender's business
  std::vector<bytes> frames;
  std::uint64_t sequence = 0;
  for (const auto& m : messages) {
    ++sequence;
    frames.push_back(send(sender, m, sequence));
    const auto back = receive(receiver, frames.back(), sequence);
    REQUIRE_MESSAGE(back.result == filter_result::pass, back.error);
    REQUIRE_MESSAGE(back.out == m, "message " << sequence << " differs after the round trip");
  }
  return frames;
}

std::size_t total(const std::vector<bytes>& v) {
  std::size_t n = 0;
  for (const auto& b : v) n += b.size();
  return n;
}

}  // namespace

TEST_CASE("compress restores every message of the corpora, with each codec") {
  const auto messages = corpus_messages();
  REQUIRE(messages.size() > 100);
  for (const char* codec : codecs) {
    SUBCASE(codec) {
      const auto frames = round_trip(codec, messages);
      CHECK(total(frames) < total(messages));
    }
  }
  SUBCASE("zstd at its fastest and its strongest level") {
    round_trip("zstd", messages, -5);
    round_trip("zstd", messages, 19);
  }
  SUBCASE("lz4 HC") { round_trip("lz4", messages, 9); }
  SUBCASE("zlib stored (level 0)") { round_trip("zlib", messages, 0); }
}

TEST_CASE("compress restores messages larger than the codecs' blocks and windows") {
  // 3 MiB of words drawn at random from a few, and 3 MiB of noise: they
  // cross zstd's 1 MiB window, lz4's 64 KiB blocks and zlib's 32 KiB window.
  const std::string_view words[] = {"pickle ", "stream ", "gateway ", "message ",
                                    "frame ",  "codec ",  "window ",  "history "};
  bytes text_like, noise;
  std::uint32_t x = 12345;
  while (noise.size() < (3u << 20)) {
    x = x * 1103515245u + 12345u;
    noise.push_back(static_cast<std::uint8_t>(x >> 24));
    if (text_like.size() < (3u << 20)) {
      const auto w = words[(x >> 16) % 8];
      text_like.insert(text_like.end(), w.begin(), w.end());
    }
  }
  for (const char* codec : codecs) {
    SUBCASE(codec) {
      const auto frames = round_trip(codec, {text_like, noise, text_like, bytes{0x80, 0x04, '.'}});
      CHECK(frames[0].size() < text_like.size() / 2);
      CHECK(frames[1].size() < noise.size() + noise.size() / 100);  // incompressible: little cost
    }
  }
}

TEST_CASE("one context per direction makes a stream of small pickles several times smaller") {
  const auto& messages = small_pickles();
  const auto n = static_cast<double>(messages.size());
  const auto raw = static_cast<double>(total(messages));
  // Frames from one sender for the whole stream, and from a fresh sender
  // per message (each message compressed alone). Ratios: of the frames
  // (2-byte header included), of the payload alone, and on the wire (with
  // the 4-byte length prefix of `framing: length`).
  struct variant {
    const char* codec;
    std::int64_t level;
    double least_ratio;  // of the frames, with one context for the stream
  };
  const variant variants[] = {
      {"zstd", 1, 4.0}, {"zstd", 3, 4.0}, {"lz4", 0, 2.0}, {"zlib", 6, 4.8}};
  char line[256];
  std::snprintf(line, sizeof line,
                "%zu small pickles, %.1f bytes each on average\n"
                "          one context per direction               each message alone\n"
                "codec     frames  payload  wire   us/msg        frames  payload  wire\n",
                messages.size(), raw / n);
  std::string table = line;
  for (const auto& v : variants) {
    const auto started = std::chrono::steady_clock::now();
    const auto frames = round_trip(v.codec, messages, v.level);
    const std::chrono::duration<double, std::micro> took =
        std::chrono::steady_clock::now() - started;
    double alone = 0;
    for (const auto& m : messages) {
      gateway_filter fresh(compress(v.codec, v.level));
      alone += static_cast<double>(send(fresh, m, 1).size());
    }
    const double stream = static_cast<double>(total(frames));
    const double header = 2 * n, prefix = 4 * n;
    std::snprintf(line, sizeof line,
                  "%-4s %3d  %5.2fx  %5.2fx  %5.2fx  %5.2f        %5.2fx  %5.2fx  %5.2fx\n",
                  v.codec, static_cast<int>(v.level), raw / stream, raw / (stream - header),
                  (raw + prefix) / (stream + prefix), took.count() / n, raw / alone,
                  raw / (alone - header), (raw + prefix) / (alone + prefix));
    table += line;
    CHECK(raw / stream >= v.least_ratio);
    CHECK(raw / alone < 1.1);  // alone, each message gains next to nothing
  }
  MESSAGE(table);
}

TEST_CASE("messages under min_size go stored, and the stream stays in step around them") {
  for (const char* codec : codecs) {
    SUBCASE(codec) {
      std::vector<bytes> messages;
      for (const auto& m : small_pickles()) {
        messages.push_back(m);
        if (messages.size() == 600) break;
      }
      // Every third message padded past min_size: they alone are compressed.
      for (std::size_t i = 0; i < messages.size(); i += 3) messages[i].resize(200, 'x');
      const auto frames = round_trip(codec, messages, std::nullopt, 100);
      for (std::size_t i = 0; i < frames.size(); ++i) {
        CAPTURE(i);
        const bool compressed = (frames[i][0] & 0x10) != 0;
        CHECK(compressed == (i % 3 == 0));
        if (!compressed)  // stored: the header, then the message as it is
          CHECK(bytes(frames[i].end() - static_cast<std::ptrdiff_t>(messages[i].size()),
                      frames[i].end()) == messages[i]);
      }
    }
  }
}

TEST_CASE("an incompressible message of 64 KiB or more goes stored, and the stream stays in step") {
  std::uint32_t x = 7;
  const auto noise = [&x](std::size_t n) {
    bytes b(n);
    for (auto& v : b) {
      x = x * 1664525u + 1013904223u;
      v = static_cast<std::uint8_t>(x >> 24);
    }
    return b;
  };
  bytes text;
  while (text.size() < (200u << 10)) {
    const std::string line = "2024-05-01T12:00:00." + std::to_string(text.size()) + ",AMZN,107,buy\n";
    text.insert(text.end(), line.begin(), line.end());
  }
  bytes half = text;  // compressible at its start and end, random in the middle
  const bytes middle = noise(half.size() / 2);
  std::copy(middle.begin(), middle.end(), half.begin() + static_cast<std::ptrdiff_t>(half.size() / 4));
  const std::vector<bytes> messages = {small_pickles()[0], noise(200u << 10), small_pickles()[1],
                                       text, noise((64u << 10) - 1), half, small_pickles()[2]};
  const bool stored[] = {false, true, false, false, false, false, false};
  for (const char* codec : codecs) {
    SUBCASE(codec) {
      const auto frames = round_trip(codec, messages);
      for (std::size_t i = 0; i < frames.size(); ++i) {
        CAPTURE(i);
        CHECK(((frames[i][0] & 0x10) == 0) == stored[i]);
        if (stored[i]) CHECK(frames[i].size() == 2 + messages[i].size());
      }
    }
  }
}

TEST_CASE("an empty message travels as a stored frame") {
  for (const char* codec : codecs) {
    SUBCASE(codec) {
      const auto frames = round_trip(codec, {bytes{}, small_pickles()[0], bytes{}});
      CHECK((frames[0][0] & 0x10) == 0);
      CHECK((frames[1][0] & 0x10) != 0);
    }
  }
}

TEST_CASE("an empty message cut from a buffer keeps both checks in step") {
  // The engine hands an empty length-framed message over as an empty view
  // into its read buffer, where the receiver restores it into an empty
  // vector, whose data() is null: zlib's crc32 starts over at 0 on a null
  // pointer, so neither check may depend on where the bytes are.
  for (const char* codec : codecs) {
    SUBCASE(codec) {
      gateway_filter sender(compress(codec));
      gateway_filter receiver(compress(codec));
      const bytes buffer = small_pickles()[0];
      const bytes_view whole(buffer);
      std::uint64_t sequence = 0;
      for (const bytes_view m : {whole, whole.first(0), whole}) {
        message sent(m, ++sequence);
        std::string error;
        REQUIRE(sender.instance->on_message(direction::a_to_b, sent, error) == filter_result::pass);
        const auto back = receive(receiver, sent.take_replacement(), sequence);
        REQUIRE_MESSAGE(back.result == filter_result::pass, back.error);
        CHECK(back.out == bytes(m.begin(), m.end()));
      }
    }
  }
}

TEST_CASE("the frame header reads mark, flags and codec, then the check") {
  gateway_filter sender(compress("lz4", std::nullopt, 1000));
  const bytes m = small_pickles()[0];
  const auto frame = send(sender, m, 1);  // stored: under min_size
  REQUIRE(frame.size() == 2 + m.size());
  CHECK(frame[0] == 0xE2);  // stored, lz4
  CHECK(bytes(frame.begin() + 2, frame.end()) == m);
  gateway_filter compressing(compress("zlib"));
  CHECK(send(compressing, m, 1)[0] == 0xF3);  // compressed, zlib
  SUBCASE("docs/compress.md's example of a stored frame") {
    gateway_filter storing(compress("zstd", std::nullopt, 64));
    const bytes one = {0x80, 0x04, 0x4B, 0x01, 0x2E};  // pickle.dumps(1, 4)
    // 8B: the low byte of CRC-32 over 05 00 00 00 (the size), then the message.
    CHECK(send(storing, one, 1) == bytes{0xE1, 0x8B, 0x80, 0x04, 0x4B, 0x01, 0x2E});
  }
  SUBCASE("docs/compress.md's example of two zlib frames") {
    gateway_filter zlib_sender(compress("zlib"));
    // pickle.dumps({'seq': 1}, 4) and {'seq': 2}
    const bytes first = {0x80, 0x04, 0x95, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7D,
                         0x94, 0x8C, 0x03, 0x73, 0x65, 0x71, 0x94, 0x4B, 0x01, 0x73, 0x2E};
    bytes second = first;
    second[20] = 0x02;
    CHECK(send(zlib_sender, first, 1) ==
          bytes{0xF3, 0x73, 0x6A, 0x60, 0x99, 0xCA, 0xC3, 0x00, 0x01, 0xB5, 0x53, 0x7A,
                0x98, 0x8B, 0x53, 0x0B, 0xA7, 0x78, 0x33, 0x16, 0xEB, 0x01, 0x00});
    CHECK(send(zlib_sender, second, 2) ==
          bytes{0xF3, 0xB0, 0x6A, 0xC0, 0x22, 0xCC, 0x54, 0xAC, 0x07, 0x00});
  }
  SUBCASE("zstd leaves out the block header of a one-block message, but the first's") {
    gateway_filter zstd_sender(compress("zstd", 1));
    gateway_filter zstd_receiver(compress("zstd"));
    const auto& messages = small_pickles();
    for (std::size_t i = 0; i < 50; ++i) {
      const auto f = send(zstd_sender, messages[i], i + 1);
      CAPTURE(i);
      // The first frame carries the zstd frame header, so it is no lone block.
      CHECK(f[0] == (i == 0 ? 0xF1 : 0xF9));
      const auto back = receive(zstd_receiver, f, i + 1);
      REQUIRE_MESSAGE(back.result == filter_result::pass, back.error);
      CHECK(back.out == messages[i]);
    }
  }
  SUBCASE("no other codec leaves one out, nor a stored frame") {
    gateway_filter zstd_sender(compress("zstd", 1));
    send(zstd_sender, small_pickles()[0], 1);
    bytes f = send(zstd_sender, small_pickles()[1], 2);
    REQUIRE(f[0] == 0xF9);
    for (const char* codec : {"lz4", "zlib"}) {
      CAPTURE(codec);
      gateway_filter receiver(compress(codec));
      gateway_filter other_sender(compress(codec));
      bytes theirs = send(other_sender, small_pickles()[0], 1);
      theirs[0] = static_cast<std::uint8_t>(theirs[0] | 0x08);
      const auto o = receive(receiver, theirs, 1);
      CHECK(o.result == filter_result::fail);
      CHECK(o.error.find("says a block header was left out") != std::string::npos);
    }
    gateway_filter receiver(compress("zstd"));
    const auto o = receive(receiver, bytes{0xE9, 0x00, 0x80, 0x04, 0x4B, 0x01, 0x2E}, 1);
    CHECK(o.result == filter_result::fail);
    CHECK(o.error == "compress: message 1 is stored, yet says a block header was left out");
  }
}

TEST_CASE("compress recognises its frames for a gateway that runs without it, and not stray text") {
  const auto recognise =
      built_plugins().find(plugin_kind::filter, "compress")->descriptor->recognize_output;
  REQUIRE(static_cast<bool>(recognise));
  const auto recognised = [&](const bytes& b) { return recognise(b) != nullptr; };
  const std::string hint =
      "looks like a frame of the compress filter: does this session need compress?";
  const bytes m = small_pickles()[0];
  for (const char* codec : codecs) {
    CAPTURE(codec);
    gateway_filter compressing(compress(codec));
    const auto first = send(compressing, m, 1);
    const auto second = send(compressing, m, 2);  // zstd: its block header left out (F9)
    gateway_filter storing(compress(codec, std::nullopt, 1000));
    const auto stored = send(storing, m, 1);
    for (const bytes* frame : {&first, &second, &stored}) {
      REQUIRE(recognised(*frame));
      CHECK(std::string(recognise(*frame)) == hint);
    }
  }
  const auto text = [](std::string_view s) { return bytes(s.begin(), s.end()); };
  CHECK_FALSE(recognised(m));  // a pickle
  CHECK_FALSE(recognised(text("(lp0\nI1\na.")));
  // Stray prints whose UTF-8 opens with a frame's mark (E1-E3, F1-F3).
  CHECK_FALSE(recognised(text("\xE2\x80\x99quoted\xE2\x80\x99\n")));
  CHECK_FALSE(recognised(text("\xE2\x80\x94 a dash\n")));
  CHECK_FALSE(recognised(text("\xE2\x80\xA6\n")));
  CHECK_FALSE(recognised(text("\xC3\xA9t\xC3\xA9\n")));
  CHECK_FALSE(recognised(text("\xF0\x9F\x98\x80\n")));
  CHECK_FALSE(recognised(text("\xE1")));  // a mark alone
  CHECK_FALSE(recognised(bytes{}));
}

TEST_CASE("a frame of the first format (a 5-byte header) is refused by name") {
  gateway_filter receiver(compress("zstd"));
  // pickle.dumps(1, 4) stored by the first format: C1, CRC-32, the message.
  const auto o = receive(receiver, bytes{0xC1, 0x77, 0x8E, 0xA4, 0x41, 0x80, 0x04, 0x4B, 0x01, 0x2E}, 1);
  CHECK(o.result == filter_result::fail);
  CHECK(o.error.rfind("compress: message 1 from the peer is in the first frame format of "
                      "compress",
                      0) == 0);
}

TEST_CASE("a frame of another codec is refused, naming both codecs") {
  gateway_filter sender(compress("zstd"));
  gateway_filter receiver(compress("lz4"));
  const auto frame = send(sender, small_pickles()[0], 1);
  const auto o = receive(receiver, frame, 1);
  CHECK(o.result == filter_result::fail);
  CHECK(o.error ==
        "compress: message 1 was compressed with zstd, but this compress filter uses "
        "lz4: both gateways must name the same codec");
  SUBCASE("even when the frame is stored") {
    gateway_filter stored_sender(compress("zlib", std::nullopt, 1 << 20));
    gateway_filter other(compress("zstd"));
    const auto r = receive(other, send(stored_sender, small_pickles()[0], 1), 1);
    CHECK(r.result == filter_result::fail);
    CHECK(r.error.find("compressed with zlib") != std::string::npos);
  }
}

TEST_CASE("plain pickles where frames belong are refused: the peer runs no compress filter") {
  gateway_filter receiver(compress("zstd"));
  SUBCASE("a protocol 4 pickle") {
    const auto o = receive(receiver, small_pickles()[0], 1);
    CHECK(o.result == filter_result::fail);
    CHECK(o.error.find("compress: message 1 from the peer is not compressed: it is a plain "
                       "pickle (protocol 4), starting 80 04 95") == 0);
    CHECK(o.error.find("does the peer gateway run the compress filter") != std::string::npos);
  }
  SUBCASE("every corpus message, protocols 0 to 5") {
    for (const auto& m : corpus_messages()) {
      gateway_filter fresh(compress("zstd"));
      const auto o = receive(fresh, m, 1);
      REQUIRE(o.result == filter_result::fail);
      CHECK(o.error.find("is not compressed") != std::string::npos);
    }
  }
  SUBCASE("an empty message") {
    const auto o = receive(receiver, {}, 1);
    CHECK(o.result == filter_result::fail);
    CHECK(o.error.find("it is empty") != std::string::npos);
  }
}

TEST_CASE("a cut or corrupted frame fails the instance and never yields other bytes") {
  // Frames 1-20 of the small-pickle stream, then the frame under test: the
  // receiver is rebuilt for each damaged copy, replaying 1-20 first.
  const auto& messages = small_pickles();
  for (const char* codec : codecs) {
    SUBCASE(codec) {
      gateway_filter sender(compress(codec));
      std::vector<bytes> frames;
      for (std::size_t i = 0; i < 21; ++i) frames.push_back(send(sender, messages[i], i + 1));
      const bytes& last = frames.back();
      const auto receive_last = [&](const bytes& damaged) {
        gateway_filter receiver(compress(codec));
        for (std::size_t i = 0; i < 20; ++i)
          REQUIRE(receive(receiver, frames[i], i + 1).result == filter_result::pass);
        return receive(receiver, damaged, 21);
      };
      std::size_t refused = 0, same = 0;
      for (std::size_t n = 0; n < last.size(); ++n) {  // every cut
        CAPTURE(n);
        const auto o =
            receive_last(bytes(last.begin(), last.begin() + static_cast<std::ptrdiff_t>(n)));
        CHECK(o.result == filter_result::fail);
        CHECK(o.error.rfind("compress: message 21", 0) == 0);
      }
      for (std::size_t at = 0; at < last.size(); ++at) {  // every byte, each bit flipped
        for (int bit = 0; bit < 8; ++bit) {
          bytes damaged = last;
          damaged[at] = static_cast<std::uint8_t>(damaged[at] ^ (1u << bit));
          const auto o = receive_last(damaged);
          if (o.result == filter_result::fail) {
            ++refused;
          } else {
            // A bit the codec ignores (padding): the message, exactly.
            CHECK(o.out == messages[20]);
            ++same;
          }
        }
      }
      CHECK(refused > same);
      MESSAGE(std::string(codec) << ": of " << last.size() * 8 << " single-bit flips, " << refused
                                 << " refused, " << same << " harmless");
    }
  }
}

TEST_CASE("random bytes behind a frame's mark are refused, never restored") {
  std::uint32_t x = 2024;
  const auto next = [&x] {
    x = x * 1664525u + 1013904223u;
    return static_cast<std::uint8_t>(x >> 24);
  };
  for (const char* codec : codecs) {
    SUBCASE(codec) {
      const auto id = static_cast<std::uint8_t>(codec == std::string("zstd")  ? 1
                                                : codec == std::string("lz4") ? 2
                                                                              : 3);
      gateway_filter sender(compress(codec));
      std::vector<bytes> history;
      for (std::size_t i = 0; i < 5; ++i)
        history.push_back(send(sender, small_pickles()[i], i + 1));
      for (int round = 0; round < 300; ++round) {
        // The peer's first frames, then noise marked as a compressed frame
        // of the right codec.
        gateway_filter receiver(compress(codec));
        for (std::size_t i = 0; i < history.size(); ++i)
          REQUIRE(receive(receiver, history[i], i + 1).result == filter_result::pass);
        bytes noise(5 + next() % 200);
        for (auto& b : noise) b = next();
        noise[0] = static_cast<std::uint8_t>(0xD0 | id);
        const auto o = receive(receiver, noise, 6);
        CHECK(o.result == filter_result::fail);
      }
    }
  }
}

TEST_CASE("a frame lost between the two filters is caught by the next one") {
  for (const char* codec : codecs) {
    SUBCASE(codec) {
      gateway_filter sender(compress(codec));
      gateway_filter receiver(compress(codec));
      const auto& m = small_pickles();
      const auto first = send(sender, m[0], 1);
      send(sender, m[1], 2);  // lost on the way
      const auto third = send(sender, m[2], 3);
      REQUIRE(receive(receiver, first, 1).result == filter_result::pass);
      const auto o = receive(receiver, third, 2);
      CHECK(o.result == filter_result::fail);
      CHECK(o.error.rfind("compress: message 2", 0) == 0);
    }
  }
}

TEST_CASE("the compress filter needs a length-framed b side") {
  auto f = compress("zstd");
  CHECK_FALSE(f->check({framing_kind::pickle, framing_kind::length}));
  CHECK_FALSE(f->check({framing_kind::length, framing_kind::length}));
  const auto refused = f->check({framing_kind::length, framing_kind::pickle});
  REQUIRE(refused);
  CHECK(refused->message.find("endpoint b must have `framing: length`") != std::string::npos);
}

TEST_CASE("compress options: the codec's default level, and levels out of range refused") {
  CHECK(compress("zstd")->describe() == "compress codec=zstd level=3 min_size=0");
  CHECK(compress("lz4")->describe() == "compress codec=lz4 level=0 min_size=0");
  CHECK(compress("zlib", 9, 512)->describe() == "compress codec=zlib level=9 min_size=512");
  const struct {
    const char* codec;
    std::int64_t level;
  } wrong[] = {{"zstd", 23}, {"zstd", -200000}, {"lz4", 13}, {"zlib", 10}, {"zlib", -1}};
  for (const auto& w : wrong) {
    CAPTURE(w.codec);
    CAPTURE(w.level);
    option_error error;
    auto made = make_filter(
        "compress", options({{"codec", text(w.codec)}, {"level", number(w.level)}}), &error);
    CHECK_FALSE(made);
    CHECK(error.option == "level");
    CHECK(error.message.find(std::string(w.codec) + " levels run from") != std::string::npos);
  }
}

TEST_CASE("a frame restores no more than endpoint a's max_message, whatever its codec") {
  for (const char* codec : {"zstd", "lz4", "zlib"}) {
    CAPTURE(codec);
    gateway_filter sender(compress(codec));
    const bytes zeros(std::size_t{1} << 20, 0);  // 1 MiB that compresses to a few hundred bytes
    const bytes frame = send(sender, zeros, 1);
    CHECK(frame.size() < 8192);

    auto factory = compress(codec);
    chain_context chain;
    chain.b_framing = framing_kind::length;
    chain.a_max_message = 64 * 1024;
    REQUIRE_FALSE(factory->check(chain));
    gateway_filter receiver(std::move(factory));
    const auto o = receive(receiver, frame, 1);
    CHECK(o.result == filter_result::fail);
    CHECK_MESSAGE(o.error.find("restores more than 65536 bytes") != std::string::npos, o.error);

    SUBCASE("and a's default max_message takes it") {
      auto roomy = compress(codec);
      chain.a_max_message = std::uint64_t{64} << 20;
      REQUIRE_FALSE(roomy->check(chain));
      gateway_filter ok(std::move(roomy));
      const auto restored = receive(ok, frame, 1);
      CHECK(restored.result == filter_result::pass);
      CHECK(restored.out == zeros);
    }
  }
}

}  // namespace pickleway::test
