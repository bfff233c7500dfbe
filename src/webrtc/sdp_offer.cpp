#include "webrtc/sdp_offer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace freshframe::webrtc {
namespace {

constexpr std::string_view kNotSdp = "offer is not SDP";

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The next space-separated token of `text`, which loses it.
std::string_view NextToken(std::string_view& text) {
  text = Trim(text);
  const size_t end = std::min(text.find(' '), text.size());
  const std::string_view token = text.substr(0, end);
  text.remove_prefix(end);
  return token;
}

// SDP's numbers are plain decimal: "0102" is not payload type 102 (the
// m-line says "102", and the answer must name what the offer named).
std::optional<int> ParseInt(std::string_view text, int max) {
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0 || value > max) {
    return std::nullopt;
  }
  return value;
}

// One H.264 format of the video section, as its rtpmap and fmtp describe it.
struct Format {
  int payload_type = 0;
  bool h264 = false;
  int packetization_mode = 0;
  std::string profile_level_id;
};

struct VideoSection {
  size_t index = 0;
  std::vector<Format> formats;  // in the m-line's order
  std::string mid;
  bool receives = true;
  int playout_delay_id = 0;
};

Format* FindFormat(VideoSection& section, std::string_view payload_type) {
  const std::optional<int> pt = ParseInt(payload_type, 127);
  if (!pt) return nullptr;
  for (Format& format : section.formats) {
    if (format.payload_type == *pt) return &format;
  }
  return nullptr;
}

// a=fmtp:<pt> key=value;key=value
void ReadFmtp(Format& format, std::string_view parameters) {
  while (!parameters.empty()) {
    const size_t end = std::min(parameters.find(';'), parameters.size());
    const std::string_view parameter = Trim(parameters.substr(0, end));
    parameters.remove_prefix(std::min(end + 1, parameters.size()));
    const size_t equals = parameter.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string_view key = Trim(parameter.substr(0, equals));
    const std::string_view value = Trim(parameter.substr(equals + 1));
    if (IEquals(key, "packetization-mode")) {
      format.packetization_mode = ParseInt(value, 2).value_or(0);
    } else if (IEquals(key, "profile-level-id")) {
      format.profile_level_id = Lower(value);
    }
  }
}

// An attribute line (the text after "a=") of the video section.
void ReadAttribute(VideoSection& section, std::string_view attribute) {
  const size_t colon = std::min(attribute.find(':'), attribute.size());
  const std::string_view name = attribute.substr(0, colon);
  std::string_view value = attribute.substr(std::min(colon + 1, attribute.size()));
  // rtpmap, fmtp and extmap start with their number right after the colon
  // (RFC 4566 §6, RFC 8285 §8): "a=rtpmap: 102 ..." names no format.
  const bool number_first = !value.empty() && value.front() != ' ' && value.front() != '\t';
  if (name == "sendonly" || name == "inactive") {
    section.receives = false;
  } else if (name == "mid") {
    section.mid = std::string(Trim(value));
  } else if (name == "rtpmap" && number_first) {
    Format* format = FindFormat(section, NextToken(value));
    // "H264/90000": the encoding name is case-insensitive (RFC 4566 §6).
    const std::string_view encoding = NextToken(value);
    if (format != nullptr) format->h264 = IEquals(encoding.substr(0, encoding.find('/')), "H264");
  } else if (name == "fmtp" && number_first) {
    Format* format = FindFormat(section, NextToken(value));
    if (format != nullptr) ReadFmtp(*format, value);
  } else if (name == "extmap" && number_first) {
    // a=extmap:<id>[/<direction>] <uri> [<attributes>] (RFC 8285 §8); ids
    // above 14 need the two-byte form, which we do not send.
    std::string_view id = NextToken(value);
    id = id.substr(0, id.find('/'));
    const std::optional<int> number = ParseInt(id, 14);
    if (number && *number >= 1 && NextToken(value) == kPlayoutDelayUri) {
      section.playout_delay_id = *number;
    }
  }
}

