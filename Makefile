# olreg: build the library once, then use it from Rust, C, Go and Python.
#
#   make            build the library and stage it in build/ as an install tree
#                   (lib, include, lib/pkgconfig, lib/cmake) with the olreg program
#   make demo       the main job against the bundled test registry: pull with a
#                   progress bar, list, push (no internet needed)
#   make test       every test: Rust, C (under AddressSanitizer), Go, Python
#   make install    install under PREFIX (default /usr/local): the library (the
#                   shared one stripped, its debug info in DEBUGDIR), the header,
#                   olreg.pc and the CMake package (olreg::olreg, olreg::olreg_static)
#   make bench      the benchmark (see README)
#   make test-distribution3   the Docker Distribution tests against 3.x (not in `make test`)
#   make test-ollama          olreg beside the real Ollama, built once from source (docs/ollama.md)
#
# Other systems, cross-built here (scripts/cross-deps.sh installs the tools;
# README, "Platforms", says what is built and run where):
#   make windows    build/x86_64-pc-windows-gnu/: bin/olreg.dll, bin/olreg.exe,
#                   lib/libolreg.dll.a (the import library), lib/libolreg.a, include/olreg.h
#   make macos      build/{x86_64,aarch64}-apple-darwin/: lib/libolreg.a, include/olreg.h
#                   and the olreg program's objects (linking needs Apple's SDK)
#   make test-wine  the Windows build's tests under Wine against the test registry
#   make check-cross clippy for the three targets

PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
# The separate debug info of libolreg.so. `.debug/` beside the library is where
# gdb, elfutils and binutils look without configuration, whatever the prefix;
# a distribution package sets DEBUGDIR=/usr/lib/debug$(LIBDIR) instead.
DEBUGDIR ?= $(LIBDIR)/.debug
CMAKEDIR ?= $(LIBDIR)/cmake/olreg
CARGO    ?= cargo
OBJCOPY  ?= objcopy
PYTHON   ?= python3

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MAJOR   := $(word 1,$(subst ., ,$(VERSION)))
MINOR   := $(word 2,$(subst ., ,$(VERSION)))
# The SONAME's ABI generation, as build.rs gives it: the major version, and the
# minor one too while the major is 0.
ABI     := $(if $(filter 0,$(MAJOR)),0.$(MINOR),$(MAJOR))
# What libolreg.a needs from the system (the Rust standard library's needs).
STATIC_LIBS := -lpthread -ldl -lm -lgcc_s -lc
RELEASE := target/release
STAGE   := $(CURDIR)/build

export OLREG_LIB_DIR     := $(STAGE)/lib
export OLREG_INCLUDE_DIR := $(STAGE)/include
export OLREG_TESTREG     := $(CURDIR)/$(RELEASE)/olreg-testreg
export OLREG_CLI         := $(CURDIR)/examples-c/olreg
# Where scripts/deps.sh builds oras and crane for the layout tests.
export OLREG_TOOLS_DIR   ?= $(HOME)/.cache/olreg/tools

# $(call configure,TEMPLATE,OUT,PREFIX,LIBDIR,INCDIR,CMAKEDIR): fills in an .in
# file; the CMake package's paths are relative to its own directory.
configure = echo "configure $(2)"; sed -e 's|@PREFIX@|$(3)|' -e 's|@LIBDIR@|$(4)|' -e 's|@INCLUDEDIR@|$(5)|' \
	-e 's|@VERSION@|$(VERSION)|' -e 's|@MAJOR@|$(MAJOR)|' -e 's|@MINOR@|$(MINOR)|' -e 's|@ABI@|$(ABI)|' \
	-e 's|@LIBS_PRIVATE@|$(STATIC_LIBS)|' -e 's|@CMAKE_LIBS_PRIVATE@|$(subst $() ,;,$(STATIC_LIBS))|' \
	-e "s|@CMAKE_TO_LIBDIR@|$$(realpath -m --relative-to='$(6)' '$(4)')|" \
	-e "s|@CMAKE_TO_INCLUDEDIR@|$$(realpath -m --relative-to='$(6)' '$(5)')|" \
	$(1) > $(2)

