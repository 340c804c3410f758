#include "engine/link_protocol.hpp"

#include <algorithm>
#include <cstdio>

namespace pickleway::link_wire {
namespace {

void put_be(std::uint64_t v, int width, std::vector<std::uint8_t>& out) {
  for (int shift = (width - 1) * 8; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::uint64_t get_be(const std::uint8_t* p, int width) {
  std::uint64_t v = 0;
  for (int i = 0; i < width; ++i) v = (v << 8) | p[i];
  return v;
}

// The magic and version both messages start with.
parse_status opening(bytes_view data, std::size_t size, std::uint8_t& peer_version,
                     std::string& error) {
  const std::size_t have = std::min(data.size(), magic.size());
  if (!std::equal(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(have), magic.begin())) {
    error = "not a pickleway link: the peer does not speak framing: link";
    return parse_status::bad;
  }
  if (data.size() < magic.size() + 1) return parse_status::need_more;
  peer_version = data[3];
  if (peer_version == 0) {
    error = "a link hello of version 0";
    return parse_status::bad;
  }
  return data.size() < size ? parse_status::need_more : parse_status::done;
}

}  // namespace

void encode(const hello& h, std::vector<std::uint8_t>& out) {
  out.insert(out.end(), magic.begin(), magic.end());
  out.push_back(version);
  out.push_back(static_cast<std::uint8_t>(h.kind));
  out.insert(out.end(), h.id.begin(), h.id.end());
  put_be(h.next_expected, 8, out);
}

void encode(const welcome& w, std::vector<std::uint8_t>& out) {
  out.insert(out.end(), magic.begin(), magic.end());
  out.push_back(w.version);
  out.push_back(static_cast<std::uint8_t>(w.status));
  put_be(w.next_expected, 8, out);
}

parse_status parse(bytes_view data, hello& h, std::string& error) {
  std::uint8_t v = 0;
  // A hello of a later version may be longer: its first bytes say so, and
  // the acceptor answers bad_version without reading the rest.
  const parse_status s = opening(data, hello_size, v, error);
  if (s == parse_status::bad) return s;
  if (data.size() >= magic.size() + 1 && v != version) {
    error = "link version " + std::to_string(v);
    return parse_status::bad;
  }
  if (s == parse_status::need_more) return s;
  const std::uint8_t kind = data[4];
  if (kind != static_cast<std::uint8_t>(hello_kind::open) &&
      kind != static_cast<std::uint8_t>(hello_kind::resume)) {
    error = "a link hello of unknown kind " + std::to_string(kind);
    return parse_status::bad;
  }
  h.kind = static_cast<hello_kind>(kind);
  std::copy_n(data.begin() + 5, h.id.size(), h.id.begin());
  h.next_expected = get_be(data.data() + 21, 8);
  if (h.next_expected == 0) {
    error = "a link hello that expects message 0";
    return parse_status::bad;
  }
  return parse_status::done;
}

parse_status parse(bytes_view data, welcome& w, std::string& error) {
  const parse_status s = opening(data, welcome_size, w.version, error);
  if (s != parse_status::done) return s;
  const std::uint8_t status = data[4];
  if (status > static_cast<std::uint8_t>(welcome_status::bad_version)) {
    error = "a link welcome of unknown status " + std::to_string(status);
    return parse_status::bad;
  }
  w.status = static_cast<welcome_status>(status);
  w.next_expected = get_be(data.data() + 5, 8);
  if (w.status == welcome_status::ok && (w.version != version || w.next_expected == 0)) {
    error = w.version != version ? "link version " + std::to_string(w.version)
                                 : "a link welcome that expects message 0";
    return parse_status::bad;
  }
  return parse_status::done;
}

void encode_ack(std::uint64_t written, std::vector<std::uint8_t>& out) {
  put_be(static_cast<std::uint32_t>(control::ack), 4, out);
  put_be(written, 8, out);
}

void encode_keepalive(std::vector<std::uint8_t>& out) {
  put_be(static_cast<std::uint32_t>(control::keepalive), 4, out);
}

void encode_end(std::uint64_t last, std::vector<std::uint8_t>& out) {
  put_be(static_cast<std::uint32_t>(control::end), 4, out);
  put_be(last, 8, out);
}

void encode_data_header(std::uint64_t size, std::vector<std::uint8_t>& out) {
  if (size <= 0x7FFF'FFFF) {
    put_be(size, 4, out);
  } else {  // as multiprocessing.connection writes a large message
    put_be(0xFFFF'FFFF, 4, out);
    put_be(size, 8, out);
  }
}

frame next_frame(bytes_view data, std::uint64_t max_message) {
  frame f;
  if (data.size() < 4) return f;
  const std::uint32_t head = static_cast<std::uint32_t>(get_be(data.data(), 4));
  const auto fields = [&](std::size_t n, frame::kind k) {
    if (data.size() < 4 + n) return;
    f.what = k;
    f.consumed = 4 + n;
    if (n) f.number = get_be(data.data() + 4, 8);
  };
  switch (head) {
    case static_cast<std::uint32_t>(control::ack): fields(8, frame::kind::ack); return f;
    case static_cast<std::uint32_t>(control::keepalive): fields(0, frame::kind::keepalive); return f;
    case static_cast<std::uint32_t>(control::end): fields(8, frame::kind::end); return f;
    default: break;
  }
  std::uint64_t size = head;
  std::size_t header = 4;
  if (head == 0xFFFF'FFFF) {
    if (data.size() < 12) return f;
    size = get_be(data.data() + 4, 8);
    header = 12;
  } else if (head & 0x8000'0000u) {
    f.what = frame::kind::bad;
    f.error = "an unknown link frame 0x" + [&] {
      char hex[16];
      std::snprintf(hex, sizeof hex, "%08x", head);
      return std::string(hex);
    }();
    return f;
  }
  if (size > max_message) {
    f.what = frame::kind::bad;
    f.error = "message larger than max_message (" + std::to_string(size) + " bytes, max_message is " +
              std::to_string(max_message) + ")";
    return f;
  }
  f.what = frame::kind::data;
  f.consumed = header;
  f.number = size;
  return f;
}

}  // namespace pickleway::link_wire
