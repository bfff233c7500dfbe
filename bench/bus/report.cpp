#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace busbench {

// ------------------------------------------------------------ statistics

Stats Summarise(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    auto i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  s.n = v.size();
  s.p50 = rank(0.50);
  s.p99 = rank(0.99);
  s.max = v.back();
  return s;
}

json StatsJson(const std::optional<Stats>& s) {
  if (!s) return nullptr;
  return json{{"n", s->n}, {"p50_us", s->p50}, {"p99_us", s->p99}, {"max_us", s->max}};
}

std::optional<Stats> StatsFrom(const json& j) {
  if (!j.is_object()) return std::nullopt;
  Stats s;
  s.n = j.value("n", size_t{0});
  s.p50 = j.value("p50_us", 0.0);
  s.p99 = j.value("p99_us", 0.0);
  s.max = j.value("max_us", 0.0);
  return s;
}

std::string SizeName(Size s) { return std::to_string(s.width) + "x" + std::to_string(s.height); }

// ------------------------------------------------------------ table rows

json RowJson(const Row& r) {
  return json{{"transport", r.transport},
              {"size", SizeName(r.size)},
              {"readers", r.readers},
              {"latency", StatsJson(r.lat)},
              {"wake_after_publish_returned", StatsJson(r.wake)},
              {"publish_call", StatsJson(r.send)},
              {"latency_earliest_reader", StatsJson(r.first)},
              {"latency_run_rate_hz", r.rate_hz},
              {"latency_run_got_min", r.got_min},
              {"pub_fps", r.pub_fps},
              {"recv_fps_min", r.recv_fps_min},
              {"bus_writer_dropped", r.dropped},
              {"latency_run_processes", r.process},
              {"other_processes_cpu_percent", r.other_cpu ? json(*r.other_cpu) : json(nullptr)},
              {"error", r.error.empty() ? json(nullptr) : json(r.error)}};
}

std::string Fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void PrintTable(const std::vector<Row>& rows) {
  auto opt = [](const std::optional<Stats>& st, double Stats::*field) {
    return st ? Fmt((*st).*field) : std::string("-");
  };
  std::printf("\n%-11s %-9s %2s | %8s %8s %8s | %7s %7s | %8s | %6s %4s | %8s %8s | %4s\n",
              "transport", "size", "rd", "p50 us", "p99 us", "max us", "ret p50", "ret p99",
              "call p50", "lat Hz", "got%", "pub fps", "recv fps", "bg%");
  std::printf("%s\n", std::string(124, '-').c_str());
  for (const Row& r : rows) {
    if (!r.error.empty()) {
      std::printf("%-11s %-9s %2d | FAILED: %s\n", r.transport.c_str(), SizeName(r.size).c_str(),
                  r.readers, r.error.c_str());
      continue;
    }
    std::printf("%-11s %-9s %2d | %8s %8s %8s | %7s %7s | %8s | %6s %4s | %8s %8s | %4s\n",
                r.transport.c_str(), SizeName(r.size).c_str(), r.readers,
                opt(r.lat, &Stats::p50).c_str(), opt(r.lat, &Stats::p99).c_str(),
                opt(r.lat, &Stats::max).c_str(), opt(r.wake, &Stats::p50).c_str(),
                opt(r.wake, &Stats::p99).c_str(), opt(r.send, &Stats::p50).c_str(),
                Fmt(r.rate_hz, 0).c_str(), Fmt(100 * r.got_min, 0).c_str(),
                Fmt(r.pub_fps, 0).c_str(), Fmt(r.recv_fps_min, 0).c_str(),
                r.other_cpu ? Fmt(*r.other_cpu, 0).c_str() : "-");
  }
  std::printf(
      "\n"
      "p50/p99/max: CLOCK_MONOTONIC stamp taken just before the publish/send call -> the reader "
      "has\n"
      "  the whole frame in hand (bus, bus-publish: ReadView returned; bus-copy: ReadCopy "
      "returned;\n"
      "  uds/zmq: last byte received; python: Queue.get returned the array), over all readers.\n"
      "  bus, bus-copy: the writer produced the frame in a claimed slot before the stamp; the\n"
      "  publish call is Commit. bus-publish: the copying Publish() (a memcpy of the frame).\n"
      "  futex-floor: no frame, only a stamp and a FUTEX_WAKE: this machine's floor.\n"
      "ret p50/p99: bus and floor rows, from the publish call *returning* (futex woken) -> in "
      "hand: the\n"
      "  wake-up alone. Can be negative: a woken reader may run before the writer's wake-all\n"
      "  syscall returns.\n"
      "call p50: the writer's publish/send call itself (bus: Commit + wake; bus-publish: copy "
      "into\n"
      "  the slot + wake; uds: the sends to every reader in turn; zmq: queueing a zero-copy\n"
      "  message to the I/O thread).\n"
      "lat Hz / got%%: publish rate achieved in the latency run (asked: see header) and the share "
      "of\n"
      "  measured frames the slowest reader got.  pub fps / recv fps: throughput run, writer\n"
      "  publishing flat out; recv fps is the slowest reader's frames received per second\n"
      "  (zmq-ipc pub fps counts send() calls, most of them dropped at the HWM).\n"
      "bg%%: CPU used by processes other than this benchmark's during the row's runs, %% of all\n"
      "  CPUs (/proc/stat minus our own and our children's): high values inflate the tails.\n"
      "Semantics differ: bus = newest-only (writer never waits, readers skip frames they were too\n"
      "  slow for); uds = every frame to every reader (writer blocks on the slowest reader);\n"
      "  zmq-ipc = PUB/SUB, SNDHWM=RCVHWM=2 (plus kernel socket buffers), a subscriber that falls\n"
      "  behind loses frames, the writer never blocks; py-mp-queue = every frame, put() blocks\n"
      "  when a consumer's Queue(maxsize=2) is full.\n");
}

