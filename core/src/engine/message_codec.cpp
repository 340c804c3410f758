#include "engine/message_codec.hpp"

namespace pickleway {
namespace {

class pickle_reader final : public message_reader {
 public:
  explicit pickle_reader(const framer_options& options) : framer_(options) {}

  read_step next(bytes_view data) override { return step(framer_.next(data), data); }
  read_step finish(bytes_view data) override { return step(framer_.finish(data), data); }
  std::size_t wanted() const override { return framer_.bytes_wanted(); }
  std::uint64_t offset() const override { return framer_.stream_offset(); }

 private:
  read_step step(frame_status status, bytes_view data) {
    read_step r{status, 0, {}, nullptr, {}};
    if (status == frame_status::message) {
      r.consumed = framer_.message().size;
      r.message = data.first(r.consumed);
      r.info = &framer_.message();
    } else if (status == frame_status::stray) {
      r.consumed = framer_.stray_size();
      r.message = data.first(r.consumed);
    } else if (status == frame_status::error) {
      r.error = framer_.error().describe();
      r.code = framer_.error().code;
    }
    return r;
  }

  framer framer_;
};

// multiprocessing.connection's framing: a signed 32-bit big-endian length,
// or -1 and then an unsigned 64-bit one, then the bytes.
class length_reader final : public message_reader {
 public:
  length_reader(std::uint64_t max_message, std::uint64_t first_offset)
      : max_(max_message), offset_(first_offset) {}

  read_step next(bytes_view data) override {
    if (!error_.empty()) return failed();
    std::size_t header = 4;
    if (data.size() < header) return need(header);
    std::int64_t length = static_cast<std::int32_t>(load_be(data.first(4)));
    if (length == -1) {
      header = 12;
      if (data.size() < header) return need(header);
      const std::uint64_t wide = load_be(data.subspan(4, 8));
      if (wide > max_) return too_large(wide);
      length = static_cast<std::int64_t>(wide);
    } else if (length < 0) {
      code_ = errc::bad_length;
      error_ = "offset " + std::to_string(offset_) + ": negative length " + std::to_string(length) +
               " in a length-framed stream";
      return failed();
    }
    if (static_cast<std::uint64_t>(length) > max_) return too_large(static_cast<std::uint64_t>(length));
    const std::size_t total = header + static_cast<std::size_t>(length);
    if (data.size() < total) return need(total);
    offset_ += total;
    return {frame_status::message, total, data.subspan(header, total - header), nullptr, {}};
  }

  read_step finish(bytes_view data) override {
    if (!error_.empty()) return failed();
    if (data.empty()) return {frame_status::end, 0, {}, nullptr, {}};
    code_ = errc::truncated_message;
    error_ = "offset " + std::to_string(offset_ + data.size()) + ": stream ended inside a message (" +
             std::to_string(data.size()) + " bytes lost of a message that began at offset " +
             std::to_string(offset_) + ")";
    return failed();
  }

  std::size_t wanted() const override { return wanted_; }
  std::uint64_t offset() const override { return offset_; }

 private:
  static std::uint64_t load_be(bytes_view b) {
    std::uint64_t v = 0;
    for (const std::uint8_t byte : b) v = (v << 8) | byte;
    return v;
  }
  read_step need(std::size_t total) {
    wanted_ = total;
    return {frame_status::need_more, 0, {}, nullptr, {}};
  }
  read_step too_large(std::uint64_t length) {
    code_ = errc::message_too_large;
    error_ = "offset " + std::to_string(offset_) + ": message larger than max_message (" +
             std::to_string(length) + " bytes, max_message is " + std::to_string(max_) + ")";
    return failed();
  }
  read_step failed() const { return {frame_status::error, 0, {}, nullptr, error_, code_}; }

  std::uint64_t max_;
  std::uint64_t offset_ = 0;
  std::size_t wanted_ = 4;
  std::string error_;
  errc code_ = errc::ok;
};

}  // namespace

std::unique_ptr<message_reader> make_reader(const framing_config& framing,
                                           std::uint64_t first_offset) {
  if (framing.kind != framing_kind::pickle)  // a link's messages are length-framed
    return std::make_unique<length_reader>(framing.pickle.max_message, first_offset);
  return std::make_unique<pickle_reader>(framing.pickle);
}

std::string whole_pickle_problem(bytes_view message, framer& check, errc& cause) {
  check.restart();
  frame_status status = check.next(message);
  if (status == frame_status::need_more) status = check.finish(message);
  cause = errc::incomplete_pickle;
  if (status == frame_status::error) {
    cause = check.error().code;
    return check.error().describe();
  }
  if (status != frame_status::message) return "it holds no pickle";
  cause = errc::stray_bytes;
  if (check.message().size != message.size())
    return std::to_string(message.size() - check.message().size) +
           " bytes follow the pickle's STOP opcode";
  cause = errc::ok;
  return {};
}

std::size_t length_header(std::uint64_t size, std::array<std::uint8_t, 12>& header) {
  std::size_t used = 0;
  const auto put_be = [&](std::uint64_t v, int width) {
    for (int shift = (width - 1) * 8; shift >= 0; shift -= 8) header[used++] = static_cast<std::uint8_t>(v >> shift);
  };
  if (size <= 0x7FFF'FFFF) {
    put_be(size, 4);
  } else {  // as multiprocessing.connection writes a large message
    put_be(0xFFFF'FFFF, 4);
    put_be(size, 8);
  }
  return used;
}

void encode_message(framing_kind kind, bytes_view message, std::vector<std::uint8_t>& out) {
  if (kind != framing_kind::pickle) {
    std::array<std::uint8_t, 12> header;
    const std::size_t n = length_header(message.size(), header);
    out.insert(out.end(), header.begin(), header.begin() + static_cast<std::ptrdiff_t>(n));
  }
  out.insert(out.end(), message.begin(), message.end());
}

}  // namespace pickleway
