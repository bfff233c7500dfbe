// GCC 12 at -O3 takes the strings of a RunOptions inside Expected's variant
// for maybe uninitialized where it inlines the variant's copy and destructor
// (a false positive); it reports them in libstdc++'s headers, so the pragma
// comes before the includes.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "app/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

#include "app/run_flags.h"

namespace freshframe::app {
namespace {

// Config files in a fresh directory of their own, removed with the test.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "freshframe_config_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& text, const std::string& name = "ff.toml") {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  Config Load(const std::string& text) {
    auto config = LoadConfig(Write(text));
    EXPECT_TRUE(config) << config.error().message;
    return config ? *config : Config{};
  }

  // The error for `text`, with the file's path replaced by "F".
  std::string ErrorOf(const std::string& text) {
    const std::string path = Write(text);
    auto config = LoadConfig(path);
    if (config) return "(loaded)";
    const std::string& message = config.error().message;
    std::string shown;
    size_t from = 0;
    for (size_t at = message.find(path); at != std::string::npos; at = message.find(path, from)) {
      shown.append(message, from, at - from).append("F");
      from = at + path.size();
    }
    return shown.append(message, from);
  }

  std::string dir_;
};

TEST_F(ConfigTest, EveryKeyKindIsRead) {
  const Config config = Load(R"(
[server]
bind = "0.0.0.0"
port = 8181
threads = 2
basic-auth = "viewer:secret"
allow-origin = ["https://a.example", "https://b.example:8443"]
allow-host = "cam.local"
max-clients = 10
max-variants = 2
max-connections-per-address = 5
detector-threads = 2
bus-mode = 0o660
bus-slots = 6
bus-allow-owner = "any"

[streams.cam1]
source = "pattern:320x240@15"
size = "640x480"
fps = 12.5
fourcc = "MJPG"
loop = true
rtsp-transport = "udp"
source-token = "abc"
detector = "motion+faces"
detections-max-age = 2
cascade = "x.xml"
scale-factor = 1.2
min-neighbours = 4
min-size = 24
input-size = "320x256"
conf = 0.5
nms = 0.3
min-area = 900
overlay = "inferred"
hud = false
mirror = true
quality = 70
detect-fps = 5
publish = "cam1"
)");
  EXPECT_EQ(config.server.bind, "0.0.0.0");
  EXPECT_EQ(config.server.port, 8181);
  EXPECT_EQ(config.server.threads, 2);
  EXPECT_EQ(config.server.basic_auth, "viewer:secret");
  EXPECT_EQ(config.server.allow_origins,
            (std::vector<std::string>{"https://a.example", "https://b.example:8443"}));
  EXPECT_EQ(config.server.allow_hosts, std::vector<std::string>{"cam.local"});
  EXPECT_EQ(config.server.max_clients, 10);
  EXPECT_EQ(config.server.max_variants, 2);
  EXPECT_EQ(config.server.max_connections_per_address, 5);
  EXPECT_EQ(config.server.detector_threads, 2);
  EXPECT_EQ(config.server.bus_mode, 0660U);
  EXPECT_EQ(config.server.bus_slots, 6U);
  EXPECT_TRUE(config.server.bus_allow_any_owner);
  ASSERT_EQ(config.streams.size(), 1U);
  const StreamConfig& cam = config.streams[0];
  EXPECT_EQ(cam.name, "cam1");
  const RunOptions& o = cam.options;
  EXPECT_EQ(o.source, "pattern:320x240@15");
  EXPECT_EQ(o.width, 640);
  EXPECT_EQ(o.height, 480);
  EXPECT_DOUBLE_EQ(o.source_fps, 12.5);
  EXPECT_EQ(o.fourcc, "MJPG");
  EXPECT_TRUE(o.loop);
  EXPECT_EQ(o.rtsp_transport, "udp");
  EXPECT_EQ(o.source_token, "abc");
  EXPECT_EQ(o.detector, "motion+faces");
  EXPECT_DOUBLE_EQ(o.detections_max_age, 2.0);
  EXPECT_EQ(o.cascade, "x.xml");
  EXPECT_DOUBLE_EQ(o.detection.scale_factor, 1.2);
  EXPECT_EQ(o.detection.min_neighbours, 4);
  EXPECT_EQ(o.detection.min_size, 24);
  EXPECT_EQ(o.detection.input_width, 320);
  EXPECT_EQ(o.detection.input_height, 256);
  EXPECT_FLOAT_EQ(o.detection.confidence, 0.5F);
  EXPECT_FLOAT_EQ(o.detection.nms, 0.3F);
  EXPECT_EQ(o.detection.min_area, 900);
  EXPECT_EQ(o.overlay, "inferred");
  EXPECT_FALSE(o.hud);
  EXPECT_TRUE(o.mirror);
  EXPECT_EQ(o.quality, 70);
  EXPECT_DOUBLE_EQ(o.detect_fps, 5.0);
  EXPECT_EQ(o.publish, "cam1");
  // Each stream carries the server keys too.
  EXPECT_EQ(o.port, 8181);
  EXPECT_EQ(o.allow_origins, config.server.allow_origins);
  EXPECT_EQ(o.bus_mode, 0660U);
  // The server carries no stream key.
  EXPECT_EQ(config.server.quality, RunOptions{}.quality);
  EXPECT_EQ(config.server.source, RunOptions{}.source);
}