# $(call install_tree,DESTDIR,PREFIX,LIBDIR,INCDIR,CMAKEDIR): the header,
# olreg.pc and the CMake package of an install tree (the library goes in
# separately), written under DESTDIR, naming the paths without it.
define install_tree
install -d $(1)$(3)/pkgconfig $(1)$(4) $(1)$(5)
install -m 0644 include/olreg.h $(1)$(4)/olreg.h
@$(call configure,olreg.pc.in,$(1)$(3)/pkgconfig/olreg.pc,$(2),$(3),$(4),$(5))
@$(call configure,cmake/olregConfig.cmake.in,$(1)$(5)/olregConfig.cmake,$(2),$(3),$(4),$(5))
@$(call configure,cmake/olregConfigVersion.cmake.in,$(1)$(5)/olregConfigVersion.cmake,$(2),$(3),$(4),$(5))
endef

.PHONY: all deps lib cli demo test test-rust test-c test-cli test-go test-python test-distribution3 test-ollama install bench clean \
	windows windows-stage macos check-cross test-wine test-wine-run

all: lib cli

# One release build of the whole workspace: the library (rlib, .so, .a) and
# the test registry program.
$(RELEASE)/libolreg.so $(RELEASE)/libolreg.a $(RELEASE)/olreg-testreg: FORCE
	$(CARGO) build --release --workspace --bins --lib

FORCE:

# build/ holds what an installed copy holds, with the real SONAME links (the
# library keeps its debug info here: it is what the tests run against).
lib: $(RELEASE)/libolreg.so
	mkdir -p $(STAGE)/lib
	# install(1) writes a new file: a process using the old library keeps it.
	install -m 0755 $(RELEASE)/libolreg.so $(STAGE)/lib/libolreg.so.$(VERSION)
	ln -sf libolreg.so.$(VERSION) $(STAGE)/lib/libolreg.so.$(ABI)
	ln -sf libolreg.so.$(ABI) $(STAGE)/lib/libolreg.so
	install -m 0644 $(RELEASE)/libolreg.a $(STAGE)/lib/libolreg.a
	$(call install_tree,,$(STAGE),$(STAGE)/lib,$(STAGE)/include,$(STAGE)/lib/cmake/olreg)

# The installed shared library: stripped (--strip-unneeded, as distributions
# do), with a .gnu_debuglink naming (and checksumming) its separate debug info.
STRIPPED := $(STAGE)/stripped
$(STRIPPED)/libolreg.so.$(VERSION): lib
	mkdir -p $(STRIPPED)
	$(OBJCOPY) --only-keep-debug --compress-debug-sections=zlib \
	    $(STAGE)/lib/libolreg.so.$(VERSION) $(STRIPPED)/libolreg.so.$(VERSION).debug
	$(OBJCOPY) --strip-unneeded --add-gnu-debuglink=$(STRIPPED)/libolreg.so.$(VERSION).debug \
	    $(STAGE)/lib/libolreg.so.$(VERSION) $(STRIPPED)/libolreg.so.$(VERSION)

cli: lib
	$(MAKE) -C examples-c OLREG_LIB_DIR=$(STAGE)/lib OLREG_INCLUDE_DIR=$(STAGE)/include

install: $(STRIPPED)/libolreg.so.$(VERSION)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(DEBUGDIR)
	install -m 0755 $(STRIPPED)/libolreg.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	install -m 0644 $(STRIPPED)/libolreg.so.$(VERSION).debug $(DESTDIR)$(DEBUGDIR)/
	ln -sf libolreg.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libolreg.so.$(ABI)
	ln -sf libolreg.so.$(ABI) $(DESTDIR)$(LIBDIR)/libolreg.so
	install -m 0644 $(STAGE)/lib/libolreg.a $(DESTDIR)$(LIBDIR)/
	$(call install_tree,$(DESTDIR),$(PREFIX),$(LIBDIR),$(INCDIR),$(CMAKEDIR))

