# A thin wrapper: CMake is the build. `make demo` and `make check` are the quick start.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_OPTS ?=

.PHONY: all deps build demo check test asan format format-check bench clean fuzz
.PHONY: deb

all: build

deps:
	@sh .ci/deps

build: deps
	cmake -S . -B $(BUILD) -DKIGEN_WERROR=ON $(CMAKE_OPTS)
	cmake --build $(BUILD) -j$(JOBS)

# Builds, makes a demo keystore of every format and state, shows kigen's report, ends.
demo: build
	sh conf/demo-keystore.sh $(BUILD)/demo
	@echo
	@echo "== kigend --once --format table (dates in the configured timezone)"
	@$(BUILD)/kigend --config $(BUILD)/demo/kigen.yaml --once --format table; \
	  echo "(exit status $$?: 0 ok, 1 needs attention, 2 critical or expired)"
	@echo
	@echo "== the same as JSON (SPEC §6), first lines"
	@$(BUILD)/kigend --config $(BUILD)/demo/kigen.yaml --once --format json | head -c 1500; echo " ..."
	@echo
	@echo "== the daemon mails each holder (a sample, written to a file, not sent)"
	@sh conf/demo-mail.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DKIGEN_WERROR=ON -DKIGEN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_COMPILER=clang $(CMAKE_OPTS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS)

# Every test, then every test again under AddressSanitizer and UBSan, then each fuzz target
# for FUZZ_SECONDS (60), then the format check.
check: test asan fuzz format-check

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find src daemon tests bench -name '*.[ch]')

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

# libFuzzer over every parser of outside input (tests/fuzz/README.md), two targets at a time.
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DKIGEN_FUZZ=ON -DCMAKE_C_COMPILER=clang $(CMAKE_OPTS)
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target kigen_fuzz
	sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) 2

bench: build
	sh bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# The Debian package (CPack, see the end of CMakeLists.txt): kigen_VERSION_ARCH.deb in $(BUILD).
deb: build
	cd $(BUILD) && cpack -G DEB
	@cd $(BUILD) && ls -1 "$$PWD"/kigen_*.deb
