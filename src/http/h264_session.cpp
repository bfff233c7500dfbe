// The session of GET /stream.h264: the H.264 elementary stream (Annex B, SPS
// and PPS before each IDR) as the body of one endless response, for ffplay,
// ffmpeg, VLC and GStreamer. It starts at an IDR and skips to the next one
// when the client cannot keep up (part_session.h), so a player never gets a
// P-frame whose reference it missed.
#include <boost/asio/buffer.hpp>

#include "http/part_session.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

class H264Session final : public BodyPartSession {
 public:
  H264Session(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
              std::string peer, std::string path, LeasePtr lease)
      : BodyPartSession(std::move(stream), context, std::move(target), std::move(peer),
                        std::move(path), std::move(lease), StreamQuery{}, "h264",
                        encode::Codec::kH264) {}

  void Start() { StartBody(); }

 private:
  // The access unit as it is: Annex B is self-delimiting (start codes).
  void WritePart(const StreamPart& part) override {
    const auto& bytes = part.frame->bytes;
    WriteBody(net::buffer(bytes.data(), bytes.size()));
  }
};

}  // namespace

void StartH264Session(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
                      std::string peer, std::string path, LeasePtr lease) {
  std::make_shared<H264Session>(std::move(stream), context, std::move(target), std::move(peer),
                                std::move(path), std::move(lease))
      ->Start();
}

}  // namespace freshframe::http
