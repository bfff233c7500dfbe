#include "app/config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>

#include <toml++/toml.h>

#include "app/run_flags.h"

namespace freshframe::app {
namespace {

enum class Scope { kStream, kServer };

// What a key's value may be in the file; each becomes the text of its flag.
enum class Kind {
  kString,
  kInteger,
  kNumber,           // an integer or a float
  kBool,             // the flag is given for one value (KeySpec::flag)
  kStrings,          // a string or an array of strings: the flag repeated
  kIntegerOrString,  // input-size = 640 or "640x480"; bus-allow-owner = 1000 or "any"
  kOctal,            // bus-mode = "0660" or 0o660 (the flag takes octal digits)
};

using SameFn = bool (*)(const RunOptions&, const RunOptions&);

struct KeySpec {
  std::string_view name;  // in the file ("_" may stand for "-")
  Scope scope;
  Kind kind;
  // The run flag without "--". A kBool's flag is given for true, or for
  // false when it starts with "no-".
  std::string_view flag;
  SameFn same;  // whether two RunOptions agree on what this key sets
};

// The RunOptions fields a key sets, for ChangedKeys.
#define FF_FIELDS(...)                                                             \
  [](const RunOptions& a, const RunOptions& b) {                                   \
    const auto fields = [](const RunOptions& x) { return std::tie(__VA_ARGS__); }; \
    return fields(a) == fields(b);                                                 \
  }

// Every key, in the order of `run --help`. The test RunFlagsAllHaveAKey
// keeps this table and run_flags.cpp in step.
constexpr KeySpec kKeys[] = {
    {"source", Scope::kStream, Kind::kString, "source", FF_FIELDS(x.source)},
    {"size", Scope::kStream, Kind::kString, "size", FF_FIELDS(x.width, x.height)},
    {"fps", Scope::kStream, Kind::kNumber, "fps", FF_FIELDS(x.source_fps)},
    {"fourcc", Scope::kStream, Kind::kString, "fourcc", FF_FIELDS(x.fourcc)},
    {"loop", Scope::kStream, Kind::kBool, "loop", FF_FIELDS(x.loop)},
    {"rtsp-transport", Scope::kStream, Kind::kString, "rtsp-transport",
     FF_FIELDS(x.rtsp_transport)},
    {"source-token", Scope::kStream, Kind::kString, "source-token", FF_FIELDS(x.source_token)},
    {"source-token-file", Scope::kStream, Kind::kString, "source-token-file",
     FF_FIELDS(x.source_token_file)},
    {"detector", Scope::kStream, Kind::kString, "detector", FF_FIELDS(x.detector)},
    {"detections-max-age", Scope::kStream, Kind::kNumber, "detections-max-age",
     FF_FIELDS(x.detections_max_age)},
    {"cascade", Scope::kStream, Kind::kString, "cascade", FF_FIELDS(x.cascade)},
    {"scale-factor", Scope::kStream, Kind::kNumber, "scale-factor",
     FF_FIELDS(x.detection.scale_factor)},
    {"min-neighbours", Scope::kStream, Kind::kInteger, "min-neighbours",
     FF_FIELDS(x.detection.min_neighbours)},
    {"min-size", Scope::kStream, Kind::kInteger, "min-size", FF_FIELDS(x.detection.min_size)},
    {"labels", Scope::kStream, Kind::kString, "labels", FF_FIELDS(x.detection.labels_path)},
    {"input-size", Scope::kStream, Kind::kIntegerOrString, "input-size",
     FF_FIELDS(x.detection.input_width, x.detection.input_height)},
    {"conf", Scope::kStream, Kind::kNumber, "conf", FF_FIELDS(x.detection.confidence)},
    {"nms", Scope::kStream, Kind::kNumber, "nms", FF_FIELDS(x.detection.nms)},
    {"min-area", Scope::kStream, Kind::kInteger, "min-area", FF_FIELDS(x.detection.min_area)},
    {"overlay", Scope::kStream, Kind::kString, "overlay", FF_FIELDS(x.overlay)},
    {"hud", Scope::kStream, Kind::kBool, "no-hud", FF_FIELDS(x.hud)},
    {"mirror", Scope::kStream, Kind::kBool, "mirror", FF_FIELDS(x.mirror)},
    {"detector-threads", Scope::kServer, Kind::kInteger, "detector-threads",
     FF_FIELDS(x.detector_threads)},
    {"detect-fps", Scope::kStream, Kind::kNumber, "detect-fps", FF_FIELDS(x.detect_fps)},
    {"quality", Scope::kStream, Kind::kInteger, "quality", FF_FIELDS(x.quality)},
    {"h264-encoder", Scope::kStream, Kind::kString, "h264-encoder", FF_FIELDS(x.h264_encoder)},
    {"h264-preset", Scope::kStream, Kind::kString, "h264-preset", FF_FIELDS(x.h264_preset)},
    {"h264-bitrate", Scope::kStream, Kind::kInteger, "h264-bitrate", FF_FIELDS(x.h264_bitrate)},
    {"gop", Scope::kStream, Kind::kNumber, "gop", FF_FIELDS(x.gop)},
    {"max-webrtc-peers", Scope::kStream, Kind::kInteger, "max-webrtc-peers",
     FF_FIELDS(x.max_webrtc_peers)},
    {"rtp-out", Scope::kStream, Kind::kStrings, "rtp-out", FF_FIELDS(x.rtp_out)},
    {"rtmp-out", Scope::kStream, Kind::kStrings, "rtmp-out", FF_FIELDS(x.rtmp_out)},
    {"rtsp-port", Scope::kServer, Kind::kInteger, "rtsp-port", FF_FIELDS(x.rtsp_port)},
    {"bind", Scope::kServer, Kind::kString, "bind", FF_FIELDS(x.bind)},
    {"port", Scope::kServer, Kind::kInteger, "port", FF_FIELDS(x.port)},
    {"threads", Scope::kServer, Kind::kInteger, "threads", FF_FIELDS(x.threads)},
    {"token", Scope::kServer, Kind::kString, "token", FF_FIELDS(x.token)},
    {"token-file", Scope::kServer, Kind::kString, "token-file", FF_FIELDS(x.token_file)},
    {"basic-auth", Scope::kServer, Kind::kString, "basic-auth", FF_FIELDS(x.basic_auth)},
    {"allow-origin", Scope::kServer, Kind::kStrings, "allow-origin", FF_FIELDS(x.allow_origins)},
    {"allow-host", Scope::kServer, Kind::kStrings, "allow-host", FF_FIELDS(x.allow_hosts)},
    {"max-clients", Scope::kServer, Kind::kInteger, "max-clients", FF_FIELDS(x.max_clients)},
    {"max-variants", Scope::kServer, Kind::kInteger, "max-variants", FF_FIELDS(x.max_variants)},
    {"max-connections-per-address", Scope::kServer, Kind::kInteger, "max-connections-per-address",
     FF_FIELDS(x.max_connections_per_address)},
    {"publish", Scope::kStream, Kind::kString, "publish", FF_FIELDS(x.publish)},
    {"bus-mode", Scope::kServer, Kind::kOctal, "bus-mode", FF_FIELDS(x.bus_mode)},
    {"bus-allow-owner", Scope::kServer, Kind::kIntegerOrString, "bus-allow-owner",
     FF_FIELDS(x.bus_allow_owner, x.bus_allow_any_owner)},
    {"bus-slots", Scope::kServer, Kind::kInteger, "bus-slots", FF_FIELDS(x.bus_slots)},
};

#undef FF_FIELDS

const KeySpec* FindKey(std::string_view name) {
  for (const KeySpec& spec : kKeys) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string Canonical(std::string_view key) {
  std::string name(key);
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

std::string KeyList(Scope scope) {
  std::string list;
  for (const KeySpec& spec : kKeys) {
    if (spec.scope != scope) continue;
    if (!list.empty()) list += ", ";
    list += spec.name;
  }
  return list;
}

// Where a key of `scope` belongs, for "put it in ..." messages.
std::string_view Home(Scope scope) {
  return scope == Scope::kServer ? "[server]" : "[streams.NAME] (or [defaults], for every stream)";
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The known key closest to a misspelt one, if it is close enough to be meant.
const KeySpec* Nearest(std::string_view name) {
  const KeySpec* best = nullptr;
  size_t best_distance = 3;  // at most two edits
  for (const KeySpec& spec : kKeys) {
    const size_t distance = EditDistance(name, spec.name);
    if (distance < best_distance) {
      best = &spec;
      best_distance = distance;
    }
  }
  return best;
}

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date or time";
  }
}

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kString:
      return "a string";
    case Kind::kInteger:
      return "an integer";
    case Kind::kNumber:
      return "a number";
    case Kind::kBool:
      return "true or false";
    case Kind::kStrings:
      return "a string or an array of strings";
    case Kind::kIntegerOrString:
      return "an integer or a string";
    case Kind::kOctal:
      return "octal digits in a string (\"0660\") or an octal integer (0o660)";
  }
  return "";
}

// The flag text of one scalar, or nullopt if `kind` does not take its type.
std::optional<std::string> ScalarText(const toml::node& node, Kind kind) {
  if (const auto* text = node.as_string()) {
    if (kind == Kind::kString || kind == Kind::kStrings || kind == Kind::kIntegerOrString ||
        kind == Kind::kOctal) {
      return text->get();
    }
  } else if (const auto* integer = node.as_integer()) {
    char digits[32];
    const int base = kind == Kind::kOctal ? 8 : 10;
    if (kind == Kind::kInteger || kind == Kind::kNumber || kind == Kind::kIntegerOrString ||
        kind == Kind::kOctal) {
      const auto end = std::to_chars(std::begin(digits), std::end(digits), integer->get(), base);
      return std::string(digits, end.ptr);
    }
  } else if (const auto* number = node.as_floating_point(); number && kind == Kind::kNumber) {
    // Shortest text that reads back as the same double (nan/inf as "nan"/"inf").
    char digits[64];
    const auto end = std::to_chars(std::begin(digits), std::end(digits), number->get());
    return std::string(digits, end.ptr);
  }
  return std::nullopt;
}

std::string Position(const std::string& file, const toml::source_position& at) {
  return file + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
}

Error ErrorAt(const std::string& file, const toml::source_position& at, std::string_view path,
              std::string_view what) {
  return Error{Position(file, at) + ": " + std::string(path) + ": " + std::string(what)};
}

// CLI11's message about flags, told about keys: "--quality: Value 0 not in
// range 1 to 100" -> "Value 0 not in range 1 to 100".
std::string FlagsToKeys(std::string message) {
  if (message.rfind("--", 0) == 0) {
    if (const size_t colon = message.find(": "); colon != std::string::npos) {
      message.erase(0, colon + 2);
    }
  }
  // "--token excludes --token-file" -> "token excludes token-file".
  for (size_t at = message.find("--"); at != std::string::npos; at = message.find("--", at + 1)) {
    if (at == 0 || message[at - 1] == ' ') message.erase(at, 2);
  }
  return message;
}

// `run FLAGS` as the command line would take them.
Expected<RunOptions> ParseFlags(const std::vector<std::string>& flags) {
  RunOptions options;
  CLI::App app;
  app.set_help_flag();
  AddRunOptions(app, options);
  std::vector<std::string> reversed(flags.rbegin(), flags.rend());  // CLI11 pops from the back
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return Error{FlagsToKeys(e.what())};
  }
  return options;
}

