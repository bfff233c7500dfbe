// libFuzzer target: POST /api/config, from the request's Content-Type and
// body to the answer and the live settings, as the server does it.
//
// The input is "CONTENT-TYPE\nBODY" (everything before the first newline is
// the Content-Type header's value; without a newline the type is
// application/json and the whole input is the body). It goes through what
// PostConfig (src/http/config_routes.cpp) does without the HTTP plumbing:
// a body over kConfigBodyLimit is refused before it is read (413, the
// session's check); otherwise ParseConfigRequest validates the whole request
// (src/http/config_api.cpp), a refusal is answered with ConfigErrorJson, an
// accepted change is applied to a LiveSettings and answered with
// ConfigToJson. Half the inputs run as a serve process, where only quality is
// available.
//
// Beyond "no sanitizer report", it checks:
// - nothing throws out (an exception would end the server's I/O thread);
// - the status is 200, 400, 413 or 415, and the body is JSON that parses:
//   {"error": "..."} for a refusal, the settings' shape for a 200;
// - a refused request changes nothing; a 200 sets exactly the keys the body
//   names to the values it gives, leaves the others, and every setting is in
//   its valid range (quality 1..100, overlay latest or inferred);
// - an independent oracle (nlohmann's own parse plus the API's rules, written
//   again here) agrees on every decision: 415 exactly when the media type is
//   not application/json, 200 exactly when the body is a non-empty object of
//   known, available keys with valid values;
// - the same request gives the same answer twice.
//
// Build and run: fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/live_settings.h"
#include "http/config_api.h"
#include "http/router.h"

namespace {

namespace fh = freshframe::http;
using freshframe::LiveSettings;
using freshframe::OverlayMode;
using freshframe::SettingsValues;
using Json = nlohmann::json;
using Unavailable = std::map<std::string, std::string, std::less<>>;

// A failed property: libFuzzer saves the input as a crash artifact.
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "config_json_fuzzer: check failed: %s\n", what);
    std::abort();
  }
}

struct Answer {
  unsigned status = 0;
  std::string body;
};

// PostConfig (config_routes.cpp) with the session's body limit in front.
Answer Post(LiveSettings& settings, const fh::ConfigDeps& deps, std::string_view content_type,
            std::string_view body) {
  if (body.size() > fh::kConfigBodyLimit) return {413, fh::ConfigErrorJson("body too large")};
  auto change = fh::ParseConfigRequest(content_type, body, deps.unavailable);
  if (!change) return {change.error().status, fh::ConfigErrorJson(change.error().message)};
  const auto [before, after] = settings.Apply(*change);
  (void)fh::DescribeChange(before, after);
  return {200, fh::ConfigToJson(after, deps).dump()};
}

// The oracle's Content-Type rule: the media type before any ';', spaces and
// tabs trimmed, is application/json in any case.
bool OracleJsonType(std::string_view type) {
  type = type.substr(0, type.find(';'));
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  std::string lower(type);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower == "application/json";
}

bool OracleQuality(const Json& value) {
  if (value.is_number_unsigned()) {
    const auto q = value.get<uint64_t>();
    return q >= 1 && q <= 100;
  }
  if (value.is_number_integer()) {
    const auto q = value.get<int64_t>();
    return q >= 1 && q <= 100;
  }
  return false;
}

// The oracle's body rule: whether the API must accept it.
bool OracleAccepts(const Json& object, const Unavailable& unavailable) {
  if (!object.is_object() || object.empty()) return false;
  for (const auto& [key, value] : object.items()) {
    if (unavailable.contains(key)) return false;
    if (key == "detector" || key == "mirror") {
      if (!value.is_boolean()) return false;
    } else if (key == "overlay") {
      if (!value.is_string() || (value != "latest" && value != "inferred")) return false;
    } else if (key == "quality") {
      if (!OracleQuality(value)) return false;
    } else {
      return false;
    }
  }
  return true;
}

