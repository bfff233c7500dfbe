// Internal to src/http: the part stream of each pixel variant in use.
//
// A client that asks for a variant (?mirror=1, ?width=N) gets a feed of that
// variant's PartStream. The first feed of a variant adds an encoder for it to
// the pipeline's VariantEncoders, which delivers each frame it encodes into
// the variant's PartStream; when the last feed goes, both go. So a variant is
// encoded once per frame however many clients watch it, and only while
// someone does. The default variant is the server's Fanout: a feed of it
// holds Demand, so that the pipeline's encoder runs, and nothing else.
//
// Each variant costs an encoder, a full-size buffer and an encode per frame,
// so at most --max-variants distinct ones are in use at a time. A stream
// request is checked with Reserve before its response header is sent (a
// refusal is a 503), and its session opens the variant later: the place
// Reserve took is kept for it until then (kReservationTimeout at most), so
// another client cannot take it in between. Clients of a variant in use are
// never refused.
//
// Thread-safety: every member may be called from any thread. Feeds must not
// outlive the VariantStreams (sessions end before the server's Impl goes).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/demand.h"
#include "core/expected.h"
#include "encode/encode.h"
#include "http/fanout.h"

namespace freshframe::http {

class VariantStreams {
 public:
  // `encoders` may be null: then only the default variant exists.
  VariantStreams(encode::VariantEncoders* encoders, PartStream& default_stream, Demand& demand);

  // How long a place taken by Reserve waits for its Open.
  static constexpr std::chrono::seconds kReservationTimeout{5};

  // Takes a place among `max_variants` (0: no limit) for one client that is
  // about to Open `key`; nothing for the default key, which costs no place.
  // An Error, with the reason a 503 gives, when `key` is neither in use nor
  // reserved and every place is (or no encoders exist, or after Close).
  // `now_us` is CLOCK_MONOTONIC (a parameter for tests).
  Expected<bool> Reserve(const encode::VariantKey& key, size_t max_variants, int64_t now_us);
  // A feed of `key`'s parts: while it (or a copy) lives, the variant is
  // encoded. Takes the place Reserve kept for it; without one, it takes a
  // free place if there is one (as Reserve would). An Error, saying why, for
  // a non-default key without encoders or a place, or once closed.
  Expected<std::shared_ptr<PartStream>> Open(const encode::VariantKey& key, size_t max_variants,
                                             int64_t now_us);
  // Closes every variant's part stream (PartStream::Close) and opens no
  // more: from then on the encoders' thread reaches no session. Server::Stop
  // calls it before the sessions' io_context goes.
  void Close();
  bool available() const { return encoders_ != nullptr; }

  // The variants in use: [{"mirror", "width", "height", "clients",
  // "encoded_frames"}]; width and height are those of the last frame (what
  // is served), or before one the width asked for.
  nlohmann::json ToJson() const;

 private:
  struct Variant;
  struct Feed;
  // Places kept by Reserve for clients that have not opened yet.
  struct Reservation {
    int clients = 0;
    int64_t deadline_us = 0;  // for all of them, from the latest Reserve
  };

  // Under mutex_: forgets released variants and expired reservations.
  void Prune(int64_t now_us);
  // Under mutex_: whether `key` has a place, or one can be taken for it;
  // else the reason it cannot.
  Expected<bool> HasPlace(const encode::VariantKey& key, size_t max_variants) const;

  encode::VariantEncoders* const encoders_;
  PartStream& default_stream_;
  Demand& demand_;
  mutable std::mutex mutex_;
  std::map<encode::VariantKey, std::weak_ptr<Variant>> variants_;
  std::map<encode::VariantKey, Reservation> reserved_;
  bool closed_ = false;
};

}  // namespace freshframe::http
