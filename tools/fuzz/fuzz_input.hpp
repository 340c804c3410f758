// What the fuzz targets share: reading their settings off the front of the
// input, and failing loudly on a broken invariant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string_view>

namespace pickleway::fuzz {

using bytes_view = std::span<const std::uint8_t>;

// A broken invariant is a finding: say which, then abort so that libFuzzer
// saves the input. Not assert(): it must hold in every build type.
[[noreturn]] inline void broken(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
  std::abort();
}

#define PICKLEWAY_FUZZ_CHECK(condition) \
  ((condition) ? void(0) : ::pickleway::fuzz::broken(#condition, __FILE__, __LINE__))

// Settings first, then the payload: take() reads from the front, rest()
// gives what is left. Past the end take() gives 0, so every input is valid.
class input {
 public:
  input(const std::uint8_t* data, std::size_t size) : bytes_(data, size) {}

  std::uint8_t take() {
    if (bytes_.empty()) return 0;
    const std::uint8_t b = bytes_.front();
    bytes_ = bytes_.subspan(1);
    return b;
  }
  std::uint16_t take16() {
    const auto low = take();
    return static_cast<std::uint16_t>(low | (take() << 8));
  }
  // Up to `n` bytes from the front.
  bytes_view take_bytes(std::size_t n) {
    const auto got = bytes_.first(n < bytes_.size() ? n : bytes_.size());
    bytes_ = bytes_.subspan(got.size());
    return got;
  }
  bytes_view rest() const { return bytes_; }
  bool empty() const { return bytes_.empty(); }

 private:
  bytes_view bytes_;
};

// A copy of `bytes` in a heap block of exactly its size, so that AddressSanitizer
// catches a read one byte past what a parser was given.
class exact_copy {
 public:
  explicit exact_copy(bytes_view bytes)
      : data_(std::make_unique<std::uint8_t[]>(bytes.size())), size_(bytes.size()) {
    for (std::size_t i = 0; i < size_; ++i) data_[i] = bytes[i];
  }
  bytes_view view() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t size_;
};

inline std::string_view text(bytes_view b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace pickleway::fuzz
