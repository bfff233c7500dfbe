// `dnn:<model.onnx>`: any ONNX detection model through OpenCV DNN on the CPU.
//
// The frame is letterboxed into the network input (aspect ratio kept, grey
// 114 padding, centred), passed as RGB scaled to 0..1 (what YOLOv5/v8/v11
// exports expect), and the output decoded by a layout recognised from its
// shape when the model is loaded, so a model we cannot decode fails at
// start-up rather than mid-stream.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "infer/detectors.h"

namespace freshframe::infer {
namespace {

enum class Layout {
  kYoloV5,  // [1,N,5+C]: cx,cy,w,h,objectness,C class scores (network pixels)
  kYoloV8,  // [1,4+C,N]: the same without objectness, one column per anchor
  kSsd,     // [1,1,N,7]: image_id,label,conf,x1,y1,x2,y2 (0..1 of the input)
};

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kYoloV5:
      return "YOLOv5";
    case Layout::kYoloV8:
      return "YOLOv8";
    case Layout::kSsd:
      return "SSD";
  }
  return "?";
}

std::vector<int> Shape(const cv::Mat& m) {
  std::vector<int> shape(static_cast<size_t>(m.dims));
  for (int i = 0; i < m.dims; ++i) shape[static_cast<size_t>(i)] = m.size[i];
  return shape;
}

std::string ShapeString(const std::vector<int>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Shape alone cannot tell [1,N,5+C] from [1,4+C,N], so we rely on what every
// real YOLO head has: far more anchors than features per anchor (YOLOv5
// 25200x85, YOLOv8/v11 84x8400). The smaller of the two dimensions is the
// feature axis: last dimension smaller (or equal) -> YOLOv5 rows, middle one
// smaller -> YOLOv8 columns. A YOLOv8 export transposed to [1,N,4+C] is
// therefore read as YOLOv5 and cannot be supported without a hint.
std::optional<Layout> RecogniseLayout(const cv::Mat& out) {
  if (out.type() != CV_32F) return std::nullopt;
  const std::vector<int> s = Shape(out);
  if (s.size() == 4 && s[0] == 1 && s[1] == 1 && s[2] >= 1 && s[3] == 7) return Layout::kSsd;
  if (s.size() != 3 || s[0] != 1) return std::nullopt;
  if (s[2] <= s[1]) {
    if (s[2] >= 6) return Layout::kYoloV5;  // at least one class
  } else if (s[1] >= 5) {
    return Layout::kYoloV8;
  }
  return std::nullopt;
}

// OpenCV's messages for a node it cannot import span several "> " lines;
// errors here are one line.
std::string OneLine(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::string out;
  while (std::getline(in, line)) {
    const size_t start = line.find_first_not_of(" \t>");
    const size_t end = line.find_last_not_of(" \t\r");
    if (start == std::string::npos || end < start) continue;
    if (!out.empty()) out += "; ";
    out += line.substr(start, end - start + 1);
  }
  return out.empty() ? "unknown error" : out;
}

Expected<std::vector<std::string>> ReadLabels(const std::string& path) {
  std::vector<std::string> labels;
  if (path.empty()) return labels;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Error{"labels file not found: " + path};
  }
  std::ifstream in(path);
  if (!in) return Error{"cannot read labels file " + path};
  std::string line;
  // Line numbers are class ids, so blank lines keep their place (and fall
  // back to "class<N>").
  while (std::getline(in, line)) {
    const size_t start = line.find_first_not_of(" \t\r");
    const size_t end = line.find_last_not_of(" \t\r");
    labels.push_back(start == std::string::npos ? "" : line.substr(start, end - start + 1));
  }
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  return labels;
}

// A candidate box in network-input pixels.
struct Candidate {
  cv::Rect2d box;
  int class_id = 0;
  float score = 0;
};

bool AddCandidate(double x1, double y1, double x2, double y2, int class_id, float score,
                  std::vector<Candidate>& out) {
  if (!std::isfinite(x1) || !std::isfinite(y1) || !std::isfinite(x2) || !std::isfinite(y2) ||
      x2 <= x1 || y2 <= y1) {
    return false;
  }
  out.push_back({cv::Rect2d(x1, y1, x2 - x1, y2 - y1), class_id, score});
  return true;
}

void DecodeYoloV5(const cv::Mat& out, float confidence, std::vector<Candidate>& candidates) {
  const int rows = out.size[1];
  const int features = out.size[2];
  for (int i = 0; i < rows; ++i) {
    const float* r = out.ptr<float>(0, i);
    // Class scores are probabilities (<= 1), so a low objectness already
    // rules the row out; this skips the class loop for most of 25200 rows.
    if (!(r[4] >= confidence)) continue;
    const float* best = std::max_element(r + 5, r + features);
    const float score = r[4] * *best;
    if (!(score >= confidence)) continue;
    AddCandidate(r[0] - r[2] / 2, r[1] - r[3] / 2, r[0] + r[2] / 2, r[1] + r[3] / 2,
                 static_cast<int>(best - (r + 5)), score, candidates);
  }
}