TEST_F(ConfigTest, DefaultsAreMergedUnderEveryStreamAndOverridden) {
  const Config config = Load(R"([defaults]
quality = 60
detector = "none"
mirror = true
publish = "shared"

[streams.a]
quality = 90
publish = ""

[streams.b]
mirror = false
publish = "b"
)");
  ASSERT_EQ(config.streams.size(), 2U);
  const RunOptions& a = config.streams[0].options;
  const RunOptions& b = config.streams[1].options;
  EXPECT_EQ(a.quality, 90);
  EXPECT_EQ(a.detector, "none");
  EXPECT_TRUE(a.mirror);
  EXPECT_EQ(a.publish, "");  // "" cancels the default
  EXPECT_EQ(b.quality, 60);
  EXPECT_EQ(b.detector, "none");
  EXPECT_FALSE(b.mirror);
  EXPECT_EQ(b.publish, "b");
}

TEST_F(ConfigTest, StreamsKeepTheFileOrderAndTheirPosition) {
  const std::string path = Write(
      "[streams.zeta]\n\n[streams.alpha]\nquality = 50\n\n"
      "[server]\nport = 0\n\n  [streams.mid]\n");
  auto config = LoadConfig(path);
  ASSERT_TRUE(config) << config.error().message;
  ASSERT_EQ(config->streams.size(), 3U);
  EXPECT_EQ(config->streams[0].name, "zeta");
  EXPECT_EQ(config->streams[1].name, "alpha");
  EXPECT_EQ(config->streams[2].name, "mid");
  EXPECT_EQ(config->streams[0].where, path + ":1:1");
  EXPECT_EQ(config->streams[1].where, path + ":3:1");
  EXPECT_EQ(config->streams[2].where, path + ":9:3");
  EXPECT_EQ(config->path, path);
}

TEST_F(ConfigTest, BooleansBothWaysAndUnderscores) {
  const Config config = Load(R"([streams.on]
hud = true
mirror = true
loop = true
[streams.off]
hud = false
mirror = false
loop = false
[streams.under]
detect_fps = 2.5
min_neighbours = 7
rtsp_transport = "udp"
)");
  ASSERT_EQ(config.streams.size(), 3U);
  EXPECT_TRUE(config.streams[0].options.hud);
  EXPECT_TRUE(config.streams[0].options.mirror);
  EXPECT_TRUE(config.streams[0].options.loop);
  EXPECT_FALSE(config.streams[1].options.hud);
  EXPECT_FALSE(config.streams[1].options.mirror);
  EXPECT_FALSE(config.streams[1].options.loop);
  EXPECT_DOUBLE_EQ(config.streams[2].options.detect_fps, 2.5);
  EXPECT_EQ(config.streams[2].options.detection.min_neighbours, 7);
  EXPECT_EQ(config.streams[2].options.rtsp_transport, "udp");
}

TEST_F(ConfigTest, ArraysAndOctal) {
  const Config config = Load(R"([server]
allow-host = ["a.local", "b.local", "c.local"]
allow-origin = []
bus-mode = "0640"
[streams.x]
input-size = 320
)");
  EXPECT_EQ(config.server.allow_hosts, (std::vector<std::string>{"a.local", "b.local", "c.local"}));
  EXPECT_TRUE(config.server.allow_origins.empty());
  EXPECT_EQ(config.server.bus_mode, 0640U);
  EXPECT_EQ(config.streams[0].options.detection.input_width, 320);
  EXPECT_EQ(config.streams[0].options.detection.input_height, 320);
}

