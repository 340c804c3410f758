// Calls into a transport's stream from the engine. A stream that throws
// fails like one that returns an error (stream.hpp): these turn the
// exception into io_status::failed, and its text into `threw`.
#pragma once

#include <exception>
#include <span>
#include <string>

#include "pickleway/stream.hpp"

namespace pickleway {

inline io_result read_from(byte_stream& s, std::span<std::uint8_t> into, std::string& threw) {
  try {
    return s.read(into);
  } catch (const std::exception& e) {
    threw = std::string("the transport threw: ") + e.what();
    return io_result::failure({});
  }
}

inline io_result write_to(byte_stream& s, std::span<const std::uint8_t> from, std::string& threw) {
  try {
    return s.write(from);
  } catch (const std::exception& e) {
    threw = std::string("the transport threw: ") + e.what();
    return io_result::failure({});
  }
}

}  // namespace pickleway
