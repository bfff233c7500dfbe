// bus_bench --stress N: the child processes. One writer publishes N small
// frames as fast as it can, every frame's pixels different and its
// PixelChecksum passed as the checksum; readers (half ReadCopy, half ReadView)
// verify every frame they get.
//
//   stress writer output: S <published> <elapsed_ns> <dropped>
//   stress reader output: R <checked> <bad_checksum> <bad_meta> <changed_while_pinned>
//                           <out_of_order> <skipped> <timed_out>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "bus/bus.h"
#include "common.h"

namespace busbench {
namespace {

namespace fb = freshframe::bus;

constexpr uint64_t kPatternMul = 0x9E3779B97F4A7C15ULL;

// Every 8-byte word of frame `seq` differs from every other frame's.
void FillPattern(cv::Mat& image, uint64_t seq) {
  const size_t bytes = image.total() * image.elemSize();
  const uint64_t base = seq * kPatternMul;
  unsigned char* p = image.data;
  size_t j = 0;
  for (; j + 8 <= bytes; j += 8) {
    const uint64_t word = base + j;
    std::memcpy(p + j, &word, 8);
  }
  for (; j < bytes; ++j) p[j] = static_cast<unsigned char>(seq + j);
}

uint64_t FirstWord(const cv::Mat& image) {
  uint64_t word = 0;
  std::memcpy(&word, image.data, 8);
  return word;
}

uint64_t Checksum(const cv::Mat& image) {
  return fb::PixelChecksum(image.data, image.total() * image.elemSize());
}

}  // namespace

int RunStressWriter(const RoleArgs& a) {
  InstallStopHandler();
  fb::BusOptions options;
  options.slots = static_cast<uint32_t>(a.slots);
  auto opened = fb::BusWriter::Open(a.endpoint, options);
  if (!opened) {
    std::fprintf(stderr, "stress writer: %s\n", opened.error().message.c_str());
    return 2;
  }
  auto writer = std::move(opened).value();
  freshframe::Frame frame;
  frame.image = cv::Mat(a.height, a.width, a.channels == 1 ? CV_8UC1 : CV_8UC3);
  frame.meta.width = a.width;
  frame.meta.height = a.height;
  auto publish = [&](Kind kind, uint64_t seq) {
    FillPattern(frame.image, seq);
    frame.meta.sequence = seq;
    frame.meta.source_id = static_cast<uint32_t>(kind);
    return writer->Publish(frame, Checksum(frame.image)).ok();
  };
  if (!publish(Kind::kPrime, 0)) return 2;
  Say("ready");
  std::string line;
  if (!WaitForLine(&line) || line != "go") return 2;

  const int64_t start = NowNs();
  uint64_t seq = 0;
  for (int64_t i = 0; i < a.frames && !g_stop; ++i) {
    if (!publish(Kind::kMeasure, ++seq)) return 2;
  }
  const int64_t elapsed = NowNs() - start;
  if (!publish(Kind::kEnd, ++seq)) return 2;
  char buf[160];
  std::snprintf(buf, sizeof buf, "S %llu %lld %llu", static_cast<unsigned long long>(seq - 1),
                static_cast<long long>(elapsed),
                static_cast<unsigned long long>(writer->dropped()));
  Say(buf);
  return 0;
}

int RunStressReader(const RoleArgs& a) {
  InstallStopHandler();
  fb::BusOptions options;
  options.slots = static_cast<uint32_t>(a.slots);
  auto opened = fb::BusReader::Open(a.endpoint, options);
  if (!opened) {
    std::fprintf(stderr, "stress reader: %s\n", opened.error().message.c_str());
    return 2;
  }
  auto reader = std::move(opened).value();
  const bool view_mode = a.read_mode == "view";
  const auto timeout = std::chrono::milliseconds(200);

  uint64_t checked = 0;
  uint64_t bad_checksum = 0;
  uint64_t bad_meta = 0;
  uint64_t changed = 0;
  uint64_t out_of_order = 0;
  uint64_t skipped = 0;
  bool timed_out = false;
  bool ready = false;
  uint64_t last_index = 0;
  uint64_t last_seq = 0;
  int64_t last_activity = NowNs();

  fb::BusReader::View view;
  uint64_t view_sum = 0;
  freshframe::Frame copy;
  for (;;) {
    if (view) {
      // The pinned view must not have changed while we held it, whatever
      // the writer did meanwhile.
      if (Checksum(view.image()) != view_sum) ++changed;
    }
    fb::BusFrame info;
    const cv::Mat* image = nullptr;
    if (view_mode) {
      view = reader->ReadView(timeout);
      if (view) {
        info = view.info();
        image = &view.image();
      }
    } else {
      auto frame = reader->ReadCopy(timeout, &info);
      if (frame) {
        copy = std::move(*frame);
        image = &copy.image;
      }
    }
    if (image == nullptr) {
      if (g_stop || NowNs() - last_activity > 20'000'000'000LL) {
        timed_out = true;
        break;
      }
      continue;
    }
    last_activity = NowNs();
    const auto kind = static_cast<Kind>(info.meta.source_id);
    const uint64_t sum = Checksum(*image);
    view_sum = sum;
    const bool meta_ok = image->cols == a.width && image->rows == a.height &&
                         info.meta.width == a.width && info.meta.height == a.height &&
                         FirstWord(*image) == info.meta.sequence * kPatternMul;
    if (kind == Kind::kPrime) {
      if (!ready) {
        Say("ready");
        ready = true;
      }
    } else {
      ++checked;
      if (sum != info.checksum) ++bad_checksum;
      if (!meta_ok) ++bad_meta;
      if (info.publish_index <= last_index) ++out_of_order;
      if (info.meta.sequence > last_seq + 1) skipped += info.meta.sequence - last_seq - 1;
    }
    last_index = info.publish_index;
    last_seq = info.meta.sequence;
    if (kind == Kind::kEnd) break;
  }
  if (view && Checksum(view.image()) != view_sum) ++changed;
  char buf[200];
  std::snprintf(buf, sizeof buf, "R %llu %llu %llu %llu %llu %llu %d",
                static_cast<unsigned long long>(checked),
                static_cast<unsigned long long>(bad_checksum),
                static_cast<unsigned long long>(bad_meta), static_cast<unsigned long long>(changed),
                static_cast<unsigned long long>(out_of_order),
                static_cast<unsigned long long>(skipped), timed_out ? 1 : 0);
  Say(buf);
  return 0;
}

}  // namespace busbench