// One `key = value` of a table, checked on its own.
struct Entry {
  const KeySpec* spec = nullptr;
  std::string path;                // "streams.cam1.quality", spelt as in the file
  toml::source_position where{};   // of the value
  std::vector<std::string> flags;  // what it stands for: "--quality=85"
};

// The flags `value` stands for ("" is "not given": it cancels a [defaults] value).
Expected<std::vector<std::string>> ToFlags(const std::string& file, const KeySpec& spec,
                                           const toml::node& value, const std::string& path) {
  const std::string flag = "--" + std::string(spec.flag);
  const auto wrong_type = [&](const toml::node& node, const std::string& where) {
    return ErrorAt(
        file, node.source().begin, where,
        "expected " + std::string(KindName(spec.kind)) + ", not " + std::string(TypeName(node)));
  };
  std::vector<std::string> flags;
  if (spec.kind == Kind::kBool) {
    const auto* boolean = value.as_boolean();
    if (boolean == nullptr) return wrong_type(value, path);
    if (boolean->get() != spec.flag.starts_with("no-")) flags.push_back(flag);
    return flags;
  }
  if (const auto* array = value.as_array(); array != nullptr && spec.kind == Kind::kStrings) {
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const auto text = ScalarText(element, Kind::kString);
      if (!text) return wrong_type(element, path + "[" + std::to_string(i) + "]");
      if (!text->empty()) flags.push_back(flag + "=" + *text);
    }
    return flags;
  }
  const auto text = ScalarText(value, spec.kind);
  if (!text) return wrong_type(value, path);
  if (!text->empty()) flags.push_back(flag + "=" + *text);
  return flags;
}