TEST_F(ConfigTest, SyntaxErrorsHaveTheirPosition) {
  EXPECT_EQ(ErrorOf("[streams.a]\nquality = \n"),
            "F:2:11: TOML: Error while parsing key-value pair: expected value, saw '\\n'");
  EXPECT_EQ(ErrorOf("[streams.a]\nsource = \"x\"\n[streams.a]\n"),
            "F:3:1: TOML: Error while parsing table header: cannot redefine existing table "
            "'streams.a'");
  EXPECT_EQ(ErrorOf("[streams.a]\nquality = 1\nquality = 2\n"),
            "F:3:11: TOML: Error while parsing key-value pair: cannot redefine existing integer "
            "'quality'");
}

TEST_F(ConfigTest, UnknownTablesAndKeys) {
  EXPECT_EQ(ErrorOf("[stream.a]\n"), "F:1:2: stream: unknown table; did you mean [streams.NAME]?");
  EXPECT_EQ(ErrorOf("[streams.a]\n[cameras]\n"),
            "F:2:2: cameras: unknown table; a config has [server], [defaults] and [streams.NAME] "
            "tables");
  EXPECT_EQ(ErrorOf("[streams.a]\nqualty = 5\n"),
            "F:2:1: streams.a.qualty: unknown key; did you mean quality?");
  const std::string list = ErrorOf("[streams.a]\n  colour = \"red\"\n");
  EXPECT_EQ(
      list.rfind("F:2:3: streams.a.colour: unknown key; a stream takes source, size, fps,", 0), 0U)
      << list;
  EXPECT_EQ(ErrorOf("[server]\nprot = 1\n[streams.a]\n"),
            "F:2:1: server.prot: unknown key; did you mean port?");
  EXPECT_EQ(ErrorOf("[defaults]\nmirorr = true\n[streams.a]\n"),
            "F:2:1: defaults.mirorr: unknown key; did you mean mirror?");
}

TEST_F(ConfigTest, KeysInTheWrongTableSayWhereTheyBelong) {
  EXPECT_EQ(ErrorOf("[streams.a]\nport = 9000\n"),
            "F:2:1: streams.a.port: a server key: put it in [server]");
  EXPECT_EQ(ErrorOf("[defaults]\ntoken = \"abcdefgh\"\n[streams.a]\n"),
            "F:2:1: defaults.token: a server key: put it in [server]");
  EXPECT_EQ(ErrorOf("[server]\nquality = 50\n[streams.a]\n"),
            "F:2:1: server.quality: a stream key: put it in [streams.NAME] (or [defaults], for "
            "every stream)");
  EXPECT_EQ(ErrorOf("port = 1\n[streams.a]\n"),
            "F:1:1: port: a key outside any table: put it in [server]");
  EXPECT_EQ(ErrorOf("[server]\nport = 1\n[streams.a]\nport = 1\n"),
            "F:4:1: streams.a.port: a server key: put it in [server]");
  // A server key misspelt inside a stream.
  EXPECT_EQ(ErrorOf("[streams.a]\nbnd = \"0.0.0.0\"\n"),
            "F:2:1: streams.a.bnd: unknown key; did you mean bind (in [server])?");
}

TEST_F(ConfigTest, WrongTypes) {
  EXPECT_EQ(ErrorOf("[streams.a]\nquality = \"85\"\n"),
            "F:2:11: streams.a.quality: expected an integer, not a string");
  EXPECT_EQ(ErrorOf("[streams.a]\nquality = 85.5\n"),
            "F:2:11: streams.a.quality: expected an integer, not a float");
  EXPECT_EQ(ErrorOf("[streams.a]\nmirror = \"yes\"\n"),
            "F:2:10: streams.a.mirror: expected true or false, not a string");
  EXPECT_EQ(ErrorOf("[streams.a]\nfps = true\n"),
            "F:2:7: streams.a.fps: expected a number, not a boolean");
  EXPECT_EQ(ErrorOf("[streams.a]\nsource = [\"pattern\"]\n"),
            "F:2:10: streams.a.source: expected a string, not an array");
  EXPECT_EQ(ErrorOf("[server]\nallow-host = [\"a.local\", 5]\n[streams.a]\n"),
            "F:2:26: server.allow-host[1]: expected a string or an array of strings, not an "
            "integer");
  EXPECT_EQ(ErrorOf("[streams.a]\nwhen = 1979-05-27\n").substr(0, 24), "F:2:1: streams.a.when: u");
  EXPECT_EQ(ErrorOf("[streams.a.detector]\nname = \"faces\"\n"),
            "F:1:1: streams.a.detector: expected a string, not a table");
}