// Per-anchor best class, kept between frames to avoid reallocating.
struct YoloV8Scratch {
  std::vector<float> best_score;
  std::vector<int> best_class;
};

void DecodeYoloV8(const cv::Mat& out, float confidence, YoloV8Scratch& scratch,
                  std::vector<Candidate>& candidates) {
  const int features = out.size[1];
  const auto anchors = static_cast<size_t>(out.size[2]);
  const float* data = out.ptr<float>();
  // Walk the class rows one after another (contiguous memory), keeping each
  // anchor's best class, rather than striding down 84 rows per anchor.
  scratch.best_score.assign(anchors, -std::numeric_limits<float>::infinity());
  scratch.best_class.assign(anchors, 0);
  for (int c = 0; c + 4 < features; ++c) {
    const float* row = data + static_cast<size_t>(4 + c) * anchors;
    for (size_t i = 0; i < anchors; ++i) {
      if (row[i] > scratch.best_score[i]) {
        scratch.best_score[i] = row[i];
        scratch.best_class[i] = c;
      }
    }
  }
  for (size_t i = 0; i < anchors; ++i) {
    if (!(scratch.best_score[i] >= confidence)) continue;
    const float cx = data[i];
    const float cy = data[anchors + i];
    const float w = data[2 * anchors + i];
    const float h = data[3 * anchors + i];
    AddCandidate(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, scratch.best_class[i],
                 scratch.best_score[i], candidates);
  }
}

void DecodeSsd(const cv::Mat& out, float confidence, cv::Size input,
               std::vector<Candidate>& candidates) {
  const int rows = out.size[2];
  const float* data = out.ptr<float>();
  for (int i = 0; i < rows; ++i) {
    const float* r = data + static_cast<size_t>(i) * 7;
    // Caffe-style DetectionOutput pads unused rows with image_id -1; the
    // label bound keeps the int conversion defined on garbage output.
    if (!(r[0] >= 0) || !(r[1] >= 0 && r[1] < 1e6F) || !(r[2] >= confidence)) continue;
    AddCandidate(double{r[3]} * input.width, double{r[4]} * input.height,
                 double{r[5]} * input.width, double{r[6]} * input.height,
                 static_cast<int>(std::lround(r[1])), r[2], candidates);
  }
}

// Indices of the candidates that survive non-maximum suppression within
// their class (boxes of different classes never suppress each other).
std::vector<size_t> NmsPerClass(const std::vector<Candidate>& candidates, float confidence,
                                float nms) {
  std::map<int, std::vector<size_t>> by_class;
  for (size_t i = 0; i < candidates.size(); ++i) {
    by_class[candidates[i].class_id].push_back(i);
  }
  std::vector<size_t> kept;
  std::vector<cv::Rect2d> boxes;
  std::vector<float> scores;
  std::vector<int> keep;
  for (const auto& [class_id, indices] : by_class) {
    boxes.clear();
    scores.clear();
    for (size_t i : indices) {
      boxes.push_back(candidates[i].box);
      scores.push_back(candidates[i].score);
    }
    cv::dnn::NMSBoxes(boxes, scores, confidence, nms, keep);
    for (int k : keep) kept.push_back(indices[static_cast<size_t>(k)]);
  }
  return kept;
}

// Where the frame sits inside the network input.
struct Letterbox {
  double scale_x = 1;  // network pixels per frame pixel
  double scale_y = 1;
  int pad_x = 0;
  int pad_y = 0;
};

// Draws `bgr` scaled (aspect ratio kept) and centred onto `canvas` (grey 114
// around it, the padding YOLO models are trained with).
Letterbox LetterboxInto(const cv::Mat& bgr, cv::Size input, cv::Mat& canvas) {
  const double scale = std::min(static_cast<double>(input.width) / bgr.cols,
                                static_cast<double>(input.height) / bgr.rows);
  const int w = std::clamp(static_cast<int>(std::lround(bgr.cols * scale)), 1, input.width);
  const int h = std::clamp(static_cast<int>(std::lround(bgr.rows * scale)), 1, input.height);
  Letterbox box;
  box.pad_x = (input.width - w) / 2;
  box.pad_y = (input.height - h) / 2;
  // Rounding the scaled size makes the two scales differ slightly; using
  // each keeps back-projected boxes exact at the frame's edges.
  box.scale_x = static_cast<double>(w) / bgr.cols;
  box.scale_y = static_cast<double>(h) / bgr.rows;
  canvas.create(input, CV_8UC3);
  canvas.setTo(cv::Scalar(114, 114, 114));
  cv::Mat inside = canvas(cv::Rect(box.pad_x, box.pad_y, w, h));
  cv::resize(bgr, inside, inside.size(), 0, 0, cv::INTER_LINEAR);
  return box;
}

