# The two commands of the README: `make run` and `make check`. Both install what is missing first.
BUILD          ?= build
BUILD_SANITIZE ?= build-sanitize
BUILD_FUZZ     ?= build-fuzz
FUZZ_SECONDS   ?= 60
BENCH_RUNS     ?= 5
SCALING_RUNS   ?= 3
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
PACKAGES += debhelper dpkg-dev fakeroot lintian util-linux  # make deb and its checks; prlimit, setpriv (issue 17)
PACKAGES += libglib2.0-tests python3-dbus-tests systemd-tests xdg-dbus-proxy-tests gjs-tests  # the libraries' own suites (issue 15)
PACKAGES += xdg-dbus-proxy bubblewrap  # busgate-dbus-proxy: the matrix runs against xdg-dbus-proxy (which also serves buses that are not busgate) and inside a bwrap sandbox (issue 21)
PACKAGES += libdbus-1-dev libglib2.0-dev python3-matplotlib  # make bench: libdbus and GDBus clients, the scaling chart (issue 19)

# make format only (not make check): the formatter that knows .clang-format's InsertBraces.
FORMAT_PACKAGES := clang-format-16

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build run compat check check-sanitize fuzz soak bench format format-deps clean
.PHONY: check-builds deb check-deb

# Installs those of the packages $(1) that are missing.
install-missing = @missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing </dev/null; \
	fi

deps:
	$(call install-missing,$(PACKAGES))

# What make format needs and make check does not: InsertBraces in .clang-format wants clang-format 15 or later.
format-deps:
	$(call install-missing,$(FORMAT_PACKAGES))

# Warnings are errors in the project's own builds only (meson.build's defaults leave werror off).
$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Starts a session bus on the bundled configuration, in the foreground (Ctrl-C stops it).
run: build
	@echo "starting busgate with data/session.conf; try, in another shell:"
	@echo "  DBUS_SESSION_BUS_ADDRESS=<the address below> busctl --user list"
	$(BUILD)/launch/busgate --config-file=data/session.conf --print-address --nofork

# The upstream dbus test binaries (dbus-tests) against busgate, scored against dbus-daemon's results.
compat: build
	compat-tests/run-upstream $(CURDIR)/$(BUILD)/launch/busgate

check: build
	@status=0; $(MESON_TEST) -C $(BUILD) --suite unit --suite compat || status=$$?; \
	tools/test-summary $(BUILD); exit $$status

$(BUILD_SANITIZE)/build.ninja:
	meson setup $(BUILD_SANITIZE) -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=disabled \
		-Dwerror=true

check-sanitize: deps $(BUILD_SANITIZE)/build.ninja
	ninja -C $(BUILD_SANITIZE)
	@status=0; UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		BUSGATE_TEST_SLOWDOWN=10 \
		$(MESON_TEST) -C $(BUILD_SANITIZE) --suite unit --suite compat || status=$$?; \
	tools/test-summary $(BUILD_SANITIZE); exit $$status

# The builds packagers make, each warning-free under -Dwerror=true (issue 17): g++ at -O3 (release), g++ with
# Debian's flags (dpkg-buildflags, buildtype plain), clang at -O3. make check's own build is debugoptimized.
# Without tests and benchmarks: the daemon, busgatectl and the man pages are what a package ships.
BUILD_RELEASE ?= build-release
BUILD_CLANG   ?= build-clang
BUILD_PLAIN   ?= build-plain
MATRIX_SETUP  := -Dwerror=true -Dtests=disabled -Dbenchmarks=disabled
DEBIAN_CPPFLAGS := -Wdate-time -D_FORTIFY_SOURCE=2
DEBIAN_CXXFLAGS := -g -O2 -fstack-protector-strong -Wformat -Werror=format-security
DEBIAN_LDFLAGS  := -Wl,-z,relro -Wl,-z,now

$(BUILD_RELEASE)/build.ninja:
	CXX=g++ meson setup $(BUILD_RELEASE) --buildtype=release $(MATRIX_SETUP)

$(BUILD_CLANG)/build.ninja:
	CXX=clang++ meson setup $(BUILD_CLANG) --buildtype=release $(MATRIX_SETUP)

$(BUILD_PLAIN)/build.ninja:
	CXX=g++ CXXFLAGS="$(DEBIAN_CPPFLAGS) $(DEBIAN_CXXFLAGS)" LDFLAGS="$(DEBIAN_LDFLAGS)" \
		meson setup $(BUILD_PLAIN) --buildtype=plain $(MATRIX_SETUP)

check-builds: deps $(BUILD_RELEASE)/build.ninja $(BUILD_CLANG)/build.ninja $(BUILD_PLAIN)/build.ninja
	ninja -C $(BUILD_RELEASE)
	ninja -C $(BUILD_CLANG)
	ninja -C $(BUILD_PLAIN)

# The Debian package, built from a copy of the tracked sources in $(BUILD_DEB) (dpkg-buildpackage writes to the
# parent directory), without tests (DEB_BUILD_OPTIONS=nocheck; make check runs them); then lintian.
BUILD_DEB ?= build-deb
deb: deps
	rm -rf $(BUILD_DEB) && mkdir -p $(BUILD_DEB)/busgate
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $(BUILD_DEB)/busgate
	cd $(BUILD_DEB)/busgate && DEB_BUILD_OPTIONS="nocheck $(DEB_BUILD_OPTIONS)" dpkg-buildpackage -us -uc -b
	lintian --info --display-info --pedantic $(BUILD_DEB)/*.changes | tee $(BUILD_DEB)/lintian.log

# The package's fields, contents and maintainer scripts, lintian's verdict, and its tree unpacked into a scratch
# root (dpkg -x): checked by data/test-install as a meson install is, then switched over and back offline
# (systemctl --root enable/disable busgate.service).
check-deb: deb
	debian/test-package $(BUILD_DEB)

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
	/usr/bin/python3 compat-tests/soak.py $(CURDIR)/$(BUILD)/launch/busgate $(SOAK_SECONDS)

bench: build
	tools/run-benchmarks $(BUILD)
	tools/run-bus-benchmarks $(BUILD) $(BENCH_RUNS)
	tools/run-bus-scaling $(BUILD) $(SCALING_RUNS)
	tools/run-sandbox-benchmarks $(BUILD) $(BENCH_RUNS)

# The one code dialect (issue 18): std:: integer types, then clang-format-16 over every tracked .cpp/.h.
format: format-deps
	tools/dialect

clean:
	rm -rf $(BUILD) $(BUILD_SANITIZE) $(BUILD_FUZZ) $(BUILD_RELEASE) $(BUILD_CLANG) $(BUILD_PLAIN) $(BUILD_DEB)
