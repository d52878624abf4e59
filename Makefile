# The C library: build, header, install. Cargo does the building; this file only gathers
# what a C user needs.
#
#   make lib                     libc2d.so and libc2d.a in target/$(PROFILE)/
#   make header                  regenerate include/c2d.h (pinned cbindgen, see ffi/header)
#   make install PREFIX=/usr/local [DESTDIR=...] [HUB=0 [TRANSPORTS=mqtt,amqp,https]]
#                                lib/libc2d.so, lib/libc2d.a, include/c2d.h, lib/pkgconfig/c2d.pc
#   make test-c                  the C tests (plain, valgrind, ASan) and the C examples
#
# HUB=0 leaves the local hub out, for firmware; TRANSPORTS (with HUB=0) chooses the device
# transports: mqtt (MQTT and MQTT/WS), amqp (AMQP and AMQP/WS), https. The service client
# (c2d_service_*) comes with amqp and https together. Without the hub the library is built
# with the size-optimised `firmware` profile (PROFILE=release for speed instead); c2d.pc
# then carries -DC2D_NO_HUB (and -DC2D_NO_SERVICE), which hide what the library lacks.
#   make install HUB=0 TRANSPORTS=mqtt    a device library over MQTT and MQTT/WS only

PREFIX ?= /usr/local
DESTDIR ?=
HUB ?= 1
TRANSPORTS ?= mqtt,amqp,https
PROFILE ?= $(if $(filter 0,$(HUB)),firmware,release)
CARGO ?= cargo
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
LIBDIR := $(DESTDIR)$(PREFIX)/lib
INCLUDEDIR := $(DESTDIR)$(PREFIX)/include
ifeq ($(PROFILE),debug)
CARGO_PROFILE :=
TARGET := target/debug
else
CARGO_PROFILE := --profile $(PROFILE)
TARGET := target/$(PROFILE)
endif
comma := ,
transports := $(subst $(comma), ,$(TRANSPORTS))
unknown := $(filter-out mqtt amqp https,$(transports))
ifneq ($(unknown),)
$(error TRANSPORTS: $(unknown) is not a transport (mqtt, amqp, https))
endif
ifeq ($(HUB),0)
ifeq ($(filter amqp,$(transports))$(filter https,$(transports)),amqphttps)
FEATURES := --no-default-features --features $(subst $(eval) ,$(comma),$(transports)),service
PC_CFLAGS := -DC2D_NO_HUB
else
FEATURES := --no-default-features --features $(subst $(eval) ,$(comma),$(transports))
PC_CFLAGS := -DC2D_NO_HUB -DC2D_NO_SERVICE
endif
else
ifneq ($(sort $(transports)),amqp https mqtt)
$(error TRANSPORTS needs HUB=0: the local hub comes with every transport)
endif
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
