/*
 * libFuzzer target for the inbound SMTP session: command parsing,
 * pipelining, the state machine and DATA, driven through a socketpair on
 * a real libev loop.  DNS answers come from a small zone in zone mode, so
 * routing lookups run their real code and fail without touching the
 * network; no upstream connection can succeed.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "dns.h"
#include "log.h"
#include "record.h"
#include "route.h"
#include "smtp_server.h"
#include "srs.h"

static struct ev_loop *fuzz_loop;
static struct smtp_server_config fuzz_cfg;
static struct rec_relay_key fuzz_relay;
static struct srs fuzz_srs;

static void
fuzz_init(void)
{
	char zone[] = "/tmp/fuzz-session-zone-XXXXXX";
	char secret[] = "/tmp/fuzz-session-srs-XXXXXX", err[256];
	struct dns_ctx *dns;
	FILE *f;
	int fd;

	if (sodium_init() < 0)
		abort();
	log_init("fuzz", LOG_LVL_ERR);
	fuzz_loop = ev_default_loop(0);
	if ((fd = mkstemp(zone)) < 0 || (f = fdopen(fd, "w")) == NULL)
		abort();
	fprintf(f, "$ORIGIN example.com.\n$TTL 60\n"
	    "@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\n"
	    "ns IN A 127.0.0.1\n");
	fclose(f);
	dns = dns_new(fuzz_loop, &(struct dns_config){ .timeout = 1.,
	    .attempts = 1, .cache_max_entries = 1000,
	    .cache_max_bytes = 1 << 20 });
	if (dns_add_zone_file(dns, zone, err, sizeof(err)) < 0)
		abort();
	unlink(zone);
	memset(fuzz_relay.sec, 2, sizeof(fuzz_relay.sec));
	crypto_scalarmult_base(fuzz_relay.pub, fuzz_relay.sec);
	if ((fd = mkstemp(secret)) < 0 || write(fd, "fuzz\n", 5) != 5)
		abort();
	close(fd);
	if (srs_init(&fuzz_srs, "fwd.example.com", secret, err,
	    sizeof(err)) < 0)
		abort();
	unlink(secret);
	fuzz_cfg.hostname = "mx.example.com";
	fuzz_cfg.max_size = 4096;
	fuzz_cfg.max_rcpts = 100;
	fuzz_cfg.idle_timeout = 5.;
	fuzz_cfg.client.hostname = "mx.example.com";
	fuzz_cfg.client.port = 1;
	fuzz_cfg.client.connect_timeout = 1.;
	fuzz_cfg.client.command_timeout = 1.;
	fuzz_cfg.client.data_end_timeout = 1.;
	fuzz_cfg.client.out_high_water = 65536;
	fuzz_cfg.srs = &fuzz_srs;
	fuzz_cfg.dns = dns;
	fuzz_cfg.route = route_new(fuzz_loop, dns, &fuzz_relay, 1, 1000,
	    1 << 20);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char sink[65536];
	size_t off = 0;
	int sv[2], i;
	ssize_t n;

	if (fuzz_loop == NULL)
		fuzz_init();
	if (size > 32768)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	smtp_server_accept(fuzz_loop, &fuzz_cfg, sv[0],
	    (struct sockaddr *)&sin, sizeof(sin));
	/* Feed the input, let the session work, then hang up. */
	for (i = 0; i < 200 && smtp_server_sessions() > 0; i++) {
		if (off < size) {
			n = write(sv[1], data + off, size - off);
			if (n > 0)
				off += (size_t)n;
		} else if (off == size) {
			shutdown(sv[1], SHUT_WR);
			off++;
		}
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
		ev_run(fuzz_loop, EVRUN_NOWAIT);
	}
	close(sv[1]);
	for (i = 0; i < 1000 && smtp_server_sessions() > 0; i++)
		ev_run(fuzz_loop, EVRUN_ONCE);
	if (smtp_server_sessions() != 0)
		abort();
	return 0;
}
