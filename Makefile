# freshframe: the two commands of the Quick start, and a few for developers.
#   make run    install missing Debian packages, build (Release), run on the test pattern
#   make test   same set-up, build, run the whole test suite through ctest
PRESET ?= release
BUILD_DIR := build/$(PRESET)
RUN_ARGS ?= --source pattern:640x480@30 --detector faces

.PHONY: deps configure build fuzz run test bench bench-bus bench-sources bench-fanout test-asan test-tsan format clean

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

test: build fuzz
	ctest --preset $(PRESET)

bench: build
	/usr/bin/python3 bench/latency --binary $(BUILD_DIR)/freshframe

bench-bus: build
	$(BUILD_DIR)/bench/bus_bench $(BUS_BENCH_ARGS)

bench-sources: build
	$(BUILD_DIR)/bench/sources_bench $(SOURCES_BENCH_ARGS)

bench-fanout: build
	/usr/bin/python3 bench/fanout/run.py --binary $(BUILD_DIR)/freshframe $(FANOUT_BENCH_ARGS)

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
