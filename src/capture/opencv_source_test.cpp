// Files, cameras, streams through MakeOpenCvSource. The videos are written
// at test time with cv::VideoWriter (MJPG in AVI, and the first other codec
// this OpenCV build writes and reads back), each frame carrying its number
// as eight black/white blocks that survive lossy codecs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "capture/capture.h"

namespace freshframe::capture {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kWidth = 320;
constexpr int kHeight = 240;
constexpr double kFps = 25;
constexpr int kLongFrames = 75;  // 3 s
constexpr int kShortFrames = 10;
constexpr int kBits = 8;
constexpr int kBlock = 32;
constexpr int kBlockPitch = 40;

struct Codec {
  std::string fourcc;
  std::string extension;
};

cv::Mat NumberedFrame(int number) {
  cv::Mat image(kHeight, kWidth, CV_8UC3, cv::Scalar(60, 90, 120));
  for (int bit = 0; bit < kBits; ++bit) {
    const bool on = ((number >> bit) & 1) != 0;
    cv::rectangle(image, cv::Rect(bit * kBlockPitch + 4, 4, kBlock, kBlock),
                  on ? cv::Scalar::all(255) : cv::Scalar::all(0), cv::FILLED);
  }
  cv::putText(image, std::to_string(number), {40, 190}, cv::FONT_HERSHEY_SIMPLEX, 4,
              cv::Scalar(255, 255, 255), 8);
  return image;
}

// The number NumberedFrame drew, from the blocks' mean levels.
int ReadNumber(const cv::Mat& image) {
  cv::Mat gray;
  cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  int number = 0;
  for (int bit = 0; bit < kBits; ++bit) {
    const cv::Rect inner(bit * kBlockPitch + 4 + 6, 4 + 6, kBlock - 12, kBlock - 12);
    if (cv::mean(gray(inner))[0] > 128) number |= 1 << bit;
  }
  return number;
}

// Writes `frames` numbered frames; true if the file reads back complete.
bool WriteVideo(const fs::path& path, const Codec& codec, int frames) {
  const auto& f = codec.fourcc;
  cv::VideoWriter writer(path.string(), cv::CAP_FFMPEG,
                         cv::VideoWriter::fourcc(f[0], f[1], f[2], f[3]), kFps,
                         cv::Size(kWidth, kHeight));
  if (!writer.isOpened()) return false;
  for (int i = 0; i < frames; ++i) writer.write(NumberedFrame(i));
  writer.release();
  cv::VideoCapture check(path.string(), cv::CAP_FFMPEG);
  cv::Mat image;
  int read = 0;
  while (check.read(image)) {
    if (ReadNumber(image) != read) return false;
    ++read;
  }
  return read == frames;
}

// A temporary directory with the test videos, made once for all tests.
class Videos {
 public:
  static Videos& Get() {
    static Videos videos;
    return videos;
  }

  fs::path dir;
  std::vector<Codec> codecs;  // [0] MJPG, [1] the other codec
  std::string setup_error;

  fs::path Path(size_t codec, int frames) const {
    return dir / ("n" + std::to_string(frames) + "_" + codecs.at(codec).fourcc +
                  codecs.at(codec).extension);
  }

  ~Videos() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }

 private:
  Videos() {
    dir = fs::temp_directory_path() / ("freshframe_opencv_test_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    codecs.push_back({"MJPG", ".avi"});
    // The second codec: the first one this build writes and reads back.
    for (const Codec& candidate : std::vector<Codec>{
             {"XVID", ".avi"}, {"mp4v", ".mp4"}, {"FFV1", ".mkv"}, {"avc1", ".mp4"}}) {
      codecs.push_back(candidate);
      if (WriteVideo(Path(1, kShortFrames), candidate, kShortFrames)) break;
      codecs.pop_back();
    }
    if (codecs.size() < 2) {
      setup_error = "no second codec: tried XVID, mp4v, FFV1, avc1";
      return;
    }
    std::printf("[ codecs   ] MJPG%s and %s%s\n", codecs[0].extension.c_str(),
                codecs[1].fourcc.c_str(), codecs[1].extension.c_str());
    for (size_t c = 0; c < codecs.size(); ++c) {
      for (int frames : {kShortFrames, kLongFrames}) {
        if (!WriteVideo(Path(c, frames), codecs[c], frames)) {
          setup_error = "cannot write " + Path(c, frames).string();
          return;
        }
      }
    }
  }
};

std::unique_ptr<FrameSource> SourceFor(const std::string& spec, bool loop = false) {
  auto parsed = ParseSourceSpec(spec);
  EXPECT_TRUE(parsed.ok()) << spec;
  SourceOptions options;
  options.spec = spec;
  options.loop = loop;
  return MakeOpenCvSource(*parsed, options);
}

std::string OpenError(const std::string& spec) {
  auto source = SourceFor(spec);
  auto opened = source->Open();
  return opened ? std::string() : opened.error().message;
}

double Fps(const std::vector<int64_t>& stamps) {
  if (stamps.size() < 2) return 0;
  return static_cast<double>(stamps.size() - 1) * 1e6 /
         static_cast<double>(stamps.back() - stamps.front());
}

class OpenCvFileTest : public testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Videos::Get().setup_error.empty()) << Videos::Get().setup_error;
  }
  fs::path Path(int frames) const { return Videos::Get().Path(GetParam(), frames); }
};