clean:
	rm -rf $(STAGE)
	$(MAKE) -C examples-c clean

# Packages the demo and the tests need (docker-registry, pkg-config, pytest;
# oras and crane, built once into $(OLREG_TOOLS_DIR)).
deps:
	scripts/deps.sh

demo:
	scripts/demo.sh

# Every test, each language against the same release build.
test: deps all
	$(MAKE) --no-print-directory test-rust test-c test-cli test-go test-python

# Rust: unit, integration and property tests of the library and the test
# peers, in the release profile so they reuse the build above.
test-rust: deps
	$(CARGO) test --release --workspace

bench: $(RELEASE)/libolreg.so
	$(CARGO) run --release --example bench

# The Python bindings (examples-python): pip installs the package into
# build/python (nothing outside the build tree changes; the build backend,
# flit_core, comes from scripts/deps.sh, so nothing is downloaded), then pytest
# runs the tests against that installed copy, with the staged library
# (OLREG_LIB_DIR) and olreg-testreg (OLREG_TESTREG), both exported above.
PYDIR := $(STAGE)/python
test-python: lib $(RELEASE)/olreg-testreg
	rm -rf $(PYDIR)
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet --disable-pip-version-check \
	    --no-deps --no-build-isolation --target $(PYDIR) ./examples-python
	PYTHONPATH=$(PYDIR) $(PYTHON) -m pytest -q examples-python

# The Go binding: vet, then every test under the race detector, against the
# staged library and the test registry (-count=1: go's test cache does not
# see a rebuilt libolreg).
GO ?= go
GO_ENV := CGO_ENABLED=1 CGO_CFLAGS="-I$(OLREG_INCLUDE_DIR)" \
	CGO_LDFLAGS="-L$(OLREG_LIB_DIR) -Wl,-rpath,$(OLREG_LIB_DIR)" OLREG_TESTREG="$(OLREG_TESTREG)"

test-go: lib $(RELEASE)/olreg-testreg
	cd examples-go && $(GO_ENV) $(GO) vet ./... && $(GO_ENV) $(GO) test -race -count=1 ./...

# The C tests (tests/c/run.sh): olreg.h compiles as C11 and C++17; the C API
# under AddressSanitizer, LeakSanitizer and UBSan against olreg-testreg; and
# `make install` into a temporary prefix, used through pkg-config.
test-c: lib $(RELEASE)/olreg-testreg
	tests/c/run.sh

# The olreg program's contract (tests/cli): examples-c/olreg driven as a
# process against olreg-testreg (exit codes, stdout/stderr, signals).
# test_ollama.py runs when an ollama binary is at hand (make test-ollama) and
# is skipped otherwise; -rs prints why.
test-cli: cli $(RELEASE)/olreg-testreg
	$(PYTHON) -m pytest -q -rs tests/cli

# Every test that drives Docker Distribution (Rust, C, the olreg program),
# against Distribution 3.x instead of Debian's 2.8: the versions in
# DISTRIBUTION3 (default v3.0.0 and v3.1.2), built once from the Go module
# proxy by scripts/distribution3.sh and kept in $(OLREG_TOOLS_DIR).
DISTRIBUTION3 ?=

test-distribution3: cli $(RELEASE)/olreg-testreg
	@registries=$$(scripts/distribution3.sh $(DISTRIBUTION3)) || exit 1; \
	for registry in $$registries; do \
	    echo "=== $$($$registry --version)"; \
	    export OLREG_DOCKER_REGISTRY=$$registry; \
	    $(CARGO) test --release -p olreg --test oci || exit 1; \
	    tests/c/run.sh test_distribution || exit 1; \
	    python3 -m pytest -q tests/cli/test_distribution.py tests/cli/test_interop.py || exit 1; \
	done