// m=video <port> <proto> <fmt>...; nullopt if the section is rejected (port
// 0) or its port is not a number.
std::optional<VideoSection> ReadVideoLine(std::string_view rest, size_t index) {
  std::string_view port = NextToken(rest);
  port = port.substr(0, port.find('/'));  // "<port>/<count>"
  const std::optional<int> port_number = ParseInt(port, 65535);
  if (!port_number || *port_number == 0) return std::nullopt;
  NextToken(rest);  // the protocol
  VideoSection section;
  section.index = index;
  for (std::string_view token = NextToken(rest); !token.empty(); token = NextToken(rest)) {
    if (const std::optional<int> pt = ParseInt(token, 127)) {
      section.formats.push_back(Format{
          .payload_type = *pt, .h264 = false, .packetization_mode = 0, .profile_level_id = {}});
    }
  }
  return section;
}

int Rank(const Format& format) {
  constexpr std::array<std::string_view, 3> kPreferredProfiles = {"42e01f", "42001f", "4d001f"};
  int rank = format.packetization_mode == 1 ? 2 : 0;
  if (std::find(kPreferredProfiles.begin(), kPreferredProfiles.end(), format.profile_level_id) !=
      kPreferredProfiles.end()) {
    rank += 1;
  }
  return rank;
}

}  // namespace

Expected<H264Choice, OfferError> InspectOffer(std::string_view sdp) {
  const OfferError not_sdp{400, std::string(kNotSdp)};
  if (sdp.size() > kMaxOfferBytes || sdp.find('\0') != std::string_view::npos) return not_sdp;
  bool first = true;
  size_t media_lines = 0;
  std::optional<VideoSection> video;
  bool in_video = false;  // the lines read belong to `video`'s section
  while (!sdp.empty()) {
    const size_t end = std::min(sdp.find('\n'), sdp.size());
    std::string_view line = sdp.substr(0, end);
    sdp.remove_prefix(std::min(end + 1, sdp.size()));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    // <type>=<value>, type one lower-case letter, no whitespace on either
    // side of '=' (RFC 4566 §5).
    if (line.size() < 2 || line[0] < 'a' || line[0] > 'z' || line[1] != '=') return not_sdp;
    if (line.size() > 2 && (line[2] == ' ' || line[2] == '\t')) return not_sdp;
    if (first && line != "v=0") return not_sdp;
    first = false;
    const std::string_view value = line.substr(2);
    if (line[0] == 'm') {
      in_video = false;
      std::string_view rest = value;
      if (!video && NextToken(rest) == "video") {
        video = ReadVideoLine(rest, media_lines);
        in_video = video.has_value();
      }
      ++media_lines;
    } else if (line[0] == 'a' && in_video) {
      ReadAttribute(*video, value);
    }
  }
  if (first) return not_sdp;
  if (!video) return OfferError{400, "offer has no video"};
  if (!video->receives) return OfferError{400, "offer does not receive video"};
  const Format* best = nullptr;
  for (const Format& format : video->formats) {
    if (format.h264 && (best == nullptr || Rank(format) > Rank(*best))) best = &format;
  }
  if (best == nullptr) return OfferError{406, "offer has no H.264 (packetization-mode 1)"};
  return H264Choice{.payload_type = best->payload_type,
                    .packetization_mode = best->packetization_mode,
                    .profile_level_id = best->profile_level_id,
                    .video_index = video->index,
                    .mid = video->mid,
                    .playout_delay_id = video->playout_delay_id};
}

std::string KeepCandidatesOn(std::string_view sdp, std::string_view address) {
  if (address.empty()) return std::string(sdp);
  std::string out;
  out.reserve(sdp.size());
  while (!sdp.empty()) {
    const size_t end = std::min(sdp.find('\n'), sdp.size());
    const std::string_view line = sdp.substr(0, std::min(end + 1, sdp.size()));
    sdp.remove_prefix(line.size());
    constexpr std::string_view kCandidate = "a=candidate:";
    if (line.starts_with(kCandidate)) {
      // <foundation> <component> <transport> <priority> <address> <port> ...
      std::string_view rest = line.substr(kCandidate.size());
      for (int field = 0; field < 4; ++field) NextToken(rest);
      std::string_view candidate_address = NextToken(rest);
      while (!candidate_address.empty() &&
             (candidate_address.back() == '\r' || candidate_address.back() == '\n')) {
        candidate_address.remove_suffix(1);
      }
      if (candidate_address != address) continue;
    }
    out += line;
  }
  return out;
}

}  // namespace freshframe::webrtc