TEST_F(ConfigTest, ValidatorsRefuseWithTheirOwnMessage) {
  EXPECT_EQ(ErrorOf("[streams.a]\nquality = 0\n"),
            "F:2:11: streams.a.quality: Value 0 not in range 1 to 100");
  EXPECT_EQ(ErrorOf("[server]\nport = 70000\n[streams.a]\n"),
            "F:2:8: server.port: Value 70000 not in range 0 to 65535");
  const std::string detector = ErrorOf("[defaults]\ndetector = \"bogus\"\n[streams.a]\n");
  EXPECT_EQ(detector.rfind("F:2:12: defaults.detector: unknown detector 'bogus'", 0), 0U)
      << detector;
  EXPECT_EQ(ErrorOf("[streams.a]\noverlay = \"all\"\n"),
            "F:2:11: streams.a.overlay: all not in {latest,inferred}");
  EXPECT_EQ(ErrorOf("[streams.a]\nsize = \"big\"\n"),
            "F:2:8: streams.a.size: size must be WxH between 16x16 and 7680x4320, e.g. 1280x720");
  EXPECT_EQ(
      ErrorOf("[streams.a]\nfps = nan\n").rfind("F:2:7: streams.a.fps: a number is needed", 0), 0U);
  EXPECT_EQ(
      ErrorOf("[server]\nbus-mode = 0o666\n[streams.a]\n").rfind("F:2:12: server.bus-mode: ", 0),
      0U);
  // Credentials are never echoed.
  const std::string token = ErrorOf("[streams.a]\nsource-token = \"bad token\"\n");
  EXPECT_EQ(token.rfind("F:2:16: streams.a.source-token: ", 0), 0U) << token;
  EXPECT_EQ(token.find("bad token"), std::string::npos) << token;
}

TEST_F(ConfigTest, KeysThatExcludeEachOtherArePinnedToTheLaterOne) {
  EXPECT_EQ(ErrorOf("[server]\ntoken = \"abcdefgh\"\ntoken-file = \"/t\"\n[streams.a]\n"),
            "F:3:14: server.token-file: token excludes token-file");
  // [defaults] comes first: the stream's own key is the one to blame.
  EXPECT_EQ(ErrorOf("[defaults]\nsource-token = \"abcdefgh\"\n[streams.a]\n"
                    "source-token-file = \"/t\"\n"),
            "F:4:21: streams.a.source-token-file: source-token excludes source-token-file");
  EXPECT_EQ(
      ErrorOf("[streams.a]\nsource_token = \"abcdefgh\"\nsource-token = \"abcdefgh\"\n"),
      "F:3:1: streams.a.source-token: the same key as streams.a.source_token (\"_\" is \"-\")");
}

TEST_F(ConfigTest, StreamNamesAreUrlSafe) {
  EXPECT_EQ(ErrorOf("[streams.ok]\n[streams.\"front door\"]\n"),
            "F:2:1: streams.front door: a stream name is 1 to 64 of A-Z a-z 0-9 _ - (it is part "
            "of its URLs)");
  EXPECT_EQ(ErrorOf("[streams.\"\"]\n").rfind("F:1:1: streams.: a stream name is", 0), 0U);
  const std::string long_name(65, 'x');
  EXPECT_EQ(ErrorOf("[streams." + long_name + "]\n").rfind("F:1:1: streams." + long_name + ": ", 0),
            0U);
  EXPECT_EQ(Load("[streams." + std::string(64, 'x') + "]\n[streams.A-b_9]\n").streams.size(), 2U);
}

TEST_F(ConfigTest, TablesOfTheWrongShape) {
  EXPECT_EQ(ErrorOf("streams = 5\n"),
            "F:1:11: streams: expected a table ([streams.NAME]), not an integer");
  EXPECT_EQ(ErrorOf("server = \"x\"\n[streams.a]\n"),
            "F:1:10: server: expected a table ([server]), not a string");
  EXPECT_EQ(ErrorOf("[streams]\ncam = \"pattern\"\n"),
            "F:2:7: streams.cam: expected a table [streams.cam], not a string");
}

TEST_F(ConfigTest, NoStreamIsAnError) {
  EXPECT_EQ(ErrorOf(""), "F:1:1: streams: no stream: add a [streams.NAME] table for each camera");
  EXPECT_EQ(ErrorOf("# nothing\n[server]\nport = 1\n"),
            "F:1:1: streams: no stream: add a [streams.NAME] table for each camera");
  EXPECT_EQ(ErrorOf("[server]\n[streams]\n"),
            "F:2:1: streams: no stream: add a [streams.NAME] table for each camera");
}