enum class TableKind { kServer, kDefaults, kStream };

// The keys of [server], [defaults] or [streams.NAME] in file order, each
// known, in its place, of its type and accepted by its flag's validators.
Expected<std::vector<Entry>> ReadKeys(const std::string& file, const toml::table& table,
                                      const std::string& table_path, TableKind kind) {
  std::vector<std::pair<const toml::key*, const toml::node*>> keys;
  for (auto&& [key, node] : table) keys.emplace_back(&key, &node);
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return a.first->source().begin < b.first->source().begin;
  });
  const Scope scope = kind == TableKind::kServer ? Scope::kServer : Scope::kStream;
  const std::string_view table_name =
      kind == TableKind::kServer ? "[server]"
                                 : (kind == TableKind::kDefaults ? "[defaults]" : "a stream");
  std::vector<Entry> entries;
  for (const auto& [key, node] : keys) {
    const std::string path = table_path + "." + std::string(key->str());
    const toml::source_position at = key->source().begin;
    const KeySpec* spec = FindKey(Canonical(key->str()));
    if (spec == nullptr) {
      const KeySpec* near = Nearest(Canonical(key->str()));
      std::string what = "unknown key";
      if (near != nullptr) {
        what += "; did you mean " + std::string(near->name) +
                (near->scope == scope ? "?" : " (in " + std::string(Home(near->scope)) + ")?");
      } else {
        what += "; " + std::string(table_name) + " takes " + KeyList(scope);
      }
      return ErrorAt(file, at, path, what);
    }
    if (spec->scope != scope) {
      return ErrorAt(file, at, path,
                     std::string(spec->scope == Scope::kServer ? "a server key" : "a stream key") +
                         ": put it in " + std::string(Home(spec->scope)));
    }
    for (const Entry& earlier : entries) {
      if (earlier.spec == spec) {
        return ErrorAt(file, at, path, "the same key as " + earlier.path + " (\"_\" is \"-\")");
      }
    }
    auto flags = ToFlags(file, *spec, *node, path);
    if (!flags) return flags.error();
    if (auto alone = ParseFlags(*flags); !alone) {
      return ErrorAt(file, node->source().begin, path, alone.error().message);
    }
    entries.push_back(Entry{spec, path, node->source().begin, std::move(flags).value()});
  }
  return entries;
}

