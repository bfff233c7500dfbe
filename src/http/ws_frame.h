// Internal to src/http (and its tests): the binary message of GET /ws/stream.
//
// Each WebSocket binary message is one frame: a fixed 32-byte header, then
// the JPEG (SOI .. EOI), nothing else. All integers are little-endian:
//
//   offset size  field
//        0    4  magic "FFWS"
//        4    2  version (u16) = 1
//        6    2  header length (u16) = 32; the JPEG starts here
//        8    8  sequence (u64): the frame's number, as X-Frame-Sequence
//       16    8  capture stamp (u64): CLOCK_MONOTONIC us, as X-Frame-Timestamp
//       24    2  width (u16) of the JPEG
//       26    2  height (u16) of the JPEG
//       28    4  reserved, zero
//
// A reader should take the JPEG from offset `header length`, so that a later
// version may append fields. docs/websocket.md documents the protocol.
//
// Also here: how the server's end of a /ws/stream connection reads the
// client's WebSocket frames (SetServerMessageOptions), shared by the session
// and fuzz/ws_frame_fuzzer.cpp so that the fuzzer reads frames exactly as the
// server does.
//
// Thread-safety: pure functions; SetServerMessageOptions on a stream only
// from the thread (strand) that owns it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "encode/encode.h"

namespace freshframe::http {

inline constexpr size_t kWsHeaderSize = 32;
inline constexpr uint16_t kWsVersion = 1;
using WsHeader = std::array<unsigned char, kWsHeaderSize>;

// GET /ws/h264's messages have the same header with magic "FFH4", the
// access unit's sequence number (EncodedFrame::sequence) at offset 8, and at
// offset 28 a flags byte: bit 0 set for a keyframe (an IDR, SPS/PPS before
// it). The payload is the access unit in Annex B.
inline constexpr char kWsJpegMagic[] = "FFWS";
inline constexpr char kWsH264Magic[] = "FFH4";
inline constexpr unsigned char kWsFlagKeyframe = 1;
// What a /ws/h264 client sends (a text message) to ask for an IDR.
inline constexpr std::string_view kWsKeyRequest = "key";

// The header for `frame`, by its codec.
WsHeader MakeWsHeader(const encode::EncodedFrame& frame);

struct WsHeaderFields {
  uint16_t version = 0;
  uint16_t header_length = 0;
  uint64_t sequence = 0;
  uint64_t capture_us = 0;
  uint16_t width = 0;
  uint16_t height = 0;
  encode::Codec codec = encode::Codec::kJpeg;  // by the magic
  bool keyframe = true;                        // always for JPEG
};

// The header at the start of a message, or nullopt if the message is shorter
// than 32 bytes, the magic is wrong, or the header length is below 32 or
// beyond the message.
std::optional<WsHeaderFields> ParseWsHeader(const unsigned char* data, size_t size);

// The client has nothing to say beyond control frames (ping, pong, close),
// which Beast answers itself; a data message beyond this size fails the
// connection (close code 1009), smaller ones are read and ignored.
inline constexpr size_t kWsMaxClientMessage = 4 * 1024;

// Sets what decides how a server-side boost::beast::websocket::stream
// (`WebSocket`; a template so that this header stays light) reads client
// frames and writes messages: the message size limit above, binary
// messages, and one WebSocket frame per message (one gathered write).
// Beast unmasks, checks lengths, control frames, fragmentation and close
// codes itself.
template <typename WebSocket>
void SetServerMessageOptions(WebSocket& ws) {
  ws.read_message_max(kWsMaxClientMessage);
  ws.binary(true);
  ws.auto_fragment(false);
}

}  // namespace freshframe::http