TEST_P(OpenCvFileTest, PlaysAtTheFilesFrameRateInOrder) {
  auto source = SourceFor(Path(kLongFrames).string());
  ASSERT_TRUE(source->Open().ok());
  EXPECT_EQ(source->width(), kWidth);
  EXPECT_EQ(source->height(), kHeight);
  EXPECT_NEAR(source->fps(), kFps, 0.01);
  EXPECT_FALSE(source->reconnects());
  EXPECT_EQ(source->Describe(), "file:" + Path(kLongFrames).string());

  std::stop_source stop;
  std::vector<int64_t> stamps;
  const auto begin = Clock::now();
  while (Clock::now() - begin < std::chrono::seconds(2)) {
    auto result = source->Read(stop.get_token());
    ASSERT_EQ(result.status, ReadResult::Status::kFrame) << result.message;
    const Frame& frame = *result.frame;
    const auto n = stamps.size();
    EXPECT_EQ(frame.meta.sequence, n + 1);
    EXPECT_EQ(ReadNumber(frame.image), static_cast<int>(n));
    EXPECT_EQ(frame.meta.format, PixelFormat::kBgr24);
    EXPECT_EQ(frame.image.type(), CV_8UC3);
    EXPECT_EQ(frame.meta.width, kWidth);
    EXPECT_EQ(frame.meta.height, kHeight);
    stamps.push_back(frame.meta.stamps.capture_us);
  }
  // Paced, not as fast as it decodes: 2 s at 25 fps is about 50 frames.
  EXPECT_NEAR(static_cast<double>(stamps.size()), 2 * kFps, 4);
  EXPECT_NEAR(Fps(stamps), kFps, 2);
}

TEST_P(OpenCvFileTest, EndsAfterTheLastFrame) {
  const std::string path = Path(kShortFrames).string();
  auto source = SourceFor(path);
  ASSERT_TRUE(source->Open().ok());
  std::stop_source stop;
  for (int i = 0; i < kShortFrames; ++i) {
    auto result = source->Read(stop.get_token());
    ASSERT_EQ(result.status, ReadResult::Status::kFrame) << i << ": " << result.message;
    EXPECT_EQ(ReadNumber(result.frame->image), i);
  }
  auto end = source->Read(stop.get_token());
  EXPECT_EQ(end.status, ReadResult::Status::kEnd);
  EXPECT_NE(end.message.find("end of file " + path), std::string::npos) << end.message;
  EXPECT_NE(end.message.find("after 10 frames"), std::string::npos) << end.message;
}

TEST_P(OpenCvFileTest, LoopsBackToTheFirstFrameWithoutBreakingPace) {
  auto source = SourceFor(Path(kShortFrames).string(), /*loop=*/true);
  ASSERT_TRUE(source->Open().ok());
  EXPECT_TRUE(source->reconnects());
  std::stop_source stop;
  std::vector<int64_t> stamps;
  for (int i = 0; i < 2 * kShortFrames + 5; ++i) {
    auto result = source->Read(stop.get_token());
    ASSERT_EQ(result.status, ReadResult::Status::kFrame) << i << ": " << result.message;
    EXPECT_EQ(ReadNumber(result.frame->image), i % kShortFrames) << i;
    EXPECT_EQ(result.frame->meta.sequence, static_cast<uint64_t>(i) + 1);
    stamps.push_back(result.frame->meta.stamps.capture_us);
  }
  EXPECT_NEAR(Fps(stamps), kFps, 2);
}