// ------------------------------------------------------------ checks

namespace {

const Row* FindRow(const std::vector<Row>& rows, const std::string& transport, Size size,
                   int readers) {
  for (const Row& r : rows) {
    if (r.transport == transport && r.size.width == size.width && r.size.height == size.height &&
        r.readers == readers && r.error.empty()) {
      return &r;
    }
  }
  return nullptr;
}

}  // namespace

std::vector<Check> Checks(const std::vector<Row>& rows, const DriverOptions& o) {
  std::vector<Check> checks;
  for (const Row& r : rows) {
    if (r.transport != "bus") continue;
    Check c;
    c.name =
        "bus p99 < 50 us, " + SizeName(r.size) + ", " + std::to_string(r.readers) + " reader(s)";
    if (!r.lat) {
      c.result = "FAIL";
      c.detail = "no measurement" + (r.error.empty() ? "" : ": " + r.error);
    } else {
      c.result = r.lat->p99 < 50 ? "PASS" : "FAIL";
      c.detail = "p99 " + Fmt(r.lat->p99) + " us from before Commit() (Commit() itself: p50 " +
                 (r.send ? Fmt(r.send->p50) : "?") + " us); p99 " +
                 (r.wake ? Fmt(r.wake->p99) : "?") + " us from Commit() returning";
      if (r.readers > 1 && r.first) {
        c.detail += "; first reader to have each frame: p99 " + Fmt(r.first->p99) + " us";
      }
      // The bare futex wake-up with the same readers, measured in the same
      // run: what this machine allows whatever the bus does.
      if (const Row* floor = FindRow(rows, "futex-floor", r.size, r.readers);
          floor != nullptr && floor->lat) {
        c.detail +=
            "; futex floor p50 " + Fmt(floor->lat->p50) + " / p99 " + Fmt(floor->lat->p99) + " us";
      }
    }
    checks.push_back(c);
  }
  const Size hd{1920, 1080};
  for (int readers : o.readers) {
    Check c;
    c.name =
        "bus >= 1000 frames/s published at 1920x1080, " + std::to_string(readers) + " reader(s)";
    if (const Row* r = FindRow(rows, "bus", hd, readers)) {
      c.result = r->pub_fps >= 1000 ? "PASS" : "FAIL";
      c.detail = "published " + Fmt(r->pub_fps, 0) + " fps; slowest reader received " +
                 Fmt(r->recv_fps_min, 0) + " fps (newest-only: readers skip)";
    } else {
      c.result = "n/a";
      c.detail = "no bus 1920x1080 row in this run";
    }
    checks.push_back(c);
  }
  for (int readers : o.readers) {
    Check c;
    c.name =
        "bus p99 >= 10x lower than zmq-ipc at 1920x1080, " + std::to_string(readers) + " reader(s)";
    const Row* bus = FindRow(rows, "bus", hd, readers);
    const Row* zmq = FindRow(rows, "zmq-ipc", hd, readers);
    if (bus != nullptr && zmq != nullptr && bus->lat && zmq->lat) {
      const double ratio = zmq->lat->p99 / std::max(bus->lat->p99, 1e-3);
      c.result = ratio >= 10 ? "PASS" : "FAIL";
      c.detail = "zmq p99 " + Fmt(zmq->lat->p99) + " us / bus p99 " + Fmt(bus->lat->p99) +
                 " us = " + Fmt(ratio) + "x; p50s: zmq " + Fmt(zmq->lat->p50) + " us, bus " +
                 Fmt(bus->lat->p50) + " us";
      if (zmq->got_min < 0.999) {
        c.detail += " (zmq reader got " + Fmt(100 * zmq->got_min, 0) +
                    "% of frames at the latency rate: saturated, its p99 includes queueing)";
      }
    } else {
      c.result = "n/a";
      c.detail = "needs bus and zmq-ipc 1920x1080 rows";
    }
    checks.push_back(c);
  }
  return checks;
}

}  // namespace busbench
