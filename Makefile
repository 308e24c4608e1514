# The two commands of the README: `make run` and `make check`. Both install what is missing first.
BUILD          ?= build
BUILD_SANITIZE ?= build-sanitize
BUILD_FUZZ     ?= build-fuzz
FUZZ_SECONDS   ?= 60
BENCH_RUNS     ?= 5
MESON_TEST     := meson test --print-errorlogs --num-processes 2

# Debian 12 packages the build, the tests and the benchmarks need.
PACKAGES := g++ clang libclang-rt-14-dev meson ninja-build pkg-config python3 \
	libexpat1-dev libsystemd-dev libsdbus-c++-dev libboost1.81-dev \
	libgtest-dev libgmock-dev libbenchmark-dev \
	dbus-daemon dbus-bin dbus-tests dbus-broker libglib2.0-bin systemd
PACKAGES += scdoc man-db python3-dbus python3-gi gir1.2-glib-2.0 python3-dbusmock nodejs  # man pages, migration matrix (issue 11)
PACKAGES += chromium curl jq  # web interface tests: the page in headless Chromium, HTTP and JSON checks (issue 9)
# activation (issue 15): real system services started through the launch helper (polkit, accountsservice),
# a system.d file naming an account this machine lacks (iio-sensor-proxy's geoclue), dbus-launch for --fork
PACKAGES += dbus-system-bus-common polkitd accountsservice iio-sensor-proxy dbus-x11
PACKAGES += xdg-dbus-proxy  # busgate-dbus-proxy: the matrix runs against it, and it serves buses that are not busgate (issue 21)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build run compat check check-sanitize fuzz soak bench format clean

deps:
	@missing=$$(for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing </dev/null; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Starts a session bus on the bundled configuration, in the foreground (Ctrl-C stops it).
run: build
	@echo "starting busgate with data/session.conf; try, in another shell:"
	@echo "  DBUS_SESSION_BUS_ADDRESS=<the address below> busctl --user list"
	$(BUILD)/gateway/busgate --config-file=data/session.conf --print-address --nofork

# The upstream dbus test binaries (dbus-tests) against busgate, scored against dbus-daemon's results.
compat: build
	compat-tests/run-upstream $(CURDIR)/$(BUILD)/gateway/busgate

check: build
	@status=0; $(MESON_TEST) -C $(BUILD) --suite unit --suite compat || status=$$?; \
	tools/test-summary $(BUILD); exit $$status

$(BUILD_SANITIZE)/build.ninja:
	meson setup $(BUILD_SANITIZE) -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=disabled

check-sanitize: deps $(BUILD_SANITIZE)/build.ninja
	ninja -C $(BUILD_SANITIZE)
	@status=0; UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		$(MESON_TEST) -C $(BUILD_SANITIZE) --suite unit --suite compat || status=$$?; \
	tools/test-summary $(BUILD_SANITIZE); exit $$status

$(BUILD_FUZZ)/build.ninja:
	CXX=clang++ meson setup $(BUILD_FUZZ) -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Dtests=disabled -Dbenchmarks=disabled -Dwerror=false

# Runs every fuzz target for FUZZ_SECONDS, seeded from the upstream corpora; findings land in $(BUILD_FUZZ)/findings.
fuzz: deps $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ)
	tools/run-fuzzers $(BUILD_FUZZ) $(FUZZ_SECONDS)

# Mixed load against busgate for SOAK_SECONDS (outside CI): RSS must stay flat and every call get
# exactly one reply or error.
SOAK_SECONDS ?= 300
soak: build
	/usr/bin/python3 compat-tests/soak.py $(CURDIR)/$(BUILD)/gateway/busgate $(SOAK_SECONDS)

bench: build
	tools/run-benchmarks $(BUILD)
	tools/run-bus-benchmarks $(BUILD) $(BENCH_RUNS)

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD_SANITIZE) $(BUILD_FUZZ)
