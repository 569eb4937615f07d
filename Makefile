# olreg: build the library once, then use it from Rust, C, Go and Python.
#
#   make            build the library and stage it in build/ (lib, include, pkgconfig)
#   make demo       the main job against the bundled test registry: pull with a
#                   progress bar, list, push (no internet needed)
#   make test       every test: Rust, C (under AddressSanitizer), Go, Python
#   make install    install library, header and olreg.pc under PREFIX (default /usr/local)
#   make bench      the benchmark (see README)

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
CARGO   ?= cargo

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
ABI     := $(word 1,$(subst ., ,$(VERSION))).$(word 2,$(subst ., ,$(VERSION)))
RELEASE := target/release
STAGE   := $(CURDIR)/build

export OLREG_LIB_DIR     := $(STAGE)/lib
export OLREG_INCLUDE_DIR := $(STAGE)/include
export OLREG_TESTREG     := $(CURDIR)/$(RELEASE)/olreg-testreg
export OLREG_CLI         := $(CURDIR)/examples-c/olreg

.PHONY: all deps lib cli demo test test-rust test-c test-cli test-go test-python install bench clean

all: lib cli

# One release build of the whole workspace: the library (rlib, .so, .a) and
# the test registry program.
$(RELEASE)/libolreg.so $(RELEASE)/libolreg.a $(RELEASE)/olreg-testreg: FORCE
	$(CARGO) build --release --workspace --bins --lib

FORCE:

# build/ holds what an installed copy holds, with the real SONAME links.
lib: $(RELEASE)/libolreg.so
	mkdir -p $(STAGE)/lib/pkgconfig $(STAGE)/include
	# install(1) writes a new file: a process using the old library keeps it.
	install -m 0755 $(RELEASE)/libolreg.so $(STAGE)/lib/libolreg.so.$(VERSION)
	ln -sf libolreg.so.$(VERSION) $(STAGE)/lib/libolreg.so.$(ABI)
	ln -sf libolreg.so.$(ABI) $(STAGE)/lib/libolreg.so
	install -m 0644 $(RELEASE)/libolreg.a $(STAGE)/lib/libolreg.a
	install -m 0644 include/olreg.h $(STAGE)/include/olreg.h
	sed -e 's|@PREFIX@|$(STAGE)|' -e 's|@LIBDIR@|$(STAGE)/lib|' -e 's|@INCLUDEDIR@|$(STAGE)/include|' \
	    -e 's|@VERSION@|$(VERSION)|' olreg.pc.in > $(STAGE)/lib/pkgconfig/olreg.pc

cli: lib
	$(MAKE) -C examples-c OLREG_LIB_DIR=$(STAGE)/lib OLREG_INCLUDE_DIR=$(STAGE)/include

install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 0755 $(STAGE)/lib/libolreg.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libolreg.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libolreg.so.$(ABI)
	ln -sf libolreg.so.$(ABI) $(DESTDIR)$(LIBDIR)/libolreg.so
	install -m 0644 $(STAGE)/lib/libolreg.a $(DESTDIR)$(LIBDIR)/
	install -m 0644 include/olreg.h $(DESTDIR)$(INCDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' olreg.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/olreg.pc

clean:
	rm -rf $(STAGE)
	$(MAKE) -C examples-c clean

# Packages the demo and the tests need (docker-registry, pkg-config, pytest).
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

# The Python bindings' tests (examples-python): pytest against olreg-testreg,
# finding the library through OLREG_LIB_DIR and the registry through
# OLREG_TESTREG (both exported above).
test-python: lib $(RELEASE)/olreg-testreg
	python3 -m pytest -q examples-python

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
test-cli: cli $(RELEASE)/olreg-testreg
	python3 -m pytest -q tests/cli
