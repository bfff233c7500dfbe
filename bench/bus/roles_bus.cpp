// bus_bench child processes: the freshframe bus transports (bus, bus-copy,
// bus-publish): BusPublisher and BusSubscriber.
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include <opencv2/core.hpp>

#include "bus/bus.h"
#include "common.h"
#include "roles.h"

namespace busbench {
namespace {

namespace fb = freshframe::bus;

class BusPublisher : public Publisher {
 public:
  // in_place: the frame is produced straight into a claimed slot (Prepare
  // copies the test image there, standing in for a camera or decoder
  // writing its output) and Send only commits it; otherwise Send is the
  // copying Publish().
  BusPublisher(const RoleArgs& a, bool in_place) : args_(a), in_place_(in_place) {
    frame_.image = TestImage(a);
    frame_.meta.width = a.width;
    frame_.meta.height = a.height;
  }
  bool Setup() override {
    fb::BusOptions options;
    options.slots = static_cast<uint32_t>(args_.slots);
    auto writer = fb::BusWriter::Open(args_.endpoint, options);
    if (!writer) {
      Fail("bus writer: " + writer.error().message);
      return false;
    }
    writer_ = std::move(writer).value();
    // Sizes the bus (a reader opening later maps the full-size object) and
    // gives each reader a frame to take before it says "ready".
    return Prepare() && Send(Kind::kPrime, 0, NowNs());
  }
  bool Prepare() override {
    if (!in_place_) return true;
    auto claim = writer_->ClaimSlot(frame_.image.cols, frame_.image.rows, frame_.image.channels());
    if (!claim) {
      Fail("claim: " + claim.error().message);
      return false;
    }
    claim_ = std::move(claim).value();
    if (claim_) frame_.image.copyTo(claim_.image());
    return true;
  }
  bool Send(Kind kind, uint64_t seq, int64_t stamp_ns) override {
    frame_.meta.source_id = static_cast<uint32_t>(kind);
    frame_.meta.sequence = seq;
    frame_.meta.stamps.capture_us = stamp_ns / 1000;
    const auto checksum = static_cast<uint64_t>(stamp_ns);
    auto result = in_place_ ? writer_->Commit(claim_, frame_.meta, checksum)
                            : writer_->Publish(frame_, checksum);
    if (!result) {
      Fail("publish: " + result.error().message);
      return false;
    }
    return true;
  }
  void SendEnd(uint64_t seq) override {
    if (Prepare()) Send(Kind::kEnd, seq, NowNs());
  }
  uint64_t dropped() const override { return writer_->dropped(); }

 private:
  RoleArgs args_;
  bool in_place_;
  freshframe::Frame frame_;
  std::unique_ptr<fb::BusWriter> writer_;
  fb::BusWriter::Claim claim_;  // declared after writer_: abandoned before it goes
};

class BusSubscriber : public Subscriber {
 public:
  BusSubscriber(const RoleArgs& a, bool view) : args_(a), view_mode_(view) {}
  bool Setup() override {
    fb::BusOptions options;
    options.slots = static_cast<uint32_t>(args_.slots);
    auto reader = fb::BusReader::Open(args_.endpoint, options);
    if (!reader) {
      Fail("bus reader: " + reader.error().message);
      return false;
    }
    reader_ = std::move(reader).value();
    // The writer published the priming frame before it said "ready".
    Msg m;
    if (Recv(5000, &m) != Got::kFrame || m.kind != Kind::kPrime) {
      Fail("bus reader: no priming frame");
      return false;
    }
    return true;
  }
  Got Recv(int timeout_ms, Msg* out) override {
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    fb::BusFrame info;
    if (view_mode_) {
      // Held until the next ReadView (which releases it), as a consumer would.
      view_ = reader_->ReadView(timeout);
      if (!view_) return Got::kTimeout;
      out->recv_ns = NowNs();
      info = view_.info();
    } else {
      auto frame = reader_->ReadCopy(timeout, &info);
      if (!frame) return Got::kTimeout;
      out->recv_ns = NowNs();
      frame_ = std::move(*frame);
    }
    out->kind = static_cast<Kind>(info.meta.source_id);
    out->seq = info.meta.sequence;
    out->stamp_ns = static_cast<int64_t>(info.checksum);
    return Got::kFrame;
  }

 private:
  RoleArgs args_;
  bool view_mode_;
  std::unique_ptr<fb::BusReader> reader_;
  fb::BusReader::View view_;
  freshframe::Frame frame_;
};

}  // namespace

std::unique_ptr<Publisher> MakeBusPublisher(const RoleArgs& a, bool in_place) {
  return std::make_unique<BusPublisher>(a, in_place);
}

std::unique_ptr<Subscriber> MakeBusSubscriber(const RoleArgs& a, bool view) {
  return std::make_unique<BusSubscriber>(a, view);
}

}  // namespace busbench
