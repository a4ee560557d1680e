# possum: a thin wrapper over CMake. `make demo` and `make test` install what a fresh
# Debian machine lacks (scripts/deps.sh) before anything else.
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
BUILD     ?= build
ASAN      ?= build-asan
FUZZBUILD ?= build-fuzz
RELEASE   ?= build-release
FUZZ_SECONDS ?= 60
CMAKE_GEN = -G "Unix Makefiles"
CLANG_FORMAT ?= clang-format
# The C files clang-format owns (.clang-format at the top says how).
FORMAT_FILES = find src tests bench -name '*.[ch]'

.PHONY: all build deps demo run test unit asan fuzz fuzz-short bench clean format format-check

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug >/dev/null

build: $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

# The whole platform on its embedded default (SQLite), every flow shown in plain words.
demo: deps
	@$(MAKE) --no-print-directory build
	@bash scripts/demo.sh $(BUILD)

# The platform on the embedded default, until Ctrl-C.
run: build
	@bash scripts/run.sh $(BUILD)

# Everything CI checks: the layout, unit + e2e (both storage backends), the sanitizer run, short
# fuzz runs.
test: deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzz-short
	@echo "make test: all stages passed"

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan:
	cmake -S . -B $(ASAN) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DPOSSUM_SANITIZE=ON \
	  -DCMAKE_C_COMPILER=clang >/dev/null
	cmake --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

$(FUZZBUILD)/Makefile:
	cmake -S . -B $(FUZZBUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DPOSSUM_FUZZ=ON \
	  -DCMAKE_C_COMPILER=clang >/dev/null

# Each fuzz target for FUZZ_SECONDS (default 60), starting from its seed corpus.
fuzz: $(FUZZBUILD)/Makefile
	cmake --build $(FUZZBUILD) -j $(JOBS)
	@bash scripts/fuzz.sh $(FUZZBUILD) $(FUZZ_SECONDS)

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

bench:
	cmake -S . -B $(RELEASE) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(RELEASE) -j $(JOBS)
	@bash scripts/bench.sh $(RELEASE)

# Rewrite every C file in the house layout.
format:
	$(FORMAT_FILES) | xargs -r $(CLANG_FORMAT) -i

# Fail, naming file and line, where a C file differs from what `make format` would write.
format-check:
	@$(FORMAT_FILES) | xargs -r $(CLANG_FORMAT) --dry-run -Werror
	@echo "format-check: every C file is in the house layout"

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZBUILD) $(RELEASE)