class DnnDetector final : public Detector {
 public:
  DnnDetector(cv::dnn::Net net, std::vector<std::string> output_names, size_t output_index,
              Layout layout, std::vector<int> output_shape, std::vector<std::string> labels,
              std::string model_path, const DetectorOptions& options)
      : net_(std::move(net)),
        output_names_(std::move(output_names)),
        output_index_(output_index),
        layout_(layout),
        output_shape_(std::move(output_shape)),
        labels_(std::move(labels)),
        model_path_(std::move(model_path)),
        input_(options.input_width, options.input_height),
        confidence_(options.confidence),
        nms_(options.nms) {}

  std::vector<Detection> Detect(const cv::Mat& bgr) override {
    try {
      return DetectOrThrow(bgr);
    } catch (const cv::Exception& e) {
      LogFailureOnce(OneLine(e.err.empty() ? e.what() : e.err));
    } catch (const std::exception& e) {
      LogFailureOnce(e.what());
    }
    return {};
  }

  std::string_view name() const override { return "dnn"; }
  // Every call is one forward pass at the network's input size, whatever the crop.
  bool cost_grows_with_area() const override { return false; }

 private:
  std::vector<Detection> DetectOrThrow(const cv::Mat& frame) {
    if (frame.empty()) return {};
    if (frame.depth() != CV_8U ||
        (frame.channels() != 1 && frame.channels() != 3 && frame.channels() != 4)) {
      LogFailureOnce("unsupported frame type " + cv::typeToString(frame.type()));
      return {};
    }
    const cv::Mat* bgr = &frame;
    if (frame.channels() == 1 || frame.channels() == 4) {
      cv::cvtColor(frame, converted_,
                   frame.channels() == 1 ? cv::COLOR_GRAY2BGR : cv::COLOR_BGRA2BGR);
      bgr = &converted_;
    }
    const Letterbox letterbox = LetterboxInto(*bgr, input_, canvas_);
    // RGB, 0..1: the input YOLOv5/v8/v11 exports are trained on.
    cv::dnn::blobFromImage(canvas_, blob_, 1.0 / 255.0, cv::Size(), cv::Scalar(), true, false);
    net_.setInput(blob_);
    net_.forward(outputs_, output_names_);
    const cv::Mat& out = outputs_.at(output_index_);
    if (Shape(out) != output_shape_ || out.type() != CV_32F) {
      LogFailureOnce("output shape changed from " + ShapeString(output_shape_) + " to " +
                     ShapeString(Shape(out)));
      return {};
    }
    const cv::Mat data = out.isContinuous() ? out : out.clone();

    candidates_.clear();
    switch (layout_) {
      case Layout::kYoloV5:
        DecodeYoloV5(data, confidence_, candidates_);
        break;
      case Layout::kYoloV8:
        DecodeYoloV8(data, confidence_, scratch_, candidates_);
        break;
      case Layout::kSsd:
        DecodeSsd(data, confidence_, input_, candidates_);
        break;
    }

    std::vector<Detection> detections;
    // Clip before rounding: a model may emit boxes far outside any int range.
    const auto to_frame = [](double v, int pad, double scale, int size) {
      return static_cast<int>(
          std::lround(std::clamp((v - pad) / scale, 0.0, static_cast<double>(size))));
    };
    for (size_t i : NmsPerClass(candidates_, confidence_, nms_)) {
      const Candidate& c = candidates_[i];
      const int x1 = to_frame(c.box.x, letterbox.pad_x, letterbox.scale_x, frame.cols);
      const int y1 = to_frame(c.box.y, letterbox.pad_y, letterbox.scale_y, frame.rows);
      const int x2 =
          to_frame(c.box.x + c.box.width, letterbox.pad_x, letterbox.scale_x, frame.cols);
      const int y2 =
          to_frame(c.box.y + c.box.height, letterbox.pad_y, letterbox.scale_y, frame.rows);
      if (x2 <= x1 || y2 <= y1) continue;  // wholly inside the padding or off the frame
      const cv::Rect box(x1, y1, x2 - x1, y2 - y1);
      detections.push_back({box, Label(c.class_id), c.score});
    }
    std::stable_sort(detections.begin(), detections.end(),
                     [](const Detection& a, const Detection& b) { return a.score > b.score; });
    return detections;
  }

  std::string Label(int class_id) const {
    const auto index = static_cast<size_t>(class_id);
    if (class_id >= 0 && index < labels_.size() && !labels_[index].empty()) {
      return labels_[index];
    }
    return "class" + std::to_string(class_id);
  }

