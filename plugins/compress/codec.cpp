#include "codec.hpp"

#include <lz4.h>
#include <lz4frame.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>

namespace pickleway::compress {

std::string_view to_string(codec_id c) {
  switch (c) {
    case codec_id::zstd:
      return "zstd";
    case codec_id::lz4:
      return "lz4";
    case codec_id::zlib:
      return "zlib";
  }
  return "unknown";
}

level_range levels_of(codec_id c) {
  switch (c) {
    case codec_id::zstd:
      return {ZSTD_minCLevel(), ZSTD_maxCLevel(), ZSTD_defaultCLevel()};
    case codec_id::lz4:
      // Negative levels are lz4's --fast=N; 0 to 2 its fast default; 3 up LZ4HC.
      return {-65537, LZ4F_compressionLevel_max(), 0};
    case codec_id::zlib:
      return {0, 9, 6};  // zlib's Z_DEFAULT_COMPRESSION is 6
  }
  return {0, 0, 0};
}

std::unique_ptr<compressor> make_compressor(codec_id c, int level, std::string& error) {
  switch (c) {
    case codec_id::zstd:
      return make_zstd_compressor(level, error);
    case codec_id::lz4:
      return make_lz4_compressor(level, error);
    case codec_id::zlib:
      return make_zlib_compressor(level, error);
  }
  error = "unknown codec";
  return nullptr;
}

std::unique_ptr<decompressor> make_decompressor(codec_id c, std::string& error) {
  switch (c) {
    case codec_id::zstd:
      return make_zstd_decompressor(error);
    case codec_id::lz4:
      return make_lz4_decompressor(error);
    case codec_id::zlib:
      return make_zlib_decompressor(error);
  }
  error = "unknown codec";
  return nullptr;
}

bool looks_incompressible(bytes_view message) {
  constexpr std::size_t slice = std::size_t{16} << 10;
  if (message.size() < probe_from) return false;
  char out[slice];  // what a slice must fit in to count as compressible, and more
  const std::size_t starts[] = {0, message.size() / 2 - slice / 2, message.size() - slice};
  for (const std::size_t start : starts) {
    const auto* in = reinterpret_cast<const char*>(message.data() + start);
    constexpr int room = static_cast<int>(slice - slice / 32);
    if (LZ4_compress_default(in, out, static_cast<int>(slice), room) > 0) return false;
  }
  return true;
}

std::size_t next_capacity(std::size_t current, std::size_t limit, std::size_t input_size,
                          std::size_t last) {
  const std::size_t most = limit + 1;
  if (current == 0) {  // small messages rarely restore to more than 8 times their frame
    constexpr std::size_t least = 1024;
    const std::size_t bound = input_size * 8;
    const std::size_t guess = last > 0 ? std::min(last + 1, bound) : bound;
    return std::min(most, std::max(least, guess));
  }
  return current >= most / 2 ? most : current * 2;
}

}  // namespace pickleway::compress