TEST_P(OpenCvFileTest, TruncatedFileFailsOrEndsWithoutCrashing) {
  const fs::path path = Videos::Get().dir / ("truncated_" + Path(kLongFrames).filename().string());
  fs::copy_file(Path(kLongFrames), path, fs::copy_options::overwrite_existing);
  fs::resize_file(path, fs::file_size(path) / 3);
  auto source = SourceFor(path.string());
  auto opened = source->Open();
  if (!opened) {
    EXPECT_NE(opened.error().message.find(path.string()), std::string::npos)
        << opened.error().message;
    return;
  }
  std::stop_source stop;
  int frames = 0;
  for (;;) {
    auto result = source->Read(stop.get_token());
    if (result.status != ReadResult::Status::kFrame) {
      EXPECT_TRUE(result.status == ReadResult::Status::kEnd ||
                  result.status == ReadResult::Status::kError);
      EXPECT_NE(result.message.find(path.string()), std::string::npos) << result.message;
      break;
    }
    ASSERT_LT(++frames, kLongFrames);
  }
  EXPECT_LT(frames, kLongFrames);
}

TEST_P(OpenCvFileTest, StopsPromptly) {
  auto source = SourceFor(Path(kLongFrames).string());
  ASSERT_TRUE(source->Open().ok());
  std::stop_source stop;
  ASSERT_EQ(source->Read(stop.get_token()).status, ReadResult::Status::kFrame);
  stop.request_stop();
  const auto begin = Clock::now();
  EXPECT_EQ(source->Read(stop.get_token()).status, ReadResult::Status::kStopped);
  EXPECT_LT(Clock::now() - begin, std::chrono::milliseconds(100));
}

std::string CodecName(const testing::TestParamInfo<size_t>& info) {
  return info.param == 0 ? "Mjpg" : "OtherCodec";
}

INSTANTIATE_TEST_SUITE_P(OpenCv, OpenCvFileTest, testing::Values(size_t{0}, size_t{1}), CodecName);

// Through the grabber: a file without --loop ends with its last frame on
// view and no "no signal" frames.
TEST(OpenCvGrabberTest, FileEndsWithTheLastFrameOnView) {
  ASSERT_TRUE(Videos::Get().setup_error.empty()) << Videos::Get().setup_error;
  LatestSlot<FramePtr> raw;
  Metrics metrics;
  auto source = SourceFor(Videos::Get().Path(0, kShortFrames).string());
  ASSERT_TRUE(source->Open().ok());
  Grabber grabber(std::move(source), raw, metrics);
  grabber.Start();
  nlohmann::json status;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    status = grabber.Status();
    if (status["state"] == "ended") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  grabber.Stop();
  EXPECT_EQ(status["state"], "ended") << status.dump();
  EXPECT_FALSE(grabber.live());
  EXPECT_NE(status["message"].get<std::string>().find("after 10 frames"), std::string::npos)
      << status.dump();
  auto last = raw.Latest();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->version, static_cast<uint64_t>(kShortFrames));
  EXPECT_EQ(ReadNumber(last->value->image), kShortFrames - 1);
}