# olreg beside the real Ollama (tests/cli/test_ollama.py, docs/ollama.md):
# Ollama v0.12.6 is built once from the Go module proxy by
# scripts/build-ollama.sh (about 12 minutes of CPU cold) and kept in
# $(OLREG_TOOLS_DIR); OLREG_OLLAMA names another binary instead.
test-ollama: cli $(RELEASE)/olreg-testreg
	@ollama=$${OLREG_OLLAMA:-$$(scripts/build-ollama.sh)} || exit 1; \
	scripts/deps.sh ollama || exit 1; \
	echo "=== real Ollama: $$ollama"; \
	OLREG_OLLAMA=$$ollama $(PYTHON) -m pytest -q -rs tests/cli/test_ollama.py

# ---- Other systems ----------------------------------------------------------

WINDOWS  := x86_64-pc-windows-gnu
MACOS    := x86_64-apple-darwin aarch64-apple-darwin
MINGW_CC ?= x86_64-w64-mingw32-gcc
WIN_STAGE   := $(STAGE)/$(WINDOWS)
WIN_RELEASE := target/$(WINDOWS)/release
# Wine's state (its prefix, made once) lives in the tools cache with the
# cross tools; fixed here so that tests setting HOME do not move it.
export WINEPREFIX ?= $(OLREG_TOOLS_DIR)/wine-prefix
WINE_RUN := $(CURDIR)/tests/wine/run

# olreg.dll with its import library (libolreg.dll.a, what -lolreg finds with
# MinGW) and the static library, the header, and olreg.exe and pull.exe
# beside the DLL (Windows finds a program's DLLs in its own directory).
windows:
	scripts/cross-deps.sh windows
	$(CARGO) build --release --target $(WINDOWS) --lib
	$(MAKE) --no-print-directory windows-stage

# Stages what the last Windows build made; wine-bin/ gets wrappers that run
# the programs under Wine, for the contract tests.
windows-stage:
	install -d $(WIN_STAGE)/bin $(WIN_STAGE)/lib $(WIN_STAGE)/include $(WIN_STAGE)/wine-bin
	install -m 0755 $(WIN_RELEASE)/olreg.dll $(WIN_STAGE)/bin/
	install -m 0644 $(WIN_RELEASE)/libolreg.dll.a $(WIN_RELEASE)/libolreg.a $(WIN_STAGE)/lib/
	install -m 0644 include/olreg.h $(WIN_STAGE)/include/
	$(MAKE) -C examples-c TARGET_OS=windows CC=$(MINGW_CC) OUT=$(WIN_STAGE)/examples-c \
	    OLREG_LIB_DIR=$(WIN_STAGE)/lib OLREG_INCLUDE_DIR=$(WIN_STAGE)/include
	for p in olreg pull; do \
	    install -m 0755 $(WIN_STAGE)/examples-c/$$p.exe $(WIN_STAGE)/bin/ || exit 1; \
	    printf '#!/bin/sh\nexec "%s" "%s" "$$@"\n' $(WINE_RUN) $(WIN_STAGE)/bin/$$p.exe \
	        > $(WIN_STAGE)/wine-bin/$$p && chmod +x $(WIN_STAGE)/wine-bin/$$p || exit 1; \
	done

# The static library for each Mac, built with zig as the C compiler and
# linker (cargo-zigbuild) for ring's C code, and the olreg program's
# objects. The shared library and the program need Apple's SDK (the
# Security and CoreFoundation frameworks) to link, which is not
# redistributable: on a Mac, `make` builds them natively.
macos:
	zig=$$(scripts/cross-deps.sh macos) && \
	for t in $(MACOS); do \
	    PATH="$$zig:$$PATH" cargo-zigbuild rustc --release --target $$t --lib --crate-type staticlib || exit 1; \
	    install -d $(STAGE)/$$t/lib $(STAGE)/$$t/include || exit 1; \
	    install -m 0644 target/$$t/release/libolreg.a $(STAGE)/$$t/lib/ || exit 1; \
	    install -m 0644 include/olreg.h $(STAGE)/$$t/include/ || exit 1; \
	    $(MAKE) -C examples-c objects OUT=$(STAGE)/$$t/examples-c OLREG_INCLUDE_DIR=$(STAGE)/$$t/include \
	        CC="$$zig/python-zig cc -target $${t%%-apple-darwin}-macos" || exit 1; \
	done