  // A model that fails on one frame most likely fails on all of them; one
  // line is enough, and the stream goes on without boxes.
  void LogFailureOnce(const std::string& reason) {
    if (failure_logged_) return;
    failure_logged_ = true;
    spdlog::error("dnn {}: detection failed, returning no boxes (logged once): {}", model_path_,
                  reason);
  }

  cv::dnn::Net net_;
  std::vector<std::string> output_names_;
  size_t output_index_;
  Layout layout_;
  std::vector<int> output_shape_;
  std::vector<std::string> labels_;
  std::string model_path_;
  cv::Size input_;
  float confidence_;
  float nms_;
  bool failure_logged_ = false;
  // Reused between frames.
  cv::Mat converted_, canvas_, blob_;
  std::vector<cv::Mat> outputs_;
  std::vector<Candidate> candidates_;
  YoloV8Scratch scratch_;
};

Expected<std::unique_ptr<Detector>> Load(const std::string& model_path,
                                         const DetectorOptions& options) {
  if (options.input_width <= 0 || options.input_height <= 0) {
    return Error{"dnn input size must be positive, got " + std::to_string(options.input_width) +
                 "x" + std::to_string(options.input_height)};
  }
  std::error_code ec;
  if (!std::filesystem::exists(model_path, ec)) {
    return Error{"dnn model not found: " + model_path};
  }
  if (!std::filesystem::is_regular_file(model_path, ec)) {
    return Error{"dnn model is not a file: " + model_path};
  }
  auto labels = ReadLabels(options.labels_path);
  if (!labels) return labels.error();

  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(model_path);
  } catch (const cv::Exception& e) {
    return Error{"cannot load ONNX model " + model_path + ": " +
                 OneLine(e.err.empty() ? e.what() : e.err)};
  }
  if (net.empty()) return Error{"cannot load ONNX model " + model_path + ": empty network"};
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);

  // One forward pass on a blank (padding-grey) input: the output shape tells
  // the layout, and a model that cannot run at this input size fails now.
  const cv::Size input(options.input_width, options.input_height);
  std::vector<std::string> names;
  std::vector<cv::Mat> outputs;
  try {
    names = net.getUnconnectedOutLayersNames();
    const cv::Mat blank(input, CV_8UC3, cv::Scalar(114, 114, 114));
    net.setInput(cv::dnn::blobFromImage(blank, 1.0 / 255.0, cv::Size(), cv::Scalar(), true, false));
    net.forward(outputs, names);
  } catch (const cv::Exception& e) {
    return Error{"ONNX model " + model_path + " fails on a blank " + std::to_string(input.width) +
                 "x" + std::to_string(input.height) +
                 " input (does the input size match the model?): " +
                 OneLine(e.err.empty() ? e.what() : e.err)};
  }

  // Exports that also expose intermediate heads list the decoded output
  // first; take the first output whose layout we know.
  std::string shapes;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (auto layout = RecogniseLayout(outputs[i])) {
      const std::vector<int> shape = Shape(outputs[i]);
      // SSD outputs do not say how many classes there are.
      if (!labels->empty() && *layout != Layout::kSsd) {
        const auto classes =
            static_cast<size_t>(*layout == Layout::kYoloV5 ? shape[2] - 5 : shape[1] - 4);
        if (classes != labels->size()) {
          spdlog::warn("dnn {}: model has {} classes, labels file {} has {} names", model_path,
                       classes, options.labels_path, labels->size());
        }
      }
      spdlog::info("dnn {}: {} output {} (input {}x{})", model_path, LayoutName(*layout),
                   ShapeString(shape), input.width, input.height);
      return std::unique_ptr<Detector>(
          std::make_unique<DnnDetector>(std::move(net), std::move(names), i, *layout, shape,
                                        std::move(*labels), model_path, options));
    }
    if (!shapes.empty()) shapes += ", ";
    shapes += ShapeString(Shape(outputs[i]));
    if (outputs[i].type() != CV_32F) shapes += " (not float32)";
  }
  return Error{"unsupported output shape " + (shapes.empty() ? std::string("(none)") : shapes) +
               " from " + model_path +
               " (expected YOLOv5 [1,N,5+C], YOLOv8 [1,4+C,N] or SSD [1,1,N,7])"};
}

}  // namespace

Expected<std::unique_ptr<Detector>> MakeDnnDetector(const std::string& model_path,
                                                    const DetectorOptions& options) {
  // readNetFromONNX and forward throw cv::Exception; anything else (say,
  // bad_alloc on a huge model) must not escape either.
  try {
    return Load(model_path, options);
  } catch (const std::exception& e) {
    return Error{"cannot load ONNX model " + model_path + ": " + e.what()};
  }
}

}  // namespace freshframe::infer