// A looping file stays live across its restarts while another thread reads
// the grabber's status (which asks the source for its frame rate).
TEST(OpenCvGrabberTest, LoopingFileStaysLive) {
  ASSERT_TRUE(Videos::Get().setup_error.empty()) << Videos::Get().setup_error;
  LatestSlot<FramePtr> raw;
  Metrics metrics;
  auto source = SourceFor(Videos::Get().Path(1, kShortFrames).string(), /*loop=*/true);
  ASSERT_TRUE(source->Open().ok());
  Grabber grabber(std::move(source), raw, metrics);
  grabber.Start();
  const auto end = Clock::now() + std::chrono::seconds(1);
  while (Clock::now() < end) {
    const auto status = grabber.Status();
    EXPECT_EQ(status["state"], "live") << status.dump();
    EXPECT_DOUBLE_EQ(status["fps"].get<double>(), kFps);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  grabber.Stop();
  EXPECT_TRUE(grabber.live());
  EXPECT_GE(raw.version(), static_cast<uint64_t>(2 * kShortFrames));
}

TEST(OpenCvSourceTest, MissingFileNamesThePath) {
  const std::string path = "/nonexistent/freshframe/missing.avi";
  const std::string error = OpenError(path);
  EXPECT_NE(error.find("cannot open file " + path), std::string::npos) << error;
  EXPECT_NE(error.find("no such file"), std::string::npos) << error;
  EXPECT_NE(OpenError("file:" + path).find(path), std::string::npos);
}

TEST(OpenCvSourceTest, UnreadableFilesSayWhy) {
  const fs::path dir = fs::temp_directory_path() / ("freshframe_bad_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path empty = dir / "empty.avi";
  const fs::path text = dir / "text.mp4";
  std::ofstream(empty).close();
  std::ofstream(text) << "this is not a video\n";
  EXPECT_NE(OpenError("file:" + dir.string()).find("directory"), std::string::npos);
  EXPECT_NE(OpenError(empty.string()).find("empty"), std::string::npos);
  const std::string error = OpenError(text.string());
  EXPECT_NE(error.find(text.string()), std::string::npos) << error;
  EXPECT_NE(error.find("FFmpeg"), std::string::npos) << error;
  fs::remove_all(dir);
}

TEST(OpenCvSourceTest, MissingDeviceNamesIt) {
  for (const std::string spec : {"/dev/video99", "99"}) {
    auto source = SourceFor(spec);
    EXPECT_EQ(source->Describe(), "camera:/dev/video99");
    EXPECT_TRUE(source->reconnects());
    auto opened = source->Open();
    ASSERT_FALSE(opened.ok()) << spec;
    EXPECT_NE(opened.error().message.find("/dev/video99"), std::string::npos)
        << opened.error().message;
    EXPECT_NE(opened.error().message.find("no such device"), std::string::npos)
        << opened.error().message;
  }
}

// A loopback port nobody listens on: connecting is refused at once.
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

TEST(OpenCvSourceTest, UnreachableStreamIsAnOpenErrorWithoutThePassword) {
  if (std::getenv("OPENCV_FFMPEG_CAPTURE_OPTIONS") != nullptr) {
    GTEST_SKIP() << "OPENCV_FFMPEG_CAPTURE_OPTIONS is set in the environment";
  }
  const std::string url = "127.0.0.1:" + std::to_string(ClosedPort()) + "/stream";
  auto source = SourceFor("rtsp://viewer:secret@" + url);
  EXPECT_EQ(source->Describe(), "rtsp://viewer:***@" + url);
  EXPECT_TRUE(source->reconnects());
  const auto begin = Clock::now();
  auto opened = source->Open();
  EXPECT_LT(Clock::now() - begin, std::chrono::seconds(9));
  ASSERT_FALSE(opened.ok());
  const std::string& error = opened.error().message;
  EXPECT_NE(error.find("rtsp://viewer:***@" + url), std::string::npos) << error;
  EXPECT_EQ(error.find("secret"), std::string::npos) << error;
  EXPECT_NE(error.find("FFmpeg"), std::string::npos) << error;
  EXPECT_NE(error.find("rtsp_transport;tcp"), std::string::npos) << error;
  // The options were set for that open only.
  EXPECT_EQ(std::getenv("OPENCV_FFMPEG_CAPTURE_OPTIONS"), nullptr);
}

TEST(OpenCvSourceTest, FfmpegOptionsFromTheEnvironmentWin) {
  if (std::getenv("OPENCV_FFMPEG_CAPTURE_OPTIONS") != nullptr) {
    GTEST_SKIP() << "OPENCV_FFMPEG_CAPTURE_OPTIONS is set in the environment";
  }
  ::setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;udp", 1);
  const std::string url = "rtsp://127.0.0.1:" + std::to_string(ClosedPort()) + "/stream";
  auto opened = SourceFor(url)->Open();
  const char* after = std::getenv("OPENCV_FFMPEG_CAPTURE_OPTIONS");
  const std::string left = after != nullptr ? after : "(unset)";
  ::unsetenv("OPENCV_FFMPEG_CAPTURE_OPTIONS");
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("rtsp_transport;udp from the environment"),
            std::string::npos)
      << opened.error().message;
  EXPECT_EQ(left, "rtsp_transport;udp");
}

TEST(OpenCvSourceTest, BrokenGStreamerPipelineIsAnOpenError) {
  auto source = SourceFor("gst:nosuchelement_freshframe ! appsink");
  EXPECT_EQ(source->Describe(), "gst:nosuchelement_freshframe ! appsink");
  auto opened = source->Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("nosuchelement_freshframe"), std::string::npos)
      << opened.error().message;
  EXPECT_NE(opened.error().message.find("GStreamer"), std::string::npos) << opened.error().message;
}

TEST(OpenCvSourceTest, UnsupportedSchemeIsABadArgument) {
  SourceOptions options;
  options.spec = "foo://x";
  auto source = MakeSource(options);
  ASSERT_FALSE(source.ok());
  EXPECT_NE(source.error().message.find("unsupported scheme 'foo'"), std::string::npos)
      << source.error().message;
}

}  // namespace
}  // namespace freshframe::capture
