// Writes seeds for compress_fuzz: for each codec, the frames the compress
// filter makes of the given messages (for the restoring mode 0), and
// the messages themselves (for the round-trip modes 2 and 3).
//
//   compress_seeds OUTDIR MESSAGE_FILE...   (each file one message, < 64 KiB)
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <pickleway/plugin.hpp>


extern "C" const void* pickleway_plugin;  // BOOST_DLL_ALIAS in compress.cpp

namespace {

using namespace pickleway;
using bytes = std::vector<std::uint8_t>;

constexpr const char* codec_names[] = {"zstd", "lz4", "zlib"};

// The messages as one sending instance of `codec` frames them.
std::vector<bytes> frames_of(const std::vector<bytes>& messages, int codec) {
  const auto describe = reinterpret_cast<plugin_entry_fn*>(const_cast<void*>(pickleway_plugin));
  option_values values;
  values.set_where("seeds");
  values.set("codec", {std::string(codec_names[codec]), "seeds"});
  values.set("min_size", {std::int64_t{0}, "seeds"});  // its default, which the core would fill in
  option_error error;
  const auto factory = describe()->make_filter(values, error);
  std::string made_error;
  const auto sender = factory->make(open_context{"seeds", 1, nullptr}, made_error);
  std::vector<bytes> frames;
  std::uint64_t sequence = 0;
  for (const bytes& m : messages) {
    message msg(m, ++sequence);
    std::string why;
    if (sender->on_message(direction::a_to_b, msg, why) != filter_result::pass) {
      std::cerr << "compress_seeds: " << why << "\n";
      std::exit(1);
    }
    frames.push_back(msg.take_replacement());
  }
  return frames;
}

void put_piece(bytes& out, const bytes& piece) {
  out.push_back(static_cast<std::uint8_t>(piece.size()));
  out.push_back(static_cast<std::uint8_t>(piece.size() >> 8));
  out.insert(out.end(), piece.begin(), piece.end());
}

void write(const std::string& path, const bytes& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                              static_cast<std::streamsize>(b.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: compress_seeds OUTDIR MESSAGE_FILE...\n";
    return 2;
  }
  const std::string out = argv[1];
  std::vector<bytes> messages;
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    messages.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (messages.back().size() > 0xFFFF) messages.pop_back();
  }
  for (int codec = 0; codec < 3; ++codec) {
    const std::vector<bytes> frames = frames_of(messages, codec);
    const auto c = static_cast<std::uint8_t>(codec);
    const std::string stem = out + "/" + codec_names[codec];
    // Mode 0: the frames into a receiving filter.
    bytes restore{c, 0, 0};
    for (const bytes& f : frames) put_piece(restore, f);
    write(stem + "-restore", restore);
    // Modes 2 and 3: the messages; level choice 0 and min_size choice 0.
    bytes trip{static_cast<std::uint8_t>(c | 2 << 2), 0, 0};
    bytes corrupt{static_cast<std::uint8_t>(c | 3 << 2), 0, 0};
    for (const bytes& m : messages) {
      put_piece(trip, m);
      put_piece(corrupt, m);
      corrupt.insert(corrupt.end(), {0, 0, 0});  // position 0, nothing flipped
    }
    write(stem + "-round-trip", trip);
    write(stem + "-corrupt", corrupt);
  }
  return 0;
}
