// The wire format of `framing: link` (docs/framing.md): the hello that
// opens or resumes a link, and the frames after it. Pure: bytes in, events
// out, no I/O, like the framer.
//
// A DATA frame is exactly a `framing: length` message (a 4-byte big-endian
// length, or 0xFFFFFFFF and an 8-byte one, then the bytes), so the stream
// of a link's messages reads as a length-framed stream; control frames use
// the 4-byte values length framing leaves unused (0x80000000 and up, but
// its escape), each followed by its fields:
//
//   0x80000001 ACK        u64: every message up to this number is written
//                         to the sender's far endpoint (cumulative)
//   0x80000002 KEEPALIVE  -
//   0x80000003 END        u64: the number of the sender's last message; its
//                         source ended cleanly
//
// Numbers are big-endian and count a side's messages from 1, over the
// link's whole life: DATA frames carry none, as each side knows where the
// other resumed.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "pickleway/framer.hpp"

namespace pickleway::link_wire {

inline constexpr std::uint8_t version = 1;
inline constexpr std::array<std::uint8_t, 3> magic = {'P', 'W', 'L'};
using link_id = std::array<std::uint8_t, 16>;

// The connector's first bytes: magic, version, kind, link id, and the
// number of the next message it expects.
enum class hello_kind : std::uint8_t { open = 1, resume = 2 };
struct hello {
  hello_kind kind = hello_kind::open;
  link_id id{};
  std::uint64_t next_expected = 1;
};
inline constexpr std::size_t hello_size = 3 + 1 + 1 + 16 + 8;

// The acceptor's answer: magic, version, status, its next expected.
enum class welcome_status : std::uint8_t {
  ok = 0,
  unknown_link = 1,  // a resume of a link it does not know (its gateway restarted)
  bad_version = 2,   // `version` says which it speaks
};
struct welcome {
  std::uint8_t version = link_wire::version;
  welcome_status status = welcome_status::ok;
  std::uint64_t next_expected = 1;
};
inline constexpr std::size_t welcome_size = 3 + 1 + 1 + 8;

void encode(const hello& h, std::vector<std::uint8_t>& out);
void encode(const welcome& w, std::vector<std::uint8_t>& out);

// Reads a hello or a welcome from the first bytes of a connection:
// need_more (nothing consumed), done, or bad (`error` says why).
enum class parse_status : std::uint8_t { need_more, done, bad };
parse_status parse(bytes_view data, hello& h, std::string& error);
parse_status parse(bytes_view data, welcome& w, std::string& error);

enum class control : std::uint32_t { ack = 0x8000'0001, keepalive = 0x8000'0002, end = 0x8000'0003 };

void encode_ack(std::uint64_t written, std::vector<std::uint8_t>& out);
void encode_keepalive(std::vector<std::uint8_t>& out);
void encode_end(std::uint64_t last, std::vector<std::uint8_t>& out);
// A DATA frame's header for a message of `size` bytes (the bytes follow).
void encode_data_header(std::uint64_t size, std::vector<std::uint8_t>& out);

// One step of reading frames: the header at the start of `data`.
struct frame {
  enum class kind : std::uint8_t { need_more, data, ack, keepalive, end, bad };
  kind what = kind::need_more;
  std::size_t consumed = 0;  // bytes of the header (and of a control frame's fields)
  std::uint64_t number = 0;  // data: the message's size, which follows; ack, end: the number
  std::string error;         // bad: why
};

// A DATA frame is reported at its header, so that its bytes can be passed
// on as they come; one longer than `max_message` is bad.
frame next_frame(bytes_view data, std::uint64_t max_message);

}  // namespace pickleway::link_wire