// `base` and the flags of `entries` parsed together (token and token-file
// exclude each other, say). A refusal is pinned to the first entry that
// brings it about, else to the table itself.
Expected<RunOptions> ParseTogether(const std::string& file, std::vector<std::string> base,
                                   const std::vector<const Entry*>& entries,
                                   const toml::source_position& table_at,
                                   const std::string& table_path) {
  std::vector<std::string> all = base;
  for (const Entry* entry : entries)
    all.insert(all.end(), entry->flags.begin(), entry->flags.end());
  auto parsed = ParseFlags(all);
  if (parsed) return parsed;
  for (const Entry* entry : entries) {
    base.insert(base.end(), entry->flags.begin(), entry->flags.end());
    if (auto prefix = ParseFlags(base); !prefix) {
      return ErrorAt(file, entry->where, entry->path, prefix.error().message);
    }
  }
  return ErrorAt(file, table_at, table_path, parsed.error().message);
}

bool UrlSafe(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// The buses a stream writes: publish = NAME writes NAME (annotated frames),
// NAME.raw and NAME.detections.
std::vector<std::string> WrittenBuses(const RunOptions& options) {
  if (options.publish.empty()) return {};
  return {options.publish, options.publish + ".raw", options.publish + ".detections"};
}

// The top-level tables, each checked for its place and shape.
struct Tables {
  const toml::table* server = nullptr;
  const toml::table* defaults = nullptr;
  const toml::table* streams = nullptr;
};

Expected<Tables> FindTables(const std::string& file, const toml::table& root) {
  Tables tables;
  for (auto&& [key, node] : root) {
    const std::string name(key.str());
    const toml::source_position at = key.source().begin;
    const toml::table** slot = name == "server"     ? &tables.server
                               : name == "defaults" ? &tables.defaults
                               : name == "streams"  ? &tables.streams
                                                    : nullptr;
    if (slot == nullptr) {
      if (const KeySpec* spec = FindKey(Canonical(name))) {
        return ErrorAt(file, at, name,
                       "a key outside any table: put it in " + std::string(Home(spec->scope)));
      }
      const bool meant_streams = EditDistance(name, "streams") <= 2;
      return ErrorAt(file, at, name,
                     meant_streams ? "unknown table; did you mean [streams.NAME]?"
                                   : "unknown table; a config has [server], [defaults] and "
                                     "[streams.NAME] tables");
    }
    *slot = node.as_table();
    if (*slot == nullptr) {
      return ErrorAt(file, node.source().begin, name,
                     "expected a table ([" + name + (name == "streams" ? ".NAME]" : "]") +
                         "), not " + std::string(TypeName(node)));
    }
  }
  return tables;
}

Expected<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot read the config file"};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Error{path + ": cannot read the config file"};
  return text;
}

}  // namespace

