# The C library: build, header, install. Cargo does the building; this file only gathers
# what a C user needs.
#
#   make lib                     libc2d.so and libc2d.a in target/$(PROFILE)/
#   make header                  regenerate include/c2d.h (pinned cbindgen, see ffi/header)
#   make install PREFIX=/usr/local [DESTDIR=...] [HUB=0]
#                                lib/libc2d.so, lib/libc2d.a, include/c2d.h, lib/pkgconfig/c2d.pc
#                                (HUB=0: without the local hub, for firmware: a smaller library)
#   make test-c                  the C tests (plain, valgrind, ASan) and the C examples

PREFIX ?= /usr/local
DESTDIR ?=
PROFILE ?= release
HUB ?= 1
CARGO ?= cargo
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
LIBDIR := $(DESTDIR)$(PREFIX)/lib
INCLUDEDIR := $(DESTDIR)$(PREFIX)/include
ifeq ($(PROFILE),release)
CARGO_PROFILE := --release
else
CARGO_PROFILE :=
endif
TARGET := target/$(if $(filter release,$(PROFILE)),release,debug)
ifeq ($(HUB),0)
FEATURES := --no-default-features
PC_CFLAGS := -DC2D_NO_HUB
else
FEATURES :=
PC_CFLAGS :=
endif

.PHONY: lib header install test-c

lib:
	$(CARGO) build --locked $(CARGO_PROFILE) $(FEATURES) -p c2d-ffi

header:
	$(CARGO) run --locked -q -p c2d-ffi-header

install: lib
	install -d $(LIBDIR)/pkgconfig $(INCLUDEDIR)
	install -m 0755 $(TARGET)/libc2d.so $(LIBDIR)/libc2d.so
	install -m 0644 $(TARGET)/libc2d.a $(LIBDIR)/libc2d.a
	install -m 0644 include/c2d.h $(INCLUDEDIR)/c2d.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@CFLAGS@|$(PC_CFLAGS)|' ffi/c2d.pc.in >$(LIBDIR)/pkgconfig/c2d.pc

test-c:
	tests/c/run.sh
