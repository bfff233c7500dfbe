// RunProbe, CheckOptions, FormatText and ToJson (probe.h); one client's loop
// is in probe_client.cpp.
#include "probe/probe.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>

#include "core/clock.h"
#include "httpclient/redact.h"
#include "httpclient/url.h"
#include "probe/probe_client.h"

namespace freshframe::probe {
namespace {

// Latency samples kept in all (4 bytes each, 16 MiB); split evenly between
// the clients, with a floor so that a client's own distribution stays sharp.
constexpr size_t kSampleBudget = size_t{1} << 22;
constexpr size_t kMinSamplesPerClient = 4096;

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::string Fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

// Every client fails with the same error; nothing is run.
ProbeReport AllFailed(ProbeReport report, int clients, const std::string& error) {
  const int n = std::clamp(clients, 1, kMaxClients);
  report.per_client.assign(static_cast<size_t>(n), ClientReport{});
  for (auto& client : report.per_client) client.error = error;
  report.failed_clients = n;
  return report;
}

}  // namespace

std::string CheckOptions(const ProbeOptions& options) {
  std::string why;
  if (!httpclient::ParseUrl(options.url, &why))
    return "bad URL '" + httpclient::RedactUrl(options.url) + "': " + why;
  // Written so that NaN fails too.
  if (!(options.seconds > 0 && options.seconds <= kMaxSeconds)) {
    return "seconds must be in (0, " + std::to_string(static_cast<int>(kMaxSeconds)) + "]";
  }
  if (options.clients < 1 || options.clients > kMaxClients) {
    return "clients must be in [1, " + std::to_string(kMaxClients) + "]";
  }
  return {};
}

ProbeReport RunProbe(const ProbeOptions& options, const std::atomic<bool>* stop) {
  ProbeReport report;
  report.url = httpclient::RedactUrl(options.url);  // printed and returned as JSON
  report.seconds = options.seconds;
  report.clients = options.clients;
  // The clock starts before anything slow (resolving, starting threads), so
  // the run never takes longer than asked for.
  const int64_t start_us = MonotonicMicros();

  if (std::string problem = CheckOptions(options); !problem.empty()) {
    return AllFailed(std::move(report), options.clients, problem);
  }
  const httpclient::Url url = *httpclient::ParseUrl(options.url);
  std::vector<Address> addresses;
  std::string error;
  if (!Resolve(url, &addresses, &error))
    return AllFailed(std::move(report), options.clients, error);

  const auto clients = static_cast<size_t>(options.clients);
  const int64_t deadline_us = start_us + static_cast<int64_t>(std::llround(options.seconds * 1e6));
  const size_t capacity = std::max(kMinSamplesPerClient, kSampleBudget / clients);
  std::vector<ClientRun> runs;
  runs.reserve(clients);
  for (size_t i = 0; i < clients; ++i) runs.emplace_back(capacity, static_cast<uint32_t>(i + 1));

  // One thread per client: each owns runs[i] until it is joined, and only
  // reads `url`, `addresses` and `stop`, which outlive the threads.
  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (size_t i = 0; i < clients; ++i) {
    ClientRun* run = &runs[i];
    try {
      threads.emplace_back([&url, &addresses, deadline_us, stop, run] {
        RunClient(url, addresses, deadline_us, stop, run);
      });
    } catch (const std::system_error& e) {
      run->report.error = std::string("cannot start a client thread: ") + e.what();
    }
  }
  for (auto& thread : threads) thread.join();

  std::vector<double> fps;
  std::vector<const LatencySamples*> samples;
  for (const ClientRun& run : runs) {
    report.per_client.push_back(run.report);
    report.frames += run.report.frames;
    report.no_strip += run.report.no_strip;
    samples.push_back(&run.latency);
    if (run.report.error.empty()) {
      fps.push_back(run.report.fps);
    } else {
      ++report.failed_clients;
    }
  }
  if (!fps.empty()) {
    report.fps_min = *std::min_element(fps.begin(), fps.end());
    report.fps_max = *std::max_element(fps.begin(), fps.end());
    report.fps_median = Median(fps);
  }
  report.latency_ms = LatencySamples::Pool(samples);
  return report;
}

std::string FormatText(const ProbeReport& r) {
  std::string out;
  out += "probe " + r.url + "  " + Fixed(r.seconds, 1) + " s  " + std::to_string(r.clients) +
         (r.clients == 1 ? " client\n" : " clients\n");
  out += "frames      " + std::to_string(r.frames) + "  (no strip: " + std::to_string(r.no_strip) +
         ", failed clients: " + std::to_string(r.failed_clients) + ")\n";
  out += "fps         min " + Fixed(r.fps_min, 1) + "  median " + Fixed(r.fps_median, 1) +
         "  max " + Fixed(r.fps_max, 1) + "\n";
  const Percentiles& l = r.latency_ms;
  if (l.count == 0) {
    out += "latency ms  no readable strips\n";
  } else {
    out += "latency ms  p50 " + Fixed(l.p50, 1) + "  p90 " + Fixed(l.p90, 1) + "  p99 " +
           Fixed(l.p99, 1) + "  max " + Fixed(l.max, 1) + "  mean " + Fixed(l.mean, 1) +
           "  (n=" + std::to_string(l.count) + ")\n";
  }
  if (r.per_client.size() <= 10) {
    out += "client    frames       fps  no_strip  error\n";
    for (size_t i = 0; i < r.per_client.size(); ++i) {
      const ClientReport& c = r.per_client[i];
      char row[96];
      std::snprintf(row, sizeof(row), "%6zu  %8llu  %8.1f  %8llu  ", i,
                    static_cast<unsigned long long>(c.frames), c.fps,
                    static_cast<unsigned long long>(c.no_strip));
      out += row + (c.error.empty() ? std::string("-") : c.error) + "\n";
    }
  } else if (r.failed_clients > 0) {
    // Many clients usually fail for one reason: show each reason once.
    std::map<std::string, int> reasons;
    for (const ClientReport& c : r.per_client) {
      if (!c.error.empty()) ++reasons[c.error];
    }
    for (const auto& [reason, count] : reasons) {
      out += "failed      " + std::to_string(count) + " x " + reason + "\n";
    }
  }
  return out;
}

nlohmann::json ToJson(const ProbeReport& r) {
  nlohmann::json per_client = nlohmann::json::array();
  for (const ClientReport& c : r.per_client) {
    per_client.push_back({{"frames", c.frames},
                          {"fps", Round3(c.fps)},
                          {"no_strip", c.no_strip},
                          {"error", c.error}});
  }
  return {
      {"url", r.url},
      {"seconds", r.seconds},
      {"clients", r.clients},
      {"frames", r.frames},
      {"no_strip", r.no_strip},
      {"failed_clients", r.failed_clients},
      {"fps",
       {{"min", Round3(r.fps_min)}, {"median", Round3(r.fps_median)}, {"max", Round3(r.fps_max)}}},
      {"latency_ms", PercentilesToJson(r.latency_ms)},
      {"per_client", std::move(per_client)}};
}

}  // namespace freshframe::probe