void CheckShape(const Json& answer, const SettingsValues& values, const fh::ConfigDeps& deps) {
  Check(answer.is_object() && answer.size() == 6, "200 body is not the settings' shape");
  Check(answer["detector"].is_boolean() && answer["mirror"].is_boolean(), "bool keys");
  Check(answer["quality"].is_number_integer(), "quality not a whole number");
  const int quality = answer["quality"].get<int>();
  Check(quality >= freshframe::kMinJpegQuality && quality <= freshframe::kMaxJpegQuality,
        "quality out of range");
  Check(answer["overlay"] == "latest" || answer["overlay"] == "inferred", "overlay out of range");
  Check(answer == fh::ConfigToJson(values, deps), "200 body is not the live settings");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view content_type = "application/json";
  std::string_view body = input;
  if (const auto newline = input.find('\n'); newline != std::string_view::npos) {
    content_type = input.substr(0, newline);
    body = input.substr(newline + 1);
  }

  // Starting values and the process kind from the input, so that every input
  // reproduces exactly.
  fh::ConfigDeps deps;
  deps.detector_spec = "faces";
  if (size % 2 == 1) {
    deps.detector_spec = "none";
    deps.unavailable = {{"detector", "no detector here"},
                        {"overlay", "set --overlay on the infer process"},
                        {"mirror", "set --mirror on the infer process"}};
  }
  const SettingsValues initial{size % 3 != 0,
                               size % 4 == 0 ? OverlayMode::kInferred : OverlayMode::kLatest,
                               static_cast<int>(1 + size % 100), size % 5 == 0};
  LiveSettings settings(initial);
  deps.settings = &settings;

  const Answer answer = Post(settings, deps, content_type, body);
  const SettingsValues after = settings.Get();
  Check(
      answer.status == 200 || answer.status == 400 || answer.status == 413 || answer.status == 415,
      "status not in {200, 400, 413, 415}");
  const Json reply = Json::parse(answer.body, nullptr, false);
  Check(!reply.is_discarded(), "answer body is not JSON");

  if (answer.status != 200) {
    Check(reply.is_object() && reply.size() == 1 && reply.contains("error") &&
              reply["error"].is_string() && !reply["error"].get<std::string>().empty(),
          "a refusal's body is not {\"error\": \"...\"}");
    Check(after == initial, "a refused request changed the settings");
  } else {
    CheckShape(reply, after, deps);
  }

  // The oracle.
  if (body.size() > fh::kConfigBodyLimit) {
    Check(answer.status == 413, "an oversized body not refused with 413");
  } else if (!OracleJsonType(content_type)) {
    Check(answer.status == 415, "a non-JSON Content-Type not refused with 415");
  } else {
    Check(answer.status != 415 && answer.status != 413, "a JSON request refused with 415/413");
    const Json object = Json::parse(body, nullptr, false);
    const bool accept = !object.is_discarded() && OracleAccepts(object, deps.unavailable);
    Check(accept == (answer.status == 200), "the API and the oracle disagree on accepting");
    if (accept) {
      // Exactly the keys named, to the values given.
      SettingsValues expected = initial;
      if (object.contains("detector")) expected.detector = object["detector"].get<bool>();
      if (object.contains("mirror")) expected.mirror = object["mirror"].get<bool>();
      if (object.contains("overlay")) {
        expected.overlay =
            object["overlay"] == "inferred" ? OverlayMode::kInferred : OverlayMode::kLatest;
      }
      if (object.contains("quality")) expected.quality = object["quality"].get<int>();
      Check(after == expected, "a 200 did not apply exactly what the body says");
    }
  }

  // Deterministic: the same request on the same starting values.
  LiveSettings again_settings(initial);
  fh::ConfigDeps again_deps = deps;
  again_deps.settings = &again_settings;
  const Answer again = Post(again_settings, again_deps, content_type, body);
  Check(again.status == answer.status && again.body == answer.body, "not deterministic");
  Check(again_settings.Get() == after, "not deterministic (settings)");
  return 0;
}
