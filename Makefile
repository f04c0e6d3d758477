# Build the relay (bin/router) and the domain owner's tool (bin/dnsconf).
#
#   make                 build both with -Wall -Wextra -Werror
#   make check           install missing packages, run every test, also
#                        under AddressSanitizer and UBSan
#   make demo            run the end-to-end demo on loopback
#   make install         PREFIX (/usr/local) and DESTDIR are honoured
#   make SANITIZE=1 BUILD=build/san   a sanitizer build in its own tree

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
BUILD	?= build
BIN	?= bin

CC	?= cc
PKGS	 = ldns libsodium openssl libidn2
CFLAGS	?= -O2 -g
CFLAGS	+= -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	   -Wno-unused-parameter -Irouter -Irouter/util
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS	+= $(PKG_LIBS) -lev

ifeq ($(SANITIZE),1)
CFLAGS	+= -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	   -fno-sanitize-recover=undefined
LDFLAGS	+= -fsanitize=address,undefined
endif

# Every router source except main.c forms a library that dnsconf and the
# unit tests link against.
UTIL_SRCS	:= $(sort $(wildcard router/util/*.c))
ROUTER_SRCS	:= $(filter-out router/main.c,$(sort $(wildcard router/*.c)))
DNSCONF_SRCS	:= $(filter-out dnsconf/main.c,$(sort $(wildcard dnsconf/*.c)))
LIB_OBJS	:= $(patsubst %.c,$(BUILD)/%.o,$(UTIL_SRCS) $(ROUTER_SRCS))
DNSCONF_OBJS	:= $(patsubst %.c,$(BUILD)/%.o,$(DNSCONF_SRCS))
UNIT_SRCS	:= $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS	:= $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all check unit demo install clean deps fuzz bench

all: $(BIN)/router $(BIN)/dnsconf

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

$(BIN)/router: $(BUILD)/router/main.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/dnsconf: $(BUILD)/dnsconf/main.o $(DNSCONF_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(DNSCONF_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/unit -Idnsconf $(LDFLAGS) -o $@ \
	    $< $(DNSCONF_OBJS) $(LIB_OBJS) $(LDLIBS)

unit: $(UNIT_BINS)

deps:
	@tools/install-deps

check: deps
	@tools/run-tests

demo: deps
	@tools/demo

# Throughput against Postfix, memory, latency and DNS queries per message;
# docs/benchmarks.md explains the figures.  Takes about 15 minutes.
bench: all
	tools/bench && tools/bench-mem && tools/bench-dns

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BIN)/router $(BIN)/dnsconf $(DESTDIR)$(BINDIR)
	for m in docs/*.8; do [ -f "$$m" ] && \
	    install -m 0644 "$$m" $(DESTDIR)$(MANDIR)/man8/ || true; done

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# libFuzzer targets (clang): make fuzz, then e.g.
#   build/fuzz/fuzz_addr -max_total_time=300 tests/fuzz/corpus/addr
FUZZ_SRCS	:= $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS	:= $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_CFLAGS	 = -std=c11 -D_GNU_SOURCE -g -O1 -Irouter -Irouter/util \
		   -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS)

fuzz: $(FUZZ_BINS)

build/fuzz/%: tests/fuzz/%.c $(UTIL_SRCS) $(ROUTER_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(UTIL_SRCS) $(ROUTER_SRCS) $(LDLIBS)

# This target includes router/dns.c to reach its static functions.
build/fuzz/fuzz_dns_answer: tests/fuzz/fuzz_dns_answer.c $(UTIL_SRCS) $(ROUTER_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(UTIL_SRCS) \
	    $(filter-out router/dns.c,$(ROUTER_SRCS)) $(LDLIBS)
