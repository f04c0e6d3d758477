/*
 * Tests of the asynchronous DNS client (router/dns.c) on a real libev
 * loop.
 *
 * Network mode talks to a real NSD (/usr/sbin/nsd) that this program
 * starts on 127.0.0.1 at a free high port, serving a zone it writes into a
 * temporary directory.  The failure cases use fake resolvers: child
 * processes of this program that bind loopback sockets and answer with
 * canned responses (silence, SERVFAIL, TC set with the full answer over
 * TCP, a wrong ID or question first).  They are mocks, not DNS servers.
 *
 * Zone mode loads the same zone file and runs the same assertions with
 * no server at all.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <ldns/ldns.h>

#include "check.h"
#include "dns.h"
#include "log.h"

#define NSD_PATH	"/usr/sbin/nsd"
#define FAKE_NAME	"fake.test."

static char tmpdir[64];
static pid_t nsd_pid = -1;
static int nsd_port;
static char nsd_addr[32];

/* What the test zone holds; the assertions below depend on it. */
static const char zone_text[] =
    "$ORIGIN example.test.\n"
    "$TTL 300\n"
    "@\tIN SOA ns.example.test. admin.example.test. 1 3600 900 604800 120\n"
    "@\tIN NS ns\n"
    "ns\tIN A 127.0.0.1\n"
    "www\tIN A 192.0.2.1\n"
    "www\tIN AAAA 2001:db8::1\n"
    "@\tIN MX 10 mx1\n"
    "@\tIN MX 20 mx2\n"
    "mx1\tIN A 192.0.2.10\n"
    "mx2\tIN A 192.0.2.20\n"
    "txt\tIN TXT \"v=test1\" \"second string\" \"third\"\n"
    "alias\t60 IN CNAME www\n"
    "alias2\tIN CNAME alias\n"
    "a.b\tIN A 192.0.2.30\n"
    "week\t604800 IN A 192.0.2.40\n";

/* A second zone for zone mode: CNAMEs across zones and a CNAME loop. */
static const char other_zone_text[] =
    "$ORIGIN other.test.\n"
    "$TTL 600\n"
    "@\tIN SOA ns.other.test. admin.other.test. 1 3600 900 604800 30\n"
    "@\tIN NS ns.example.test.\n"
    "to-example\tIN CNAME www.example.test.\n"
    "loop1\tIN CNAME loop2\n"
    "loop2\tIN CNAME loop1\n";

/*
 * Callback bookkeeping.
 */

struct result {
	int		 calls;
	enum dns_status	 status;
	uint32_t	 ttl;
	ldns_rr_list	*rrs;		/* a copy, freed by result_clear() */
	int		*counter;	/* incremented on each call if set */
};

static void
result_cb(void *arg, const struct dns_answer *answer)
{
	struct result *r = arg;

	r->calls++;
	r->status = answer->status;
	r->ttl = answer->ttl;
	ldns_rr_list_deep_free(r->rrs);
	r->rrs = answer->rrs != NULL ? ldns_rr_list_clone(answer->rrs) : NULL;
	if (r->counter != NULL)
		(*r->counter)++;
}

static void
result_clear(struct result *r)
{
	ldns_rr_list_deep_free(r->rrs);
	memset(r, 0, sizeof(*r));
}

static size_t
result_count(const struct result *r)
{
	return r->rrs != NULL ? ldns_rr_list_rr_count(r->rrs) : 0;
}

/* Returns the text of rdata field i of record n, to be freed. */
static char *
result_rdf(const struct result *r, size_t n, size_t i)
{
	const ldns_rr *rr;

	if (r->rrs == NULL || n >= ldns_rr_list_rr_count(r->rrs))
		return NULL;
	rr = ldns_rr_list_rr(r->rrs, n);
	if (i >= ldns_rr_rd_count(rr))
		return NULL;
	return ldns_rdf2str(ldns_rr_rdf(rr, i));
}

static void
check_rdf(const struct result *r, size_t n, size_t i, const char *want)
{
	char *text = result_rdf(r, n, i);

	CHECK_STR(text, want);
	free(text);
}

static void
noop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* Run the loop until *calls reaches want or limit seconds have passed. */
static void
run_until(struct ev_loop *loop, const int *calls, int want, double limit)
{
	double end = ev_time() + limit;
	ev_timer tick;

	/* The tick keeps ev_run() from returning at once with no watcher. */
	ev_timer_init(&tick, noop_cb, 0.05, 0.05);
	ev_timer_start(loop, &tick);
	while (*calls < want && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &tick);
}

/* Look name up and run the loop until the answer arrives (5 s at most). */
static void
lookup_wait(struct ev_loop *loop, struct dns_ctx *ctx, const char *name,
    ldns_rr_type type, struct result *r)
{
	result_clear(r);
	dns_lookup(ctx, name, type, result_cb, r);
	CHECK_INT(r->calls, 0);
	run_until(loop, &r->calls, 1, 5.0);
	CHECK_INT(r->calls, 1);
}

/*
 * Files and NSD.
 */