Config ConfigFromFlags(const RunOptions& options) {
  Config config;
  config.server = options;
  config.streams.push_back(StreamConfig{"default", options, ""});
  return config;
}

Expected<Config> LoadConfig(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) return text.error();
  toml::table root;
  try {
    root = toml::parse(*text, path);
  } catch (const toml::parse_error& e) {
    return ErrorAt(path, e.source().begin, "TOML", e.description());
  }
  auto tables = FindTables(path, root);
  if (!tables) return tables.error();
  const toml::table empty;

  Config config;
  config.path = path;
  const toml::table& server = tables->server ? *tables->server : empty;
  auto server_entries = ReadKeys(path, server, "server", TableKind::kServer);
  if (!server_entries) return server_entries.error();
  std::vector<const Entry*> server_list;
  std::vector<std::string> server_flags;
  for (const Entry& entry : *server_entries) {
    server_list.push_back(&entry);
    server_flags.insert(server_flags.end(), entry.flags.begin(), entry.flags.end());
  }
  auto server_options = ParseTogether(path, {}, server_list, server.source().begin, "server");
  if (!server_options) return server_options.error();
  config.server = *server_options;

  auto defaults = ReadKeys(path, tables->defaults ? *tables->defaults : empty, "defaults",
                           TableKind::kDefaults);
  if (!defaults) return defaults.error();

  // toml::table is ordered by key: the file's order is the tables' positions.
  std::vector<std::pair<std::string, const toml::node*>> streams;
  if (tables->streams != nullptr) {
    for (auto&& [key, node] : *tables->streams) streams.emplace_back(key.str(), &node);
  }
  std::sort(streams.begin(), streams.end(), [](const auto& a, const auto& b) {
    return a.second->source().begin < b.second->source().begin;
  });
  // Which stream writes each bus, and through which key (copied: a stream's
  // entries last one turn of the loop).
  struct Writer {
    std::string stream;
    std::string key_path;
    std::string at;
  };
  std::map<std::string, Writer> writers;
  for (const auto& [name, node] : streams) {
    const std::string stream_path = "streams." + name;
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      return ErrorAt(path, node->source().begin, stream_path,
                     "expected a table [" + stream_path + "], not " + std::string(TypeName(*node)));
    }
    const toml::source_position at = table->source().begin;
    if (!UrlSafe(name)) {
      return ErrorAt(path, at, stream_path,
                     "a stream name is 1 to 64 of A-Z a-z 0-9 _ - (it is part of its URLs)");
    }
    auto own = ReadKeys(path, *table, stream_path, TableKind::kStream);
    if (!own) return own.error();
    std::vector<const Entry*> merged;  // [defaults] first, so a culprit is the stream's own key
    for (const Entry& entry : *defaults) {
      const bool overridden = std::any_of(
          own->begin(), own->end(), [&](const Entry& mine) { return mine.spec == entry.spec; });
      if (!overridden) merged.push_back(&entry);
    }
    for (const Entry& entry : *own) merged.push_back(&entry);
    auto options = ParseTogether(path, server_flags, merged, at, stream_path);
    if (!options) return options.error();

    const auto publish = std::find_if(merged.begin(), merged.end(), [](const Entry* entry) {
      return entry->spec->name == "publish";
    });
    for (const std::string& bus : WrittenBuses(*options)) {
      if (publish == merged.end()) break;  // only publish writes a bus
      const Entry& key = **publish;
      auto [it, first] = writers.emplace(bus, Writer{name, key.path, Position(path, key.where)});
      if (!first) {
        const Writer& other = it->second;
        const std::string both =
            "streams " + other.stream + " and " + name + " would both write bus " + bus;
        if (other.key_path == key.path) {
          return ErrorAt(path, (*publish)->where, (*publish)->path,
                         both + " (every stream takes publish from [defaults]: give each its own)");
        }
        return ErrorAt(path, (*publish)->where, (*publish)->path,
                       both + " (publish = NAME writes NAME, NAME.raw and NAME.detections; " +
                           other.key_path + " is at " + other.at + ")");
      }
    }
    config.streams.push_back(StreamConfig{name, std::move(options).value(), Position(path, at)});
  }
  if (config.streams.empty()) {
    const toml::source_position at =
        tables->streams ? tables->streams->source().begin : toml::source_position{1, 1};
    return ErrorAt(path, at, "streams", "no stream: add a [streams.NAME] table for each camera");
  }
  return config;
}

namespace {

std::string Changed(const RunOptions& a, const RunOptions& b, Scope scope) {
  std::string keys;
  for (const KeySpec& spec : kKeys) {
    if (spec.scope != scope || spec.same(a, b)) continue;
    if (!keys.empty()) keys += ", ";
    keys += spec.name;
  }
  return keys;
}

}  // namespace

std::string ChangedKeys(const StreamConfig& a, const StreamConfig& b) {
  return Changed(a.options, b.options, Scope::kStream);
}

std::string ChangedServerKeys(const RunOptions& a, const RunOptions& b) {
  return Changed(a, b, Scope::kServer);
}

std::string ConfigKeyOfFlag(std::string_view flag) {
  if (flag.starts_with("--")) flag.remove_prefix(2);
  for (const KeySpec& spec : kKeys) {
    if (spec.flag != flag) continue;
    const std::string key = spec.kind == Kind::kBool && flag.starts_with("no-")
                                ? std::string(spec.name) + " = false"
                                : std::string(spec.name);
    return key + " in " + std::string(Home(spec.scope));
  }
  return {};
}

}  // namespace freshframe::app
