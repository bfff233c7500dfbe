// Internal to src/http: the per-client options of a stream (GET
// /stream.mjpg, /?action=stream and /ws/stream), read from the query:
//
//   ?fps=N     at most N parts per second for this client (0 < N <= the
//              source's rate); the client skips the rest, newest-only still
//   ?mirror=1  the picture flipped horizontally
//   ?width=N   the picture scaled to about N px wide, aspect kept (16 <= N
//              <= the source's width, even): N is rounded down to a multiple
//              of kVariantWidthStep, so nearby widths share one variant
//   ?parts=early|full  (MJPEG) early: each part's headers are sent as soon
//              as the previous part ends, with Content-Type only, so that a
//              browser shows every frame as soon as it has it (see
//              mjpeg_session.cpp); full (the default): every part carries
//              Content-Length and the X-Frame-* headers
//
// mirror and width choose a pixel variant, encoded once for all the clients
// that ask for it (variant_streams.h), and only a few at a time
// (--max-variants): rounding widths keeps clients that ask for 320, 321 and
// 330 on one variant instead of three. Other parameters are ignored.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include "core/expected.h"
#include "encode/encode.h"
#include "http/http.h"

namespace freshframe::http {

inline constexpr double kMaxStreamFps = 240;  // when the source's rate is unknown
inline constexpr int kMinVariantWidth = 16;
// Widths asked for are rounded down to a multiple of this: the width served.
inline constexpr int kVariantWidthStep = 16;
inline constexpr int kMaxVariantWidth = 7680;  // when the source's width is unknown

struct StreamQuery {
  double fps = 0;              // rate cap; 0: none
  encode::VariantKey variant;  // default: the stream everyone else gets
  bool early_parts = false;    // ?parts=early (MJPEG only)
};

// The options of `target`, checked against `source` (0 fields: unknown). An
// Error, for a 400, says which value is wrong and what is accepted:
// fps a number in (0, source fps rounded up]; mirror 0, 1, false or true;
// parts early or full;
// width an even integer in [16, source width], rounded down to a multiple of
// kVariantWidthStep; the source's own width is no scaling (variant width 0).
Expected<StreamQuery> ParseStreamQuery(std::string_view target, const SourceFormat& source);

}  // namespace freshframe::http