# clippy for the other three targets, warnings as errors (macOS through
# cargo-zigbuild: ring's C code needs a C compiler for the target even to
# be checked).
check-cross:
	zig=$$(scripts/cross-deps.sh macos windows) && \
	for t in $(MACOS); do \
	    PATH="$$zig:$$PATH" cargo-zigbuild clippy --target $$t --workspace --all-targets -- -D warnings || exit 1; \
	done
	$(CARGO) clippy --target $(WINDOWS) --workspace --all-targets -- -D warnings

# The Windows build's tests under Wine (tests/wine/run: Debian's wine64 8.0
# with a bcryptprimitives.dll shim), against the test registry on loopback:
# - the library's unit tests and the integration tests below, built for
#   Windows (the test registry runs inside them, a Windows program too);
# - olreg.exe (the C program, through olreg.dll) in the program's contract
#   tests, against the Linux olreg-testreg.
# Left out because Wine cannot run them (README, "Platforms"): Docker
# Distribution, oras and crane (Linux programs: oci.rs, copy.rs, fleet.rs,
# the oras tests of layout.rs, test_distribution.py), tmpfs (disk_full.rs),
# sendfile (zero_copy.rs: zero-copy uploads are Linux's only),
# TLS with extra CA certificates (Wine's crypt32 builds no chain engine),
# links and FIFOs planted in the store (Wine follows Unix links:
# test_hostile_store.py), the live display (Wine's console does not
# interpret escape sequences), SIGTERM (none on Windows) and the home
# directory (Wine fixes USERPROFILE).
WINE_TESTS := beside_ollama concurrency hostile_names hostile_registry index keys layout \
	parsers_prop platform pull push rate_limit resume retries slow_tail
WINE_SKIP  := tls_cannot_be_downgraded_by_a_redirect_unless_insecure \
	https_needs_a_trusted_certificate_or_insecure_mode \
	an_https_push_of_many_blobs_keeps_its_memory_bounded \
	olreg_imports_what_oras_writes oras_and_crane_read_what_olreg_exports
# The program's commands, usage, transfers, the pull example and Ctrl-C
# (Wine turns SIGINT into a console Ctrl-C event). test_output.py's
# progress tests are left to Linux: the same C code draws it, and its
# timings are too tight for Wine on a busy machine.
WINE_CLI   := tests/cli/test_commands.py tests/cli/test_usage.py tests/cli/test_transfer.py \
	tests/cli/test_output.py::test_pull_example \
	tests/cli/test_signals.py::test_sigint_cancels_and_the_next_pull_resumes

# One build makes the DLL and the test programs (with the test programs in
# it, the library's dependencies get the same features: nothing is compiled
# twice), then the Rust tests run under Wine, then the program's, all with
# one Wine server (test-wine-run runs them again without rebuilding).
test-wine: $(RELEASE)/olreg-testreg
	scripts/cross-deps.sh windows wine
	$(CARGO) build --release --target $(WINDOWS) -p olreg --lib $(addprefix --test ,$(WINE_TESTS))
	$(MAKE) --no-print-directory windows-stage
	$(WINE_RUN) --session $(MAKE) --no-print-directory test-wine-run

test-wine-run:
	CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$(WINE_RUN) $(CARGO) test --release --target $(WINDOWS) \
	    -p olreg --lib $(addprefix --test ,$(WINE_TESTS)) -- $(addprefix --skip ,$(WINE_SKIP))
	OLREG_CLI=$(WIN_STAGE)/wine-bin/olreg OLREG_CLI_STOP_SECONDS=5 $(PYTHON) -m pytest -q $(WINE_CLI)
