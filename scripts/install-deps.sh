#!/usr/bin/env bash
# Installs the Debian packages freshframe needs to build, test and run.
# Idempotent: packages already installed are left alone, and apt-get is only
# called when something is missing. Uses sudo when not run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libopencv-dev opencv-data
  libturbojpeg0-dev libjpeg-dev
  libboost1.81-dev
  libcli11-dev libspdlog-dev nlohmann-json3-dev
  libtomlplusplus-dev  # run --config FILE.toml (src/app/config.cpp)
  libgtest-dev libgmock-dev libbenchmark-dev
  libzmq3-dev cppzmq-dev python3-numpy python3-onnx
  python3 python3-pytest  # tests/python: the freshframe Python package (python/)
  clang libclang-rt-14-dev  # fuzz/: libFuzzer + ASan/UBSan runtimes (scripts/build-fuzz.sh)
  nginx openssl  # tests/integration/test_nginx.py (TLS reverse proxy, docs/deploy-nginx.md)
  prometheus  # for promtool (tests/integration/test_metrics.py); Debian ships no promtool alone
  # bench/compare and its test: the guide's designs (bench/baselines) and the plots
  python3-opencv python3-flask python3-gunicorn python3-eventlet python3-matplotlib
  chromium  # tests/e2e: the page in a real browser, driven by playwright-core from npm
  gstreamer1.0-plugins-base  # gst: sources (appsink, videotestsrc); test_cli.py stalls one at shutdown
  libavcodec-dev libavutil-dev libswscale-dev  # src/h264: libx264 through libavcodec
  # src/webrtc: WHEP playback through GStreamer's webrtcbin (rtph264pay, DTLS/SRTP, ICE)
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice
  python3-av python3-aiortc  # tests: decode /stream.h264 (PyAV), a WHEP player (aiortc)
  libavformat-dev libnginx-mod-rtmp  # src/rtmp: RTMP push (FLV); tests/integration/test_hls.py: nginx-rtmp writes HLS
  janus  # tests/integration/test_janus.py: the streaming plugin fed by --rtp-out (docs/deploy-janus.md)
  # make deb and tests/package: man pages from --help, lintian, a booted
  # systemd in a container for freshframe.service (systemd-nspawn)
  help2man lintian man-db systemd-container
  libgstrtspserver-1.0-dev  # src/rtsp: --rtsp-port through gst-rtsp-server (h264parse and openh264dec, the tests' decoder, are in plugins-bad; rtspsrc in plugins-good)
)
# Node.js and npm run tests/web and tests/e2e. A machine that has its own
# Node.js (not from Debian) keeps it: Debian's npm would conflict with it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# nginx and prometheus are here for their binaries only (the tests start
# their own instances on loopback): keep their packages from starting system
# services (on :80 and :9090) while installing, via policy-rc.d.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
