#include "http/config_api.h"

#include <string>

#include <gtest/gtest.h>

namespace freshframe::http {
namespace {

using Unavailable = std::map<std::string, std::string, std::less<>>;

constexpr std::string_view kJson = "application/json";

Expected<SettingsChange, ConfigError> Parse(std::string_view body,
                                            const Unavailable& unavailable = {}) {
  return ParseConfigRequest(kJson, body, unavailable);
}

// The error of a request that must be refused with `status`; its message
// must contain every one of `words`.
void ExpectRefused(const Expected<SettingsChange, ConfigError>& result, unsigned status,
                   std::initializer_list<std::string_view> words) {
  ASSERT_FALSE(result.ok()) << "accepted, expected " << status;
  EXPECT_EQ(result.error().status, status) << result.error().message;
  for (std::string_view word : words) {
    EXPECT_NE(result.error().message.find(word), std::string::npos)
        << "\"" << word << "\" not in: " << result.error().message;
  }
}

TEST(ConfigApiTest, AcceptsEverySubsetOfTheKeys) {
  auto all = Parse(R"({"detector": false, "overlay": "inferred", "quality": 40, "mirror": true})");
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(*all, (SettingsChange{false, OverlayMode::kInferred, 40, true}));

  auto one = Parse(R"({"quality": 100})");
  ASSERT_TRUE(one.ok()) << one.error().message;
  SettingsChange quality;
  quality.quality = 100;
  EXPECT_EQ(*one, quality);

  auto two = Parse(R"({"mirror": false, "overlay": "latest"})");
  ASSERT_TRUE(two.ok()) << two.error().message;
  EXPECT_FALSE(two->detector);
  EXPECT_FALSE(two->quality);
  EXPECT_EQ(two->overlay, OverlayMode::kLatest);
  EXPECT_EQ(two->mirror, false);

  EXPECT_TRUE(Parse(R"({"quality": 1})").ok());
  EXPECT_TRUE(Parse(" \n{\"detector\": true}\n ").ok());
}

TEST(ConfigApiTest, ContentTypeMustBeJson) {
  for (std::string_view type : {"application/json", "application/json; charset=utf-8",
                                "Application/JSON;charset=UTF-8", " application/json "}) {
    EXPECT_TRUE(IsJsonContentType(type)) << type;
    EXPECT_TRUE(ParseConfigRequest(type, R"({"quality": 50})", {}).ok()) << type;
  }
  ExpectRefused(ParseConfigRequest("", R"({"quality": 50})", {}), 415,
                {"application/json", "none"});
  ExpectRefused(ParseConfigRequest("text/plain", R"({"quality": 50})", {}), 415,
                {"application/json", "text/plain"});
  // What an HTML form can send, which is the point (CSRF).
  for (std::string_view type : {"application/x-www-form-urlencoded", "multipart/form-data",
                                "application/jsonp", "application/json-patch+json"}) {
    ExpectRefused(ParseConfigRequest(type, R"({"quality": 50})", {}), 415, {"application/json"});
  }
}

TEST(ConfigApiTest, BodyMustBeANonEmptyJsonObject) {
  ExpectRefused(Parse(""), 400, {"empty body", "quality"});
  ExpectRefused(Parse("   "), 400, {"empty body"});
  ExpectRefused(Parse("{\"quality\": 50"), 400, {"not valid JSON"});
  ExpectRefused(Parse("quality=50"), 400, {"not valid JSON"});
  ExpectRefused(Parse(R"({"quality": 50} {"mirror": true})"), 400, {"not valid JSON"});
  ExpectRefused(Parse("[1, 2]"), 400, {"JSON object", "[1,2]"});
  ExpectRefused(Parse("50"), 400, {"JSON object"});
  ExpectRefused(Parse(R"("quality")"), 400, {"JSON object"});
  ExpectRefused(Parse("null"), 400, {"JSON object"});
  ExpectRefused(Parse("{}"), 400, {"empty object", "detector, overlay, quality, mirror"});
}

TEST(ConfigApiTest, UnknownKeysAreNamedWithTheKnownOnes) {
  ExpectRefused(Parse(R"({"qualty": 50})"), 400,
                {"unknown key \"qualty\"", "detector, overlay, quality, mirror"});
  // One bad key spoils the request, even beside good ones.
  ExpectRefused(Parse(R"({"quality": 50, "fps": 10})"), 400, {"\"fps\""});
  // A long key is cut short in the message.
  const std::string key(300, 'k');
  auto long_key = Parse("{\"" + key + "\": 1}");
  ExpectRefused(long_key, 400, {"unknown key"});
  EXPECT_LT(long_key.error().message.size(), 150U);
}

TEST(ConfigApiTest, WrongTypesAreRefused) {
  ExpectRefused(Parse(R"({"quality": "90"})"), 400, {"\"quality\"", "1 to 100", "\"90\""});
  ExpectRefused(Parse(R"({"quality": true})"), 400, {"\"quality\"", "true"});
  ExpectRefused(Parse(R"({"quality": null})"), 400, {"\"quality\""});
  ExpectRefused(Parse(R"({"quality": [50]})"), 400, {"\"quality\""});
  ExpectRefused(Parse(R"({"detector": 1})"), 400, {"\"detector\"", "true or false", "got 1"});
  ExpectRefused(Parse(R"({"detector": "on"})"), 400, {"\"detector\""});
  ExpectRefused(Parse(R"({"mirror": 0})"), 400, {"\"mirror\"", "true or false"});
  ExpectRefused(Parse(R"({"mirror": "true"})"), 400, {"\"mirror\""});
  ExpectRefused(Parse(R"({"overlay": 1})"), 400, {"\"overlay\"", "\"latest\" or \"inferred\""});
  ExpectRefused(Parse(R"({"overlay": true})"), 400, {"\"overlay\""});
}

TEST(ConfigApiTest, ValuesOutOfRangeAreRefused) {
  for (std::string_view quality : {"0", "101", "-5", "85.5", "85.0", "1e2", "18446744073709551615",
                                   "-9223372036854775808", "99999999999999999999"}) {
    ExpectRefused(Parse("{\"quality\": " + std::string(quality) + "}"), 400,
                  {"\"quality\"", "whole number from 1 to 100"});
  }
  ExpectRefused(Parse(R"({"overlay": "Latest"})"), 400, {"\"Latest\""});
  ExpectRefused(Parse(R"({"overlay": "none"})"), 400, {"\"latest\" or \"inferred\""});
}

TEST(ConfigApiTest, KeysNotAvailableHereSayWhyAndWhere) {
  const Unavailable serve = {{"detector", "no detector here; set it on the infer process"},
                             {"overlay", "set --overlay on the infer process"},
                             {"mirror", "set --mirror on the infer process"}};
  EXPECT_TRUE(Parse(R"({"quality": 30})", serve).ok());
  ExpectRefused(Parse(R"({"mirror": true})", serve), 400,
                {"\"mirror\" cannot be changed in this process", "--mirror on the infer process"});
  // Refused as a whole, even with an available key beside it.
  ExpectRefused(Parse(R"({"quality": 30, "overlay": "latest"})", serve), 400,
                {"\"overlay\"", "--overlay"});
  // Not available is said before a bad value is.
  ExpectRefused(Parse(R"({"detector": 1})", serve), 400, {"cannot be changed", "infer process"});
}

TEST(ConfigApiTest, JsonShape) {
  ConfigDeps deps;
  deps.detector_spec = "faces";
  const nlohmann::json all = ConfigToJson({true, OverlayMode::kInferred, 70, true}, deps);
  EXPECT_EQ(all, nlohmann::json::parse(R"({"detector": true, "detector_spec": "faces",
      "overlay": "inferred", "quality": 70, "mirror": true,
      "available": ["detector", "overlay", "quality", "mirror"]})"));

  deps.detector_spec = "none";
  deps.unavailable = {{"detector", "x"}, {"overlay", "y"}, {"mirror", "z"}};
  const nlohmann::json serve = ConfigToJson({false, OverlayMode::kLatest, 85, false}, deps);
  EXPECT_EQ(serve["available"], nlohmann::json::array({"quality"}));
  EXPECT_EQ(serve["detector"], false);
  EXPECT_EQ(serve["detector_spec"], "none");
  EXPECT_EQ(serve.size(), 6U);
}

// Regression (found by fuzz/config_json_fuzzer.cpp): a number too large for
// a double is nlohmann's out_of_range (406), not a parse_error, and escaped
// ParseConfigRequest, out of the session's handler, ending the server's I/O
// thread.
TEST(ConfigApiTest, NumbersTooLargeForADoubleAreRefused) {
  for (std::string_view number : {"1e999", "-1e400", "-10192233720368e54775808"}) {
    const std::string body = "{\"quality\": " + std::string(number) + "}";
    Expected<SettingsChange, ConfigError> result = SettingsChange{};
    ASSERT_NO_THROW(result = Parse(body)) << body;
    ExpectRefused(result, 400, {"not valid JSON"});
  }
  // Inside a key the API would refuse anyway, too.
  Expected<SettingsChange, ConfigError> result = SettingsChange{};
  ASSERT_NO_THROW(result = Parse(R"({"nope": [1e999]})"));
  ExpectRefused(result, 400, {"not valid JSON"});
}

// Regression (found by fuzz/config_json_fuzzer.cpp): a refusal quotes what
// the client sent, and bytes that are not UTF-8 made the error body's
// nlohmann dump() throw (type_error 316) out of the session's handler, which
// ended the server's I/O thread. Every refusal must give a JSON body.
TEST(ConfigApiTest, ErrorBodyIsJsonWhateverTheClientSent) {
  const std::string e_acute = "\xc3\xa9";  // two bytes: a cut can split it
  const std::string long_key = std::string(39, 'k') + e_acute;
  const std::string long_value = std::string(38, 'a') + e_acute;
  const struct {
    std::string content_type;
    std::string body;
    unsigned status;
  } cases[] = {
      {"text/\xff\xfe", R"({"quality": 50})", 415},            // the Content-Type echoed
      {"application/json", "\xff", 400},                       // nlohmann quotes the byte
      {"application/json", "{\"q\xe9\": 1}", 400},             // Latin-1 in a string
      {"application/json", "{\"" + long_key + "\": 1}", 400},  // key cut mid-character
      {"application/json", "{\"overlay\": \"" + long_value + "\"}", 400},  // value cut so
  };
  for (const auto& c : cases) {
    const auto result = ParseConfigRequest(c.content_type, c.body, {});
    ASSERT_FALSE(result.ok()) << c.body;
    EXPECT_EQ(result.error().status, c.status) << c.body;
    std::string body;
    ASSERT_NO_THROW(body = ConfigErrorJson(result.error().message)) << c.body;
    const auto json = nlohmann::json::parse(body, nullptr, false);
    ASSERT_TRUE(json.is_object()) << body;
    ASSERT_TRUE(json["error"].is_string()) << body;
    EXPECT_FALSE(json["error"].get<std::string>().empty());
  }
  EXPECT_EQ(ConfigErrorJson("plain"), "{\"error\":\"plain\"}\n");
}

TEST(ConfigApiTest, DescribesWhatChanged) {
  const SettingsValues before{true, OverlayMode::kLatest, 85, false};
  EXPECT_EQ(DescribeChange(before, before), "");
  EXPECT_EQ(DescribeChange(before, {true, OverlayMode::kLatest, 40, true}),
            "quality 85 -> 40, mirror off -> on");
  EXPECT_EQ(DescribeChange(before, {false, OverlayMode::kInferred, 85, false}),
            "detector on -> off, overlay latest -> inferred");
}

}  // namespace
}  // namespace freshframe::http
