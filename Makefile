# freshframe: the two commands of the Quick start, and a few for developers.
#   make run    install missing Debian packages, build (Release), run on the test pattern
#   make test   same set-up, build, run the whole test suite through ctest
#   make deb    the Debian package of that build: $(BUILD_DIR)/freshframe_VERSION_ARCH.deb
PRESET ?= release
BUILD_DIR := build/$(PRESET)
RUN_ARGS ?= --source pattern:640x480@30 --detector faces

.PHONY: deps configure build fuzz e2e-deps run test deb bench bench-bus bench-sources bench-h264 bench-fanout bench-browser bench-compare bench-python bench-streams bench-scaleout test-asan test-tsan format clean

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

run: build
	$(BUILD_DIR)/freshframe run $(RUN_ARGS)

# libFuzzer targets (fuzz/), built with clang in their own tree build/fuzz;
# ctest's fuzz.request runs them.
fuzz: deps
	@bash scripts/build-fuzz.sh

# tests/e2e's npm packages (playwright-core only; it drives Debian's chromium
# and never downloads a browser), installed from the lock file.
e2e-deps: deps
	@test -d tests/e2e/node_modules/playwright-core -a tests/e2e/node_modules/.package-lock.json -nt tests/e2e/package-lock.json || \
	  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error

# The Debian package (packaging/, docs/deploy-debian.md): man pages and the
# changelog, then CPack over the install rules of the tested build.
deb: build
	@cmake --build --preset $(PRESET) --target freshframe_package_files
	@cd $(BUILD_DIR) && cpack -G DEB

test: build fuzz e2e-deps deb
	ctest --preset $(PRESET)

bench: build
	/usr/bin/python3 bench/latency --binary $(BUILD_DIR)/freshframe

bench-bus: build
	$(BUILD_DIR)/bench/bus_bench $(BUS_BENCH_ARGS)

bench-sources: build
	$(BUILD_DIR)/bench/sources_bench $(SOURCES_BENCH_ARGS)

# H.264 encode ms/frame and kbit/s per libx264 preset vs TurboJPEG q85 (bench/h264/main.cpp)
bench-h264: build
	$(BUILD_DIR)/bench/h264_bench $(H264_BENCH_ARGS)

bench-browser: build e2e-deps
	node bench/browser/run.mjs $(BROWSER_BENCH_ARGS)

bench-fanout: build
	/usr/bin/python3 bench/fanout/run.py --binary $(BUILD_DIR)/freshframe $(FANOUT_BENCH_ARGS)

# capture, inference, Janus/RTSP/HLS and viewers as network namespaces, root only
# (bench/scaleout/README.md); e.g. make bench-scaleout SCALEOUT_BENCH_ARGS="--only 640x480"
bench-scaleout: build
	/usr/bin/python3 bench/scaleout/run.py --binary $(BUILD_DIR)/freshframe $(SCALEOUT_BENCH_ARGS)

# freshframe against the guide's designs (bench/compare/README.md); e.g.
#   make bench-compare COMPARE_ARGS=--quick
bench-compare: build
	/usr/bin/python3 bench/compare/run.py --binary $(BUILD_DIR)/freshframe $(COMPARE_ARGS)

# freshframe's Python package against the guide's Queue designs: hand-off
# cost and end to end with a Python model (bench/python/README.md); e.g.
#   make bench-python PYTHON_BENCH_ARGS=--quick
# 1, 2, 4 and 8 cameras in one server, with and without faces, and the grid
# page's cost (bench/streams/README.md); e.g. make bench-streams STREAMS_BENCH_ARGS=--quick
bench-streams: build
	/usr/bin/python3 bench/streams/run.py --binary $(BUILD_DIR)/freshframe $(STREAMS_BENCH_ARGS)

bench-python: build
	PYTHONPATH=$(BUILD_DIR)/python /usr/bin/python3 bench/python/run.py --binary $(BUILD_DIR)/freshframe --python-path $(BUILD_DIR)/python $(PYTHON_BENCH_ARGS)

test-asan:
	@$(MAKE) --no-print-directory PRESET=asan build
	ctest --preset asan

test-tsan:
	@$(MAKE) --no-print-directory PRESET=tsan build
	ctest --preset tsan

format:
	clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.h')

clean:
	rm -rf build
