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
// Thread-safety: every member may be called from any thread. Feeds must not
// outlive the VariantStreams (sessions end before the server's Impl goes).
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include <nlohmann/json_fwd.hpp>

#include "core/demand.h"
#include "encode/encode.h"
#include "http/fanout.h"

namespace freshframe::http {

class VariantStreams {
 public:
  // `encoders` may be null: then only the default variant exists.
  VariantStreams(encode::VariantEncoders* encoders, PartStream& default_stream, Demand& demand);

  // A feed of `key`'s parts: while it (or a copy) lives, the variant is
  // encoded. nullptr for a non-default key without encoders, or once closed.
  std::shared_ptr<PartStream> Open(const encode::VariantKey& key);
  // Closes every variant's part stream (PartStream::Close) and opens no
  // more: from then on the encoders' thread reaches no session. Server::Stop
  // calls it before the sessions' io_context goes.
  void Close();
  bool available() const { return encoders_ != nullptr; }

  // The variants in use: [{"mirror", "width", "height", "clients",
  // "encoded_frames"}]; width and height are those of the last frame.
  nlohmann::json ToJson() const;

 private:
  struct Variant;
  struct Feed;

  encode::VariantEncoders* const encoders_;
  PartStream& default_stream_;
  Demand& demand_;
  mutable std::mutex mutex_;
  std::map<encode::VariantKey, std::weak_ptr<Variant>> variants_;
  bool closed_ = false;
};

}  // namespace freshframe::http
