#include "probe/strip_decoder.h"

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>

#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <type_traits>

namespace freshframe::probe {

namespace {

// libjpeg reports fatal errors through error_exit, which must not return; the
// default calls exit(). Ours longjmps back to DecodeTop, which then resets the
// decompressor. `pub` must stay the first member: libjpeg hands error_exit a
// pointer to it, which (standard layout) is also a pointer to the whole.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

static_assert(std::is_standard_layout_v<ErrorManager>);

[[noreturn]] void OnFatalError(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<ErrorManager*>(cinfo->err)->jump, 1);
}

// Corrupt-data warnings are expected on a lossy network path and counted by
// the caller as a missing strip; printing them to stderr would only spam.
void OnMessage(j_common_ptr /*cinfo*/) {}
void OnEmit(j_common_ptr /*cinfo*/, int /*level*/) {}

// The unprotected part of DecodeTop: every libjpeg call that may fail is in
// here, and nothing here owns a resource that a longjmp out of it would leak.
bool DecodeRows(jpeg_decompress_struct* cinfo, std::string_view jpeg, cv::Mat* rows) {
  jpeg_mem_src(cinfo, reinterpret_cast<const unsigned char*>(jpeg.data()),
               static_cast<unsigned long>(jpeg.size()));
  if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) return false;
  const auto width = static_cast<int>(cinfo->image_width);
  const auto height = static_cast<int>(cinfo->image_height);
  const int strip_rows = timecode::StripRows(width);
  if (strip_rows == 0 || width > StripDecoder::kMaxWidth) return false;

  // Gray output lets libjpeg skip the chroma IDCT and colour conversion; the
  // strip is read in grayscale anyway.
  cinfo->out_color_space = JCS_GRAYSCALE;
  cinfo->dct_method = JDCT_ISLOW;
  cinfo->do_fancy_upsampling = FALSE;
  jpeg_start_decompress(cinfo);

  // libjpeg decodes whole MCU rows anyway, so rounding up costs nothing.
  const int mcu_rows = cinfo->max_v_samp_factor * DCTSIZE;
  const int wanted = std::min(height, (strip_rows + mcu_rows - 1) / mcu_rows * mcu_rows);
  rows->create(wanted, width, CV_8UC1);
  while (static_cast<int>(cinfo->output_scanline) < wanted) {
    JSAMPROW row = rows->ptr<JSAMPLE>(static_cast<int>(cinfo->output_scanline));
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) return false;  // data ran out
  }
  return true;
}

}  // namespace

struct StripDecoder::State {
  ErrorManager err{};
  jpeg_decompress_struct cinfo{};
};

StripDecoder::StripDecoder() : state_(std::make_unique<State>()) {
  jpeg_decompress_struct& cinfo = state_->cinfo;
  cinfo.err = jpeg_std_error(&state_->err.pub);
  state_->err.pub.error_exit = OnFatalError;
  state_->err.pub.output_message = OnMessage;
  state_->err.pub.emit_message = OnEmit;
  jpeg_create_decompress(&cinfo);
}

StripDecoder::~StripDecoder() { jpeg_destroy_decompress(&state_->cinfo); }

bool StripDecoder::DecodeTop(std::string_view jpeg, cv::Mat* gray) {
  // No C++ object with a destructor is created between setjmp and a
  // possible longjmp in this frame: DecodeRows holds only plain values.
  if (setjmp(state_->err.jump) != 0) {
    jpeg_abort_decompress(&state_->cinfo);
    return false;
  }
  const bool ok = DecodeRows(&state_->cinfo, jpeg, gray);
  // Abandon the rest of the image; the decompressor is ready for the next.
  jpeg_abort_decompress(&state_->cinfo);
  return ok;
}

std::optional<timecode::Reading> StripDecoder::Read(std::string_view jpeg, int64_t now_us) {
  if (!DecodeTop(jpeg, &rows_)) return std::nullopt;
  return timecode::Read(rows_, now_us);
}

std::optional<timecode::Reading> ReadStripFromJpeg(std::string_view jpeg, int64_t now_us) {
  StripDecoder decoder;
  return decoder.Read(jpeg, now_us);
}

}  // namespace freshframe::probe