TEST_F(ConfigTest, TwoStreamsWritingOneBus) {
  EXPECT_EQ(ErrorOf("[streams.a]\npublish = \"cam\"\n[streams.b]\npublish = \"cam.raw\"\n"),
            "F:4:11: streams.b.publish: streams a and b would both write bus cam.raw (publish = "
            "NAME writes NAME, NAME.raw and NAME.detections; streams.a.publish is at F:2:11)");
  EXPECT_EQ(ErrorOf("[defaults]\npublish = \"all\"\n[streams.a]\n[streams.b]\n"),
            "F:2:11: defaults.publish: streams a and b would both write bus all (every stream "
            "takes publish from [defaults]: give each its own)");
  // Reading another stream's bus is no conflict; neither are distinct names.
  EXPECT_EQ(Load("[streams.a]\npublish = \"cam\"\n[streams.b]\npublish = \"cam2\"\n"
                 "detector = \"bus:cam.detections\"\n")
                .streams.size(),
            2U);
}

TEST_F(ConfigTest, AnUnreadableFile) {
  auto config = LoadConfig(dir_ + "/missing.toml");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message, dir_ + "/missing.toml: cannot read the config file");
}

TEST(ConfigFromFlagsTest, OneStreamNamedDefault) {
  RunOptions options;
  options.source = "pattern:320x240@10";
  options.port = 9090;
  options.quality = 40;
  const Config config = ConfigFromFlags(options);
  EXPECT_EQ(config.path, "");
  EXPECT_EQ(config.server.port, 9090);
  ASSERT_EQ(config.streams.size(), 1U);
  EXPECT_EQ(config.streams[0].name, "default");
  EXPECT_EQ(config.streams[0].where, "");
  EXPECT_EQ(config.streams[0].options.source, "pattern:320x240@10");
  EXPECT_EQ(config.streams[0].options.quality, 40);
  EXPECT_EQ(config.streams[0].options.port, 9090);
}

TEST(ChangedKeysTest, ListsTheStreamKeysThatDiffer) {
  StreamConfig a{"a", RunOptions{}, ""};
  StreamConfig b = a;
  EXPECT_EQ(ChangedKeys(a, b), "");
  b.name = "renamed";
  b.where = "x:1:1";
  EXPECT_EQ(ChangedKeys(a, b), "");
  b.options.quality = 10;
  b.options.detector = "none";
  EXPECT_EQ(ChangedKeys(a, b), "detector, quality");
  b = a;
  b.options.height = 720;
  b.options.detection.input_height = 320;
  b.options.hud = false;
  EXPECT_EQ(ChangedKeys(a, b), "size, input-size, hud");
  // Server keys are not stream keys; ChangedServerKeys reports them.
  b = a;
  b.options.port = 1;
  b.options.allow_hosts = {"x.local"};
  EXPECT_EQ(ChangedKeys(a, b), "");
  EXPECT_EQ(ChangedServerKeys(a.options, b.options), "port, allow-host");
}

// Every flag of `run` has a key in the file (but --log-level and --config,
// which are not settings of a stream or the server), so the table in
// config.cpp and run_flags.cpp cannot drift apart.
TEST(ConfigKeysTest, EveryRunFlagHasAKey) {
  RunOptions options;
  CLI::App app;
  app.set_help_flag();
  AddRunOptions(app, options);
  size_t flags = 0;
  for (const CLI::Option* option : app.get_options()) {
    EXPECT_NE(ConfigKeyOfFlag(option->get_name()), "") << option->get_name();
    ++flags;
  }
  EXPECT_EQ(flags, 48U);
  EXPECT_EQ(ConfigKeyOfFlag("--port"), "port in [server]");
  EXPECT_EQ(ConfigKeyOfFlag("--no-hud"),
            "hud = false in [streams.NAME] (or [defaults], for every stream)");
  EXPECT_EQ(ConfigKeyOfFlag("--log-level"), "");
}

// CLI11's Range lets "nan" through (every comparison with NaN is false): the
// number flags refuse it themselves.
TEST(RunFlagsTest, NumbersRefuseNan) {
  for (const char* flag :
       {"--fps", "--detections-max-age", "--scale-factor", "--conf", "--nms", "--detect-fps",
        "--gop"}) {
    RunOptions options;
    CLI::App app;
    AddRunOptions(app, options);
    std::vector<std::string> args{"nan", flag};  // CLI11 takes them from the back
    EXPECT_THROW(app.parse(args), CLI::ValidationError) << flag;
  }
  RunOptions options;
  CLI::App app;
  AddRunOptions(app, options);
  std::vector<std::string> args{"7.5", "--detect-fps"};
  app.parse(args);
  EXPECT_DOUBLE_EQ(options.detect_fps, 7.5);
  std::vector<std::string> too_many{"241", "--detect-fps"};
  EXPECT_THROW(app.parse(too_many), CLI::ValidationError);
}

}  // namespace
}  // namespace freshframe::app