static void
write_file(const char *name, const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((fp = fopen(path, "w")) == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

/* Returns a port that is free for UDP and TCP on 127.0.0.1, or 0. */
static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int udp, tcp, port = 0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	udp = socket(AF_INET, SOCK_DGRAM, 0);
	tcp = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(udp, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(udp, (struct sockaddr *)&sin, &len) == 0 &&
	    bind(tcp, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		port = ntohs(sin.sin_port);
	close(udp);
	close(tcp);
	return port;
}

static int
tcp_port_open(int port)
{
	struct sockaddr_in sin;
	int fd, ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static void
nsd_write_conf(void)
{
	char conf[2048];

	snprintf(conf, sizeof(conf),
	    "server:\n"
	    "  ip-address: 127.0.0.1@%d\n"
	    "  port: %d\n"
	    "  pidfile: \"%s/nsd.pid\"\n"
	    "  zonesdir: \"%s\"\n"
	    "  zonelistfile: \"%s/zone.list\"\n"
	    "  xfrdfile: \"%s/xfrd.state\"\n"
	    "  xfrdir: \"%s\"\n"
	    "  username: \"\"\n"
	    "  database: \"\"\n"
	    "  chroot: \"\"\n"
	    "  server-count: 1\n"
	    "remote-control:\n"
	    "  control-enable: no\n"
	    "zone:\n"
	    "  name: example.test\n"
	    "  zonefile: example.test.zone\n",
	    nsd_port, nsd_port, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
	write_file("nsd.conf", conf);
}

/*
 * Start NSD in the foreground as a child on a free port.  Returns 0 once
 * it listens, or -1 if it exited or did not listen within 10 seconds.
 */
static int
nsd_start_once(void)
{
	char conf[128], log[128];
	double end;
	int status;

	if ((nsd_port = free_port()) == 0)
		return -1;
	snprintf(nsd_addr, sizeof(nsd_addr), "127.0.0.1:%d", nsd_port);
	nsd_write_conf();
	snprintf(conf, sizeof(conf), "%s/nsd.conf", tmpdir);
	snprintf(log, sizeof(log), "%s/nsd.log", tmpdir);
	if ((nsd_pid = fork()) == -1)
		return -1;
	if (nsd_pid == 0) {
		if (freopen(log, "w", stderr) == NULL ||
		    freopen("/dev/null", "r", stdin) == NULL)
			_exit(127);
		execl(NSD_PATH, "nsd", "-d", "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (end = ev_time() + 10; ev_time() < end; usleep(50000)) {
		if (waitpid(nsd_pid, &status, WNOHANG) == nsd_pid) {
			nsd_pid = -1;
			return -1;
		}
		if (tcp_port_open(nsd_port))
			return 0;
	}
	kill(nsd_pid, SIGTERM);
	waitpid(nsd_pid, NULL, 0);
	nsd_pid = -1;
	return -1;
}

/* Start NSD, trying other ports when another program takes the first. */
static int
nsd_start(void)
{
	int i;

	for (i = 0; i < 5; i++)
		if (nsd_start_once() == 0)
			return 0;
	return -1;
}

static void
nsd_stop(void)
{
	if (nsd_pid <= 0)
		return;
	kill(nsd_pid, SIGTERM);
	waitpid(nsd_pid, NULL, 0);
	nsd_pid = -1;
}

/*
 * Fake resolvers, each a child process answering on 127.0.0.1.
 */

enum fake_mode {
	FAKE_SILENT,		/* read queries and drop them */
	FAKE_SERVFAIL,		/* answer SERVFAIL */
	FAKE_TRUNCATED,		/* UDP: TC set, no records; TCP: full */
	FAKE_WRONG_ID,		/* a reply with another ID, then the reply */
	FAKE_WRONG_QUESTION,	/* a reply for another name, then the reply */
	FAKE_ECHO_FLAGS,	/* a TXT record describing the query */
};

struct fake {
	pid_t	pid;
	int	port;
	char	addr[32];
};

static ldns_pkt *
fake_reply(const ldns_pkt *query, uint16_t id)
{
	ldns_pkt *reply = ldns_pkt_new();
	const ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(query), 0);

	ldns_pkt_set_id(reply, id);
	ldns_pkt_set_qr(reply, true);
	ldns_pkt_set_rd(reply, ldns_pkt_rd(query));
	ldns_pkt_set_ra(reply, true);
	if (q != NULL)
		ldns_pkt_push_rr(reply, LDNS_SECTION_QUESTION, ldns_rr_clone(q));
	return reply;
}

static void
fake_add(ldns_pkt *pkt, ldns_pkt_section section, const char *text)
{
	ldns_rr *rr = NULL;
	ldns_status st;

	if (section == LDNS_SECTION_QUESTION)
		st = ldns_rr_new_question_frm_str(&rr, text, NULL, NULL);
	else
		st = ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL);
	if (st != LDNS_STATUS_OK)
		_exit(2);
	ldns_pkt_push_rr(pkt, section, rr);
}

/* Send pkt to the peer (UDP) or on the stream (TCP, peer NULL); frees it. */
static void
fake_send(int fd, ldns_pkt *pkt, const struct sockaddr *peer,
    socklen_t peerlen)
{
	uint8_t *wire = NULL, len[2];
	size_t n;

	if (ldns_pkt2wire(&wire, pkt, &n) != LDNS_STATUS_OK)
		_exit(2);
	if (peer != NULL)
		sendto(fd, wire, n, 0, peer, peerlen);
	else {
		len[0] = n >> 8;
		len[1] = n & 0xff;
		if (write(fd, len, 2) != 2 || write(fd, wire, n) != (ssize_t)n)
			_exit(2);
	}
	free(wire);
	ldns_pkt_free(pkt);
}

static ldns_pkt *
fake_full_answer(const ldns_pkt *query)
{
	ldns_pkt *reply = fake_reply(query, ldns_pkt_id(query));

	fake_add(reply, LDNS_SECTION_ANSWER, FAKE_NAME " 300 IN A 192.0.2.11");
	fake_add(reply, LDNS_SECTION_ANSWER, FAKE_NAME " 300 IN A 192.0.2.12");
	fake_add(reply, LDNS_SECTION_ANSWER, FAKE_NAME " 300 IN A 192.0.2.13");
	return reply;
}

static void
fake_udp(enum fake_mode mode, int fd)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	struct sockaddr *p = (struct sockaddr *)&peer;
	uint8_t buf[4096];
	ldns_pkt *query = NULL, *reply;
	uint16_t id;
	char text[128];
	ssize_t n;

	n = recvfrom(fd, buf, sizeof(buf), 0, p, &plen);
	if (n <= 0 || mode == FAKE_SILENT ||
	    ldns_wire2pkt(&query, buf, (size_t)n) != LDNS_STATUS_OK)
		return;
	id = ldns_pkt_id(query);
	switch (mode) {
	case FAKE_SERVFAIL:
		reply = fake_reply(query, id);
		ldns_pkt_set_rcode(reply, LDNS_RCODE_SERVFAIL);
		fake_send(fd, reply, p, plen);
		break;
	case FAKE_TRUNCATED:
		reply = fake_reply(query, id);
		ldns_pkt_set_tc(reply, true);
		fake_send(fd, reply, p, plen);
		break;
	case FAKE_WRONG_ID:
		reply = fake_reply(query, (uint16_t)(id + 1));
		fake_add(reply, LDNS_SECTION_ANSWER,
		    FAKE_NAME " 300 IN A 192.0.2.99");
		fake_send(fd, reply, p, plen);
		fake_send(fd, fake_full_answer(query), p, plen);
		break;
	case FAKE_WRONG_QUESTION:
		reply = ldns_pkt_new();
		ldns_pkt_set_id(reply, id);
		ldns_pkt_set_qr(reply, true);
		fake_add(reply, LDNS_SECTION_QUESTION, "other.test. IN A");
		fake_add(reply, LDNS_SECTION_ANSWER,
		    FAKE_NAME " 300 IN A 192.0.2.99");
		fake_send(fd, reply, p, plen);
		fake_send(fd, fake_full_answer(query), p, plen);
		break;
	case FAKE_ECHO_FLAGS:
		reply = fake_reply(query, id);
		snprintf(text, sizeof(text), FAKE_NAME " 60 IN TXT "
		    "\"rd=%d ad=%d edns=%u\"", ldns_pkt_rd(query),
		    ldns_pkt_ad(query), ldns_pkt_edns_udp_size(query));
		fake_add(reply, LDNS_SECTION_ANSWER, text);
		fake_send(fd, reply, p, plen);
		break;
	default:
		break;
	}
	ldns_pkt_free(query);
}

/* Serve one TCP connection: read one query, send the full answer. */
static void
fake_tcp(int listener)
{
	uint8_t len[2], buf[4096];
	struct timeval tv = { 2, 0 };
	ldns_pkt *query = NULL;
	size_t n;
	int fd;

	if ((fd = accept(listener, NULL, NULL)) == -1)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (recv(fd, len, 2, MSG_WAITALL) == 2) {
		n = (size_t)len[0] << 8 | len[1];
		if (n <= sizeof(buf) &&
		    recv(fd, buf, n, MSG_WAITALL) == (ssize_t)n &&
		    ldns_wire2pkt(&query, buf, n) == LDNS_STATUS_OK) {
			fake_send(fd, fake_full_answer(query), NULL, 0);
			ldns_pkt_free(query);
		}
	}
	close(fd);
}

static void
fake_serve(enum fake_mode mode, int udp, int tcp)
{
	struct pollfd p[2] = { { udp, POLLIN, 0 }, { tcp, POLLIN, 0 } };

	for (;;) {
		if (poll(p, tcp == -1 ? 1 : 2, -1) == -1 && errno != EINTR)
			_exit(1);
		if (p[0].revents & POLLIN)
			fake_udp(mode, udp);
		if (tcp != -1 && (p[1].revents & POLLIN))
			fake_tcp(tcp);
	}
}

/*
 * Bind a socket of type on the loopback address of family, at port (0 for
 * any).  Returns the socket, or -1.
 */
static int
fake_bind(int family, int type, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd = socket(family, type, 0), on = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    (type == SOCK_STREAM && listen(fd, 8) == -1)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Returns the local port of a bound socket. */
static int
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/*
 * Start a fake resolver on loopback.  Returns 0, or -1 if family has no
 * loopback address here.
 */
static int
fake_start_family(struct fake *fake, enum fake_mode mode, int family)
{
	int udp, tcp = -1;

	if ((udp = fake_bind(family, SOCK_DGRAM, 0)) == -1)
		return -1;
	fake->port = bound_port(udp);
	snprintf(fake->addr, sizeof(fake->addr),
	    family == AF_INET6 ? "[::1]:%d" : "127.0.0.1:%d", fake->port);
	if (mode == FAKE_TRUNCATED &&
	    (tcp = fake_bind(family, SOCK_STREAM, fake->port)) == -1) {
		close(udp);
		return -1;
	}
	if ((fake->pid = fork()) == 0) {
		fake_serve(mode, udp, tcp);
		_exit(0);
	}
	close(udp);
	if (tcp != -1)
		close(tcp);
	return 0;
}

static void
fake_start(struct fake *fake, enum fake_mode mode)
{
	if (fake_start_family(fake, mode, AF_INET) == -1) {
		perror("fake resolver on 127.0.0.1");
		exit(1);
	}
}

static void
fake_stop(struct fake *fake)
{
	kill(fake->pid, SIGKILL);
	waitpid(fake->pid, NULL, 0);
}

/*
 * Setup for one test.
 */

struct env {
	struct ev_loop	*loop;
	struct dns_ctx	*ctx;
	struct result	 r;
};

static void
env_open(struct env *env, double timeout, int attempts)
{
	struct dns_config config = { timeout, attempts, 1000, 1 << 20 };

	memset(env, 0, sizeof(*env));
	env->loop = ev_loop_new(EVFLAG_AUTO);
	env->ctx = dns_new(env->loop, &config);
}

static void
env_close(struct env *env)
{
	result_clear(&env->r);
	dns_free(env->ctx);
	ev_loop_destroy(env->loop);
}

/* A context whose only resolver is NSD. */
static void
env_open_nsd(struct env *env)
{
	env_open(env, 1.0, 2);
	CHECK(nsd_pid > 0);
	CHECK_INT(dns_add_resolver(env->ctx, nsd_addr), 0);
}

/* A context in zone mode with both test zones loaded. */
static void
env_open_zones(struct env *env)
{
	char path[128], err[256] = "";

	env_open(env, 1.0, 2);
	snprintf(path, sizeof(path), "%s/example.test.zone", tmpdir);
	CHECK_INT(dns_add_zone_file(env->ctx, path, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/other.test.zone", tmpdir);
	CHECK_INT(dns_add_zone_file(env->ctx, path, err, sizeof(err)), 0);
	CHECK_STR(err, "");
}

/*
 * Assertions shared by network mode (NSD) and zone mode.
 */

static void
check_records(struct env *env)
{
	struct result *r = &env->r;

	lookup_wait(env->loop, env->ctx, "www.example.test", LDNS_RR_TYPE_A, r);
	CHECK_INT(r->status, DNS_OK);
	CHECK_INT(r->ttl, 300);
	CHECK_INT(result_count(r), 1);
	check_rdf(r, 0, 0, "192.0.2.1");

	lookup_wait(env->loop, env->ctx, "WWW.Example.TEST.",
	    LDNS_RR_TYPE_AAAA, r);
	CHECK_INT(r->status, DNS_OK);
	CHECK_INT(result_count(r), 1);
	check_rdf(r, 0, 0, "2001:db8::1");

	lookup_wait(env->loop, env->ctx, "example.test", LDNS_RR_TYPE_MX, r);
	CHECK_INT(r->status, DNS_OK);
	CHECK_INT(result_count(r), 2);

	/* After a record with its own TTL, the $TTL default applies again. */
	lookup_wait(env->loop, env->ctx, "a.b.example.test", LDNS_RR_TYPE_A,
	    r);
	CHECK_INT(r->status, DNS_OK);
	CHECK_INT(r->ttl, 300);

	lookup_wait(env->loop, env->ctx, "txt.example.test", LDNS_RR_TYPE_TXT,
	    r);
	CHECK_INT(r->status, DNS_OK);
	CHECK_INT(result_count(r), 1);
	check_rdf(r, 0, 0, "\"v=test1\"");
	check_rdf(r, 0, 1, "\"second string\"");
	check_rdf(r, 0, 2, "\"third\"");
}

/* Returns the MX preference of record n, or -1. */
static int
mx_preference(const struct result *r, size_t n)
{
	if (result_count(r) <= n)
		return -1;
	return ldns_rdf2native_int16(ldns_rr_rdf(ldns_rr_list_rr(r->rrs, n),
	    0));
}

static void
check_mx(struct env *env)
{
	struct result *r = &env->r;
	int a, b;

	lookup_wait(env->loop, env->ctx, "example.test", LDNS_RR_TYPE_MX, r);
	CHECK_INT(r->status, DNS_OK);
	CHECK_INT(result_count(r), 2);
	a = mx_preference(r, 0);
	b = mx_preference(r, 1);
	CHECK((a == 10 && b == 20) || (a == 20 && b == 10));
}

static void
check_negative(struct env *env)
{
	struct result *r = &env->r;

	/* RFC 2308: min(SOA TTL 300, SOA MINIMUM 120). */
	lookup_wait(env->loop, env->ctx, "missing.example.test",
	    LDNS_RR_TYPE_A, r);
	CHECK_INT(r->status, DNS_NXDOMAIN);
	CHECK_INT(r->ttl, 120);
	CHECK(r->rrs == NULL);

	lookup_wait(env->loop, env->ctx, "www.example.test", LDNS_RR_TYPE_MX,
	    r);
	CHECK_INT(r->status, DNS_NODATA);
	CHECK_INT(r->ttl, 120);
	CHECK(r->rrs == NULL);

	/* b.example.test owns nothing but has a child: an empty non-terminal. */
	lookup_wait(env->loop, env->ctx, "b.example.test", LDNS_RR_TYPE_A, r);
	CHECK_INT(r->status, DNS_NODATA);
}

static void
check_cname(struct env *env)
{
	struct result *r = &env->r;

	lookup_wait(env->loop, env->ctx, "alias.example.test", LDNS_RR_TYPE_A,
	    r);
	CHECK_INT(r->status, DNS_OK);
	CHECK_INT(r->ttl, 60);
	CHECK_INT(result_count(r), 1);
	check_rdf(r, 0, 0, "192.0.2.1");

	lookup_wait(env->loop, env->ctx, "alias2.example.test",
	    LDNS_RR_TYPE_AAAA, r);
	CHECK_INT(r->status, DNS_OK);
	CHECK_INT(r->ttl, 60);
	check_rdf(r, 0, 0, "2001:db8::1");

	/* Asking for the CNAME itself does not follow it. */
	lookup_wait(env->loop, env->ctx, "alias.example.test",
	    LDNS_RR_TYPE_CNAME, r);
	CHECK_INT(r->status, DNS_OK);
	check_rdf(r, 0, 0, "www.example.test.");

	/* A CNAME to a name without the type: NODATA for the target. */
	lookup_wait(env->loop, env->ctx, "alias.example.test",
	    LDNS_RR_TYPE_MX, r);
	CHECK_INT(r->status, DNS_NODATA);
}

static void
check_ttl_cap(struct env *env)
{
	lookup_wait(env->loop, env->ctx, "week.example.test", LDNS_RR_TYPE_A,
	    &env->r);
	CHECK_INT(env->r.status, DNS_OK);
	CHECK_INT(env->r.ttl, 86400);
}

static void
check_invalid_names(struct env *env)
{
	char label64[80], long_name[300];
	uint64_t sent = dns_queries_sent(env->ctx);
	size_t i;

	memset(label64, 'a', 64);
	strcpy(label64 + 64, ".example.test");
	lookup_wait(env->loop, env->ctx, label64, LDNS_RR_TYPE_A, &env->r);
	CHECK_INT(env->r.status, DNS_SERVFAIL);

	/* A 254-character name: labels of nine letters separated by dots. */
	for (i = 0; i < 254; i++)
		long_name[i] = i % 10 == 9 ? '.' : 'a';
	long_name[253] = 'a';
	long_name[254] = '\0';
	lookup_wait(env->loop, env->ctx, long_name, LDNS_RR_TYPE_A, &env->r);
	CHECK_INT(env->r.status, DNS_SERVFAIL);

	lookup_wait(env->loop, env->ctx, "", LDNS_RR_TYPE_A, &env->r);
	CHECK_INT(env->r.status, DNS_SERVFAIL);
	lookup_wait(env->loop, env->ctx, "a..example.test", LDNS_RR_TYPE_A,
	    &env->r);
	CHECK_INT(env->r.status, DNS_SERVFAIL);
	CHECK_INT(dns_queries_sent(env->ctx), sent);
}

/*
 * Network mode against NSD.
 */

static void
nsd_records(void)
{
	struct env env;

	env_open_nsd(&env);
	check_records(&env);
	check_mx(&env);
	env_close(&env);
}

static void
nsd_negative_answers(void)
{
	struct env env;

	env_open_nsd(&env);
	check_negative(&env);
	env_close(&env);
}

static void
nsd_cname_following(void)
{
	struct env env;

	env_open_nsd(&env);
	check_cname(&env);
	check_ttl_cap(&env);
	env_close(&env);
}

static void
nsd_invalid_names(void)
{
	struct env env;

	env_open_nsd(&env);
	check_invalid_names(&env);
	env_close(&env);
}

static void
nsd_cache_hit(void)
{
	struct env env;
	uint64_t sent;

	env_open_nsd(&env);
	lookup_wait(env.loop, env.ctx, "www.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	sent = dns_queries_sent(env.ctx);
	CHECK_INT(sent, 1);

	/* Same name in another spelling: same key, no packet. */
	lookup_wait(env.loop, env.ctx, "WWW.example.test.", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK(env.r.ttl <= 300);
	CHECK(env.r.ttl >= 298);
	check_rdf(&env.r, 0, 0, "192.0.2.1");
	CHECK_INT(dns_queries_sent(env.ctx), sent);

	/* Negative answers are cached too. */
	lookup_wait(env.loop, env.ctx, "missing.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	sent = dns_queries_sent(env.ctx);
	lookup_wait(env.loop, env.ctx, "missing.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_NXDOMAIN);
	CHECK(env.r.ttl <= 120);
	CHECK(env.r.ttl >= 118);
	CHECK_INT(dns_queries_sent(env.ctx), sent);
	env_close(&env);
}

static void
nsd_cache_bounded(void)
{
	struct dns_config config = { 1.0, 1, 1, 1 << 20 };
	struct env env;

	/* A cache of one entry: the second name evicts the first. */
	memset(&env, 0, sizeof(env));
	env.loop = ev_loop_new(EVFLAG_AUTO);
	env.ctx = dns_new(env.loop, &config);
	CHECK_INT(dns_add_resolver(env.ctx, nsd_addr), 0);
	lookup_wait(env.loop, env.ctx, "mx1.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	lookup_wait(env.loop, env.ctx, "mx2.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	lookup_wait(env.loop, env.ctx, "mx2.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(dns_queries_sent(env.ctx), 2);
	lookup_wait(env.loop, env.ctx, "mx1.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK_INT(dns_queries_sent(env.ctx), 3);
	env_close(&env);
}

static void
nsd_shared_lookups(void)
{
	struct result a = { 0 }, b = { 0 }, c = { 0 };
	struct dns_query *qc;
	struct env env;
	int calls = 0;

	env_open_nsd(&env);
	a.counter = b.counter = c.counter = &calls;
	dns_lookup(env.ctx, "mx1.example.test", LDNS_RR_TYPE_A, result_cb, &a);
	dns_lookup(env.ctx, "MX1.example.test.", LDNS_RR_TYPE_A, result_cb,
	    &b);
	qc = dns_lookup(env.ctx, "mx1.example.test", LDNS_RR_TYPE_A,
	    result_cb, &c);
	dns_cancel(qc);
	CHECK_INT(dns_queries_sent(env.ctx), 1);
	run_until(env.loop, &calls, 2, 5.0);
	CHECK_INT(a.calls, 1);
	CHECK_INT(b.calls, 1);
	CHECK_INT(c.calls, 0);
	CHECK_INT(a.status, DNS_OK);
	CHECK_INT(b.status, DNS_OK);
	check_rdf(&b, 0, 0, "192.0.2.10");
	CHECK_INT(dns_queries_sent(env.ctx), 1);
	result_clear(&a);
	result_clear(&b);
	env_close(&env);
}

static void
nsd_cancel_last_waiter(void)
{
	struct result a = { 0 };
	struct dns_query *q;
	struct env env;

	env_open_nsd(&env);
	q = dns_lookup(env.ctx, "mx2.example.test", LDNS_RR_TYPE_A, result_cb,
	    &a);
	dns_cancel(q);
	/* The query goes on without waiters and fills the cache. */
	run_until(env.loop, &a.calls, 1, 0.5);
	CHECK_INT(a.calls, 0);
	lookup_wait(env.loop, env.ctx, "mx2.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK_INT(dns_queries_sent(env.ctx), 1);

	/* A cache hit cancelled before the loop runs is never called back. */
	q = dns_lookup(env.ctx, "mx2.example.test", LDNS_RR_TYPE_A, result_cb,
	    &a);
	dns_cancel(q);
	run_until(env.loop, &a.calls, 1, 0.2);
	CHECK_INT(a.calls, 0);

	/* A lookup still in flight when the context is freed: no callback. */
	dns_lookup(env.ctx, "ns.example.test", LDNS_RR_TYPE_A, result_cb, &a);
	env_close(&env);
	CHECK_INT(a.calls, 0);
}

/* Start another lookup from inside a callback. */
static void
nested_cb(void *arg, const struct dns_answer *answer)
{
	struct env *env = arg;

	env->r.calls++;
	env->r.status = answer->status;
	dns_lookup(env->ctx, "www.example.test", LDNS_RR_TYPE_A, result_cb,
	    &env->r);
}

static void
nsd_lookup_from_callback(void)
{
	struct env env;

	env_open_nsd(&env);
	dns_lookup(env.ctx, "www.example.test", LDNS_RR_TYPE_A, nested_cb,
	    &env);
	run_until(env.loop, &env.r.calls, 2, 5.0);
	CHECK_INT(env.r.calls, 2);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK_INT(dns_queries_sent(env.ctx), 1);
	env_close(&env);
}

static void
nsd_silent_resolver_skipped(void)
{
	struct fake silent;
	struct env env;
	double start;

	fake_start(&silent, FAKE_SILENT);
	env_open(&env, 0.3, 1);
	CHECK_INT(dns_add_resolver(env.ctx, silent.addr), 0);
	CHECK_INT(dns_add_resolver(env.ctx, nsd_addr), 0);
	start = ev_time();
	lookup_wait(env.loop, env.ctx, "www.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK(ev_time() - start >= 0.29);
	CHECK_INT(dns_queries_sent(env.ctx), 2);
	env_close(&env);
	fake_stop(&silent);
}

static void
fake_all_silent_timeout(void)
{
	struct fake s1, s2;
	struct env env;
	double elapsed;

	fake_start(&s1, FAKE_SILENT);
	fake_start(&s2, FAKE_SILENT);

	/* One resolver: timeout * attempts. */
	env_open(&env, 0.2, 2);
	CHECK_INT(dns_add_resolver(env.ctx, s1.addr), 0);
	elapsed = ev_time();
	lookup_wait(env.loop, env.ctx, FAKE_NAME, LDNS_RR_TYPE_A, &env.r);
	elapsed = ev_time() - elapsed;
	CHECK_INT(env.r.status, DNS_TIMEOUT);
	CHECK(elapsed >= 0.39);
	CHECK(elapsed < 1.0);
	CHECK_INT(dns_queries_sent(env.ctx), 2);
	env_close(&env);

	/* Two resolvers: timeout * attempts * resolvers. */
	env_open(&env, 0.2, 2);
	CHECK_INT(dns_add_resolver(env.ctx, s1.addr), 0);
	CHECK_INT(dns_add_resolver(env.ctx, s2.addr), 0);
	elapsed = ev_time();
	lookup_wait(env.loop, env.ctx, FAKE_NAME, LDNS_RR_TYPE_A, &env.r);
	elapsed = ev_time() - elapsed;
	CHECK_INT(env.r.status, DNS_TIMEOUT);
	CHECK(elapsed >= 0.79);
	CHECK(elapsed < 1.6);
	CHECK_INT(dns_queries_sent(env.ctx), 4);

	/* Timeouts are not cached: the next lookup sends again. */
	lookup_wait(env.loop, env.ctx, FAKE_NAME, LDNS_RR_TYPE_A, &env.r);
	CHECK_INT(dns_queries_sent(env.ctx), 8);
	env_close(&env);
	fake_stop(&s1);
	fake_stop(&s2);
}

static void
fake_truncated_retries_tcp(void)
{
	struct fake tc;
	struct env env;

	fake_start(&tc, FAKE_TRUNCATED);
	env_open(&env, 1.0, 1);
	CHECK_INT(dns_add_resolver(env.ctx, tc.addr), 0);
	lookup_wait(env.loop, env.ctx, FAKE_NAME, LDNS_RR_TYPE_A, &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK_INT(result_count(&env.r), 3);
	check_rdf(&env.r, 2, 0, "192.0.2.13");
	CHECK_INT(dns_queries_sent(env.ctx), 2);
	env_close(&env);
	fake_stop(&tc);
}

static void
fake_servfail(void)
{
	struct fake sf;
	struct env env;

	fake_start(&sf, FAKE_SERVFAIL);
	env_open(&env, 1.0, 2);
	CHECK_INT(dns_add_resolver(env.ctx, sf.addr), 0);
	lookup_wait(env.loop, env.ctx, FAKE_NAME, LDNS_RR_TYPE_A, &env.r);
	CHECK_INT(env.r.status, DNS_SERVFAIL);
	/* A resolver that answered with an error is not asked again. */
	CHECK_INT(dns_queries_sent(env.ctx), 1);
	env_close(&env);

	/* SERVFAIL from the first resolver: the next one answers. */
	env_open(&env, 1.0, 2);
	CHECK_INT(dns_add_resolver(env.ctx, sf.addr), 0);
	CHECK_INT(dns_add_resolver(env.ctx, nsd_addr), 0);
	lookup_wait(env.loop, env.ctx, "www.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK_INT(dns_queries_sent(env.ctx), 2);
	env_close(&env);
	fake_stop(&sf);
}

static void
fake_mismatch_ignored(void)
{
	enum fake_mode modes[] = { FAKE_WRONG_ID, FAKE_WRONG_QUESTION };
	struct fake fake;
	struct env env;
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		fake_start(&fake, modes[i]);
		env_open(&env, 1.0, 1);
		CHECK_INT(dns_add_resolver(env.ctx, fake.addr), 0);
		lookup_wait(env.loop, env.ctx, FAKE_NAME, LDNS_RR_TYPE_A,
		    &env.r);
		CHECK_INT(env.r.status, DNS_OK);
		CHECK_INT(result_count(&env.r), 3);
		check_rdf(&env.r, 0, 0, "192.0.2.11");
		CHECK_INT(dns_queries_sent(env.ctx), 1);
		env_close(&env);
		fake_stop(&fake);
	}
}

static void
fake_query_flags(void)
{
	struct fake echo;
	struct env env;

	fake_start(&echo, FAKE_ECHO_FLAGS);
	env_open(&env, 1.0, 1);
	CHECK_INT(dns_add_resolver(env.ctx, echo.addr), 0);
	lookup_wait(env.loop, env.ctx, FAKE_NAME, LDNS_RR_TYPE_TXT, &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	check_rdf(&env.r, 0, 0, "\"rd=1 ad=1 edns=1232\"");
	env_close(&env);
	fake_stop(&echo);
}

static void
fake_ipv6_resolver(void)
{
	struct fake tc;
	struct env env;

	if (fake_start_family(&tc, FAKE_TRUNCATED, AF_INET6) == -1) {
		printf("skip fake_ipv6_resolver: no ::1 here\n");
		return;
	}
	env_open(&env, 1.0, 1);
	CHECK_INT(dns_add_resolver(env.ctx, tc.addr), 0);
	lookup_wait(env.loop, env.ctx, FAKE_NAME, LDNS_RR_TYPE_A, &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK_INT(result_count(&env.r), 3);
	CHECK_INT(dns_queries_sent(env.ctx), 2);
	env_close(&env);
	fake_stop(&tc);
}

static void
closed_port_fails_fast(void)
{
	struct env env;
	char addr[32];
	double elapsed;

	/* Port unreachable comes back at once: no waiting for the timeout. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
	env_open(&env, 2.0, 2);
	CHECK_INT(dns_add_resolver(env.ctx, addr), 0);
	elapsed = ev_time();
	lookup_wait(env.loop, env.ctx, FAKE_NAME, LDNS_RR_TYPE_A, &env.r);
	elapsed = ev_time() - elapsed;
	CHECK_INT(env.r.status, DNS_TIMEOUT);
	CHECK(elapsed < 1.0);
	CHECK_INT(dns_queries_sent(env.ctx), 2);
	env_close(&env);
}

static void
no_resolver_servfail(void)
{
	struct env env;

	env_open(&env, 1.0, 1);
	lookup_wait(env.loop, env.ctx, "www.example.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_SERVFAIL);
	CHECK_INT(dns_queries_sent(env.ctx), 0);
	env_close(&env);
}

/*
 * Resolver configuration.
 */

static void
resolver_address_forms(void)
{
	static const struct {
		const char	*text;
		int		 want;
	} cases[] = {
		{ "127.0.0.1", 0 },
		{ "127.0.0.1:5353", 0 },
		{ "::1", 0 },
		{ "[::1]:5353", 0 },
		{ "[::1]", 0 },
		{ "", -1 },
		{ "127.0.0.1:", -1 },
		{ "127.0.0.1:0", -1 },
		{ "127.0.0.1:65536", -1 },
		{ "127.0.0.1:53x", -1 },
		{ "localhost", -1 },
		{ "[::1", -1 },
		{ "[::1]5353", -1 },
		{ "127.0.0.256", -1 },
	};
	struct env env;
	size_t i;
	int got;

	env_open(&env, 1.0, 1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = dns_add_resolver(env.ctx, cases[i].text);
		if (got != cases[i].want)
			fprintf(stderr, "  resolver address \"%s\"\n",
			    cases[i].text);
		CHECK_INT(got, cases[i].want);
	}
	env_close(&env);
}

static void
resolver_limit(void)
{
	struct env env;
	char addr[32];
	int i;

	env_open(&env, 1.0, 1);
	for (i = 1; i <= 8; i++) {
		snprintf(addr, sizeof(addr), "127.0.0.%d", i);
		CHECK_INT(dns_add_resolver(env.ctx, addr), 0);
	}
	CHECK_INT(dns_add_resolver(env.ctx, "127.0.0.9"), -1);
	env_close(&env);
}

static void
resolv_conf_nameservers(void)
{
	char path[128];
	struct env env;

	write_file("resolv.conf",
	    "# comment\n"
	    "search example.test\n"
	    "nameserver 127.0.0.1\n"
	    "nameserver\t::1\n"
	    "nameserver not-an-address\n"
	    "options ndots:1\n"
	    "nameserver 127.0.0.2 # trailing comment\n");
	snprintf(path, sizeof(path), "%s/resolv.conf", tmpdir);
	env_open(&env, 1.0, 1);
	CHECK_INT(dns_add_resolv_conf(env.ctx, path), 3);
	env_close(&env);

	env_open(&env, 1.0, 1);
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	CHECK_INT(dns_add_resolv_conf(env.ctx, path), 0);
	env_close(&env);
}

/*
 * Zone mode.
 */

static void
zone_records(void)
{
	struct env env;

	env_open_zones(&env);
	check_records(&env);
	check_mx(&env);
	CHECK_INT(dns_queries_sent(env.ctx), 0);
	env_close(&env);
}

static void
zone_negative_answers(void)
{
	struct env env;

	env_open_zones(&env);
	check_negative(&env);

	/* No loaded zone above the name: NXDOMAIN without a TTL. */
	lookup_wait(env.loop, env.ctx, "www.unknown.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_NXDOMAIN);
	CHECK_INT(env.r.ttl, 0);

	/* The apex has the SOA and NS records. */
	lookup_wait(env.loop, env.ctx, "example.test", LDNS_RR_TYPE_SOA,
	    &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK_INT(dns_queries_sent(env.ctx), 0);
	env_close(&env);
}

static void
zone_cname_following(void)
{
	struct env env;

	env_open_zones(&env);
	check_cname(&env);
	check_ttl_cap(&env);

	lookup_wait(env.loop, env.ctx, "to-example.other.test",
	    LDNS_RR_TYPE_A, &env.r);
	CHECK_INT(env.r.status, DNS_OK);
	CHECK_INT(env.r.ttl, 300);
	check_rdf(&env.r, 0, 0, "192.0.2.1");

	lookup_wait(env.loop, env.ctx, "loop1.other.test", LDNS_RR_TYPE_A,
	    &env.r);
	CHECK_INT(env.r.status, DNS_SERVFAIL);
	env_close(&env);
}

static void
zone_invalid_names(void)
{
	struct env env;

	env_open_zones(&env);
	check_invalid_names(&env);
	env_close(&env);
}

/* Record whether the callback ran before dns_lookup() returned. */
static int in_lookup;
static int called_in_lookup;

static void
sync_check_cb(void *arg, const struct dns_answer *answer)
{
	int *calls = arg;

	if (in_lookup)
		called_in_lookup = 1;
	(*calls)++;
}

static void
zone_answers_asynchronous(void)
{
	struct env env;
	int calls = 0;

	env_open_zones(&env);
	in_lookup = 1;
	dns_lookup(env.ctx, "www.example.test", LDNS_RR_TYPE_A, sync_check_cb,
	    &calls);
	dns_lookup(env.ctx, "bad..name", LDNS_RR_TYPE_A, sync_check_cb,
	    &calls);
	in_lookup = 0;
	CHECK_INT(calls, 0);
	run_until(env.loop, &calls, 2, 1.0);
	CHECK_INT(calls, 2);
	CHECK_INT(called_in_lookup, 0);
	env_close(&env);
}

static void
check_zone_error(const char *name, const char *text, const char *want)
{
	char path[128], err[256] = "";
	struct env env;

	write_file(name, text);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	env_open(&env, 1.0, 1);
	CHECK_INT(dns_add_zone_file(env.ctx, path, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, want);
	CHECK(strstr(err, want) != NULL);
	env_close(&env);
}

static void
zone_file_errors(void)
{
	char path[128], err[256] = "";
	struct env env;

	check_zone_error("syntax.zone",
	    "$ORIGIN bad.test.\n"
	    "$TTL 60\n"
	    "@ IN SOA ns admin 1 2 3 4 5\n"
	    "www IN A 192.0.2.300\n", "syntax.zone:4:");
	check_zone_error("include.zone",
	    "$ORIGIN include.test.\n"
	    "@ 60 IN SOA ns admin 1 2 3 4 5\n"
	    "$INCLUDE other.zone\n", "include.zone:3: $INCLUDE");
	check_zone_error("twosoa.zone",
	    "$ORIGIN twosoa.test.\n"
	    "@ 60 IN SOA ns admin 1 2 3 4 5\n"
	    "@ 60 IN SOA ns admin 2 2 3 4 5\n", "twosoa.zone:3: second SOA");
	check_zone_error("nosoa.zone",
	    "$ORIGIN nosoa.test.\n"
	    "www 60 IN A 192.0.2.1\n", "no SOA record");
	check_zone_error("outside.zone",
	    "$ORIGIN inside.test.\n"
	    "@ 60 IN SOA ns admin 1 2 3 4 5\n"
	    "www.elsewhere.test. 60 IN A 192.0.2.1\n", "outside the zone");

	snprintf(path, sizeof(path), "%s/absent.zone", tmpdir);
	env_open(&env, 1.0, 1);
	CHECK_INT(dns_add_zone_file(env.ctx, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "absent.zone") != NULL);

	/* The same apex twice. */
	snprintf(path, sizeof(path), "%s/example.test.zone", tmpdir);
	CHECK_INT(dns_add_zone_file(env.ctx, path, err, sizeof(err)), 0);
	CHECK_INT(dns_add_zone_file(env.ctx, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "already loaded") != NULL);
	env_close(&env);
}

int
main(void)
{
	int nsd_ok;

	log_init("test_dns", getenv("TEST_DNS_DEBUG") != NULL ?
	    LOG_LVL_DEBUG : LOG_LVL_ERR);
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dns.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	write_file("example.test.zone", zone_text);
	write_file("other.test.zone", other_zone_text);

	RUN(resolver_address_forms);
	RUN(resolver_limit);
	RUN(resolv_conf_nameservers);
	RUN(no_resolver_servfail);
	RUN(zone_records);
	RUN(zone_negative_answers);
	RUN(zone_cname_following);
	RUN(zone_invalid_names);
	RUN(zone_answers_asynchronous);
	RUN(zone_file_errors);
	RUN(fake_all_silent_timeout);
	RUN(fake_truncated_retries_tcp);
	RUN(fake_mismatch_ignored);
	RUN(fake_query_flags);
	RUN(fake_ipv6_resolver);
	RUN(closed_port_fails_fast);

	nsd_ok = nsd_start() == 0;
	if (!nsd_ok)
		fprintf(stderr, "NSD (%s) did not start; see %s/nsd.log\n",
		    NSD_PATH, tmpdir);
	RUN(nsd_records);
	RUN(nsd_negative_answers);
	RUN(nsd_cname_following);
	RUN(nsd_invalid_names);
	RUN(nsd_cache_hit);
	RUN(nsd_cache_bounded);
	RUN(nsd_shared_lookups);
	RUN(nsd_cancel_last_waiter);
	RUN(nsd_lookup_from_callback);
	RUN(nsd_silent_resolver_skipped);
	RUN(fake_servfail);
	nsd_stop();

	/* Keep NSD's log for a failed start. */
	if (nsd_ok)
		nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	CHECK_SUMMARY();
}
