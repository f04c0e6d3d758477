/*
 * Tests of the outbound SMTP client (router/smtp_client.c) and of MX
 * resolution (router/mx.c).
 *
 * The reply parser, the EHLO keyword parser and the MX host selection are
 * checked with tables.  The sessions run on a real libev loop, with the
 * DNS client in zone mode (a zone file written by the test).  The SMTP
 * server is a scripted mock written for these tests, not a real mail
 * server, because the tests need exact bytes and failures: multi-line
 * replies, rejections, silence, oversize lines.  It also records every
 * byte the client sends.  The mock runs on the same loop, one instance
 * per loopback address, all on one port, since the client connects to
 * every MX on the configured port.  After a 220 to STARTTLS the mock runs
 * the server side of TLS with OpenSSL, or fails it on purpose, using
 * certificates that the test makes at start (tls_certs.h).  Two tests send
 * a message to aiosmtpd (Debian's python3-aiosmtpd, a real SMTP server),
 * once in plaintext and once with STARTTLS, and compare what it stored
 * with what was written.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <ldns/ldns.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "check.h"
#include "dns.h"
#include "log.h"
#include "mx.h"
#include "smtp_client.h"
#include "tls.h"
#include "tls_certs.h"

#define HOSTNAME	"relay.test.example"
#define MOCK_CLOSE	"\x01close"	/* a step reply that closes the connection */

static struct ev_loop *loop;
static struct dns_ctx *dns;
static char tmpdir[64];
static int mock_port;

/*
 * TLS contexts made in main(): the client's trusts the test CA besides the
 * system store.  The servers present a certificate for mx1.test.example
 * from that CA, a self-signed one for mx1.test.example, and one for
 * another name from the CA.
 */
static SSL_CTX *client_tls;
static SSL_CTX *server_tls_ca;
static SSL_CTX *server_tls_self;
static SSL_CTX *server_tls_other;
static char self_cert_path[128], self_key_path[128];

/*
 * The scripted SMTP server.
 */

struct mock_step {
	const char	*expect;	/* prefix the command line must have */
	const char	*reply;		/* sent back; NULL sends nothing */
	int		 wait_lines;	/* answer once this many lines are in */
};

/* What the mock does after its 220 to STARTTLS. */
enum mock_tls {
	MOCK_TLS_HANDSHAKE,	/* TLS with tls_ctx */
	MOCK_TLS_CLOSE,		/* close the connection */
	MOCK_TLS_SILENT,	/* stop reading: the handshake times out */
};

struct mock {
	const char		*addr;
	const char		*greeting;	/* NULL sends nothing */
	const struct mock_step	*steps;
	size_t			 nsteps;
	SSL_CTX			*tls_ctx;	/* set after mock_start() */
	enum mock_tls		 tls_mode;
	SSL			*ssl;		/* server side, after STARTTLS */
	int			 handshaking;
	int			 tls_done;	/* handshakes completed */
	size_t			 tls_rx_start;	/* rx offset where TLS began */
	char			 sni[256];	/* server name the client sent */
	int			 lfd;
	int			 fd;
	ev_io			 accept_w;
	ev_io			 read_w;
	char			*rx;		/* every byte received */
	size_t			 rx_len;
	size_t			 rx_size;	/* allocated */
	size_t			 body_scanned;	/* body bytes searched for the dot */
	size_t			 rx_done;	/* bytes handled */
	char			*body;		/* raw DATA bytes before the dot */
	size_t			 body_len;
	int			 in_data;
	size_t			 step;
	int			 connections;
	int			 eof;		/* the client closed */
	int			 mismatch;	/* a line did not match its step */
	size_t			 max_batch;	/* most lines waiting at once */
};

/*
 * Send a reply, through TLS once it is up.  A TLS reply goes out in one
 * SSL_write(), so a reply of up to 16 KiB is one TLS record.
 */
static void
mock_send(struct mock *m, const char *reply)
{
	size_t len = strlen(reply), off = 0;
	ssize_t n;

	if (strcmp(reply, MOCK_CLOSE) == 0) {
		ev_io_stop(loop, &m->read_w);
		close(m->fd);
		m->fd = -1;
		return;
	}
	if (m->ssl != NULL) {
		while (off < len) {
			n = SSL_write(m->ssl, reply + off, (int)(len - off));
			if (n <= 0) {
				fprintf(stderr, "mock %s: SSL_write failed\n",
				    m->addr);
				ERR_clear_error();
				return;
			}
			off += (size_t)n;
		}
		return;
	}
	while (off < len) {
		n = send(m->fd, reply + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

/* Count the complete lines waiting from offset off. */
static size_t
mock_lines_waiting(const struct mock *m, size_t off)
{
	size_t n = 0;

	for (; off < m->rx_len; off++)
		if (m->rx[off] == '\n')
			n++;
	return n;
}

/* Act on the 220 to STARTTLS as tls_mode selects. */
static void
mock_start_tls(struct mock *m)
{
	switch (m->tls_mode) {
	case MOCK_TLS_CLOSE:
		mock_send(m, MOCK_CLOSE);
		break;
	case MOCK_TLS_SILENT:
		ev_io_stop(loop, &m->read_w);
		break;
	case MOCK_TLS_HANDSHAKE:
		m->ssl = SSL_new(m->tls_ctx);
		SSL_set_fd(m->ssl, m->fd);
		SSL_set_accept_state(m->ssl);
		m->handshaking = 1;
		m->tls_rx_start = m->rx_len;
		break;
	}
}

/* Handle one command line of length len at rx_done. */
static void
mock_command(struct mock *m, const char *line, size_t len)
{
	const struct mock_step *s;

	if (m->step >= m->nsteps) {
		m->mismatch++;
		return;
	}
	s = &m->steps[m->step++];
	if (len < strlen(s->expect) ||
	    strncasecmp(line, s->expect, strlen(s->expect)) != 0) {
		fprintf(stderr, "mock %s: got \"%.*s\", expected \"%s\"\n",
		    m->addr, (int)len, line, s->expect);
		m->mismatch++;
	}
	if (s->reply == NULL)
		return;
	if (strncmp(s->reply, "354", 3) == 0)
		m->in_data = 1;
	mock_send(m, s->reply);
	if (len >= 8 && strncasecmp(line, "STARTTLS", 8) == 0 &&
	    strncmp(s->reply, "220", 3) == 0)
		mock_start_tls(m);
}

/* Take the message up to "\r\n.\r\n"; returns 0 when not complete yet. */
static int
mock_take_body(struct mock *m)
{
	const char *start = m->rx + m->rx_done, *end;
	size_t avail = m->rx_len - m->rx_done, blen;

	if (avail >= 3 && memcmp(start, ".\r\n", 3) == 0) {
		blen = 0;
	} else {
		/* Search only the new bytes, or a big message takes O(n^2). */
		end = memmem(start + m->body_scanned, avail - m->body_scanned,
		    "\r\n.\r\n", 5);
		if (end == NULL) {
			m->body_scanned = avail > 4 ? avail - 4 : 0;
			return 0;
		}
		blen = (size_t)(end - start) + 2;
	}
	m->body_scanned = 0;
	free(m->body);
	m->body = malloc(blen + 1);
	memcpy(m->body, start, blen);
	m->body[blen] = '\0';
	m->body_len = blen;
	m->rx_done += blen;
	m->in_data = 0;
	return 1;
}

static void
mock_process(struct mock *m)
{
	const char *line, *nl;
	size_t waiting;

	while (m->fd != -1 && m->rx_done < m->rx_len) {
		if (m->in_data && !mock_take_body(m))
			return;
		line = m->rx + m->rx_done;
		nl = memchr(line, '\n', m->rx_len - m->rx_done);
		if (nl == NULL)
			return;
		waiting = mock_lines_waiting(m, m->rx_done);
		if (waiting > m->max_batch)
			m->max_batch = waiting;
		if (m->step < m->nsteps && m->steps[m->step].wait_lines > 0 &&
		    waiting < (size_t)m->steps[m->step].wait_lines)
			return;
		m->rx_done = (size_t)(nl - m->rx) + 1;
		mock_command(m, line, (size_t)(nl - line) -
		    (nl > line && nl[-1] == '\r'));
	}
}

static void
mock_append(struct mock *m, const char *data, size_t n)
{
	if (m->rx_len + n + 1 > m->rx_size) {
		m->rx_size = (m->rx_len + n + 1) * 2;
		m->rx = realloc(m->rx, m->rx_size);
	}
	memcpy(m->rx + m->rx_len, data, n);
	m->rx_len += n;
	m->rx[m->rx_len] = '\0';
}

/* The client closed, or the connection failed. */
static void
mock_on_eof(struct mock *m)
{
	m->eof = 1;
	ev_io_stop(loop, &m->read_w);
	close(m->fd);
	m->fd = -1;
}

/* Advance the server handshake.  Returns 1 once it is done. */
static int
mock_tls_handshake(struct mock *m)
{
	const char *name;
	int r = SSL_do_handshake(m->ssl), err;

	if (r != 1) {
		err = SSL_get_error(m->ssl, r);
		ERR_clear_error();
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
			mock_on_eof(m);
		return 0;
	}
	m->handshaking = 0;
	m->tls_done++;
	name = SSL_get_servername(m->ssl, TLSEXT_NAMETYPE_host_name);
	snprintf(m->sni, sizeof(m->sni), "%s", name != NULL ? name : "");
	return 1;
}

/* Read and handle the decrypted input, then notice a closed connection. */
static void
mock_tls_read(struct mock *m)
{
	char chunk[16384];
	int n, err;

	if (m->handshaking && !mock_tls_handshake(m))
		return;
	while ((n = SSL_read(m->ssl, chunk, sizeof(chunk))) > 0)
		mock_append(m, chunk, (size_t)n);
	err = SSL_get_error(m->ssl, n);
	ERR_clear_error();
	mock_process(m);
	if (m->fd != -1 && err != SSL_ERROR_WANT_READ &&
	    err != SSL_ERROR_WANT_WRITE)
		mock_on_eof(m);
}

static void
mock_on_read(struct ev_loop *l, ev_io *w, int revents)
{
	struct mock *m = w->data;
	char chunk[65536];
	ssize_t n;

	if (m->ssl != NULL) {
		mock_tls_read(m);
		return;
	}
	n = recv(m->fd, chunk, sizeof(chunk), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mock_on_eof(m);
		return;
	}
	mock_append(m, chunk, (size_t)n);
	mock_process(m);
}

static void
mock_on_accept(struct ev_loop *l, ev_io *w, int revents)
{
	struct mock *m = w->data;
	int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd == -1)
		return;
	if (m->fd != -1) {	/* one session at a time */
		close(fd);
		return;
	}
	m->fd = fd;
	m->connections++;

	ev_io_init(&m->read_w, mock_on_read, fd, EV_READ);
	m->read_w.data = m;
	ev_io_start(l, &m->read_w);
	if (m->greeting != NULL)
		mock_send(m, m->greeting);
}

/*
 * Listen on addr at mock_port (or pick the port when it is still 0).
 * Returns 0, or -1 when the address cannot be bound.
 */
static int
mock_start(struct mock *m, const char *addr, const char *greeting,
    const struct mock_step *steps, size_t nsteps)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1;

	memset(m, 0, sizeof(*m));
	m->addr = addr;
	m->greeting = greeting;
	m->steps = steps;
	m->nsteps = nsteps;
	m->fd = -1;
	m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)mock_port);
	inet_pton(AF_INET, addr, &sin.sin_addr);
	if (bind(m->lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(m->lfd, 8) == -1) {
		perror("mock bind");
		close(m->lfd);
		return -1;
	}
	if (mock_port == 0) {
		getsockname(m->lfd, (struct sockaddr *)&sin, &len);
		mock_port = ntohs(sin.sin_port);
	}
	ev_io_init(&m->accept_w, mock_on_accept, m->lfd, EV_READ);
	m->accept_w.data = m;
	ev_io_start(loop, &m->accept_w);
	return 0;
}

static void
mock_stop(struct mock *m)
{
	ev_io_stop(loop, &m->accept_w);
	ev_io_stop(loop, &m->read_w);
	close(m->lfd);
	if (m->fd != -1)
		close(m->fd);
	SSL_free(m->ssl);
	free(m->rx);
	free(m->body);
}

/*
 * The owner of a client: records every event, and can quit or abort from
 * inside the callback.
 */

#define EVENTS_MAX 32

struct owner {
	struct smtp_client	*client;
	size_t			 nevents;
	enum smtp_client_event	 events[EVENTS_MAX];
	struct smtp_reply	 replies[EVENTS_MAX];
	int			 quit_on_failed;	/* quit() inside FAILED */
	int			 abort_on_rcpt;		/* abort() inside RCPT */
	int			 in_new;		/* set while inside new() */
	int			 called_in_new;
	int			 drains;	/* DRAIN events, not listed */
};

static void
owner_cb(void *arg, enum smtp_client_event ev, const struct smtp_reply *r)
{
	struct owner *o = arg;

	if (o->in_new)
		o->called_in_new = 1;
	if (ev == SMTP_CLIENT_DRAIN) {
		o->drains++;
		return;
	}
	if (o->nevents < EVENTS_MAX) {
		o->events[o->nevents] = ev;
		if (r != NULL)
			o->replies[o->nevents] = *r;
		o->nevents++;
	}
	if (ev == SMTP_CLIENT_FAILED && o->quit_on_failed) {
		smtp_client_quit(o->client);
		o->client = NULL;
	}
	if (ev == SMTP_CLIENT_RCPT && o->abort_on_rcpt) {
		smtp_client_abort(o->client);
		o->client = NULL;
	}
}

static void
loop_guard(struct ev_loop *l, ev_timer *w, int revents)
{
	*(int *)w->data = 1;
}

/* Run the loop until cond(arg) is true or seconds pass. */
static int
run_until(int (*cond)(void *), void *arg, double seconds)
{
	ev_timer guard;
	int expired = 0;

	ev_timer_init(&guard, loop_guard, seconds, 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	while (!cond(arg) && !expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	return cond(arg);
}

struct wait_events {
	struct owner	*owner;
	size_t		 count;
};

static int
have_events(void *arg)
{
	struct wait_events *w = arg;

	return w->owner->nevents >= w->count;
}

/* Run the loop until the owner has count events. */
static int
wait_events(struct owner *o, size_t count)
{
	struct wait_events w = { o, count };

	return run_until(have_events, &w, 10.0);
}

static int
mock_eof(void *arg)
{
	return ((struct mock *)arg)->eof;
}

/* Run the loop for a while, to catch events that should not come. */
static int
never(void *arg)
{
	return 0;
}

static void
settle(double seconds)
{
	run_until(never, NULL, seconds);
}

static struct smtp_client_config
test_config(void)
{
	struct smtp_client_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.hostname = HOSTNAME;
	cfg.port = mock_port;
	cfg.connect_timeout = 3.0;
	cfg.command_timeout = 3.0;
	cfg.data_end_timeout = 3.0;
	return cfg;
}

static struct smtp_client *
start_client(struct owner *o, const struct smtp_client_config *cfg,
    const char *domain, size_t size, int body_8bit)
{
	o->in_new = 1;
	o->client = smtp_client_new(loop, dns, cfg, domain,
	    "SRS0=abcd=XY=sender.example=bob@relay.test.example", size,
	    body_8bit, owner_cb, o);
	o->in_new = 0;
	return o->client;
}

/*
 * The zone that the DNS client answers from.
 */

static const char zone_text[] =
    "$ORIGIN test.example.\n"
    "$TTL 300\n"
    "@            SOA ns hostmaster 1 3600 600 86400 300\n"
    "@            NS  ns\n"
    "ns           A   127.0.0.1\n"
    "mx1          A   127.0.0.1\n"
    "mx2          A   127.0.0.2\n"
    "mx3          A   127.0.0.3\n"
    "mx4          A   127.0.0.4\n"
    "dead         A   127.0.0.5\n"
    "dual         AAAA ::1\n"
    "dual         AAAA ::2\n"
    "dual         A   127.0.0.1\n"
    "dual         A   127.0.0.2\n"
    "dual         A   127.0.0.3\n"
    "v4only       A   127.0.0.4\n"
    "one          MX  10 mx1\n"
    "fallback     MX  10 mx2\n"
    "fallback     MX  20 mx3\n"
    "refused      MX  10 dead\n"
    "refused      MX  20 mx3\n"
    "allbad       MX  10 mx2\n"
    "allbad       MX  20 mx3\n"
    "null         MX  0 .\n"
    "implicit     A   127.0.0.4\n"
    "noaddr       MX  10 nowhere\n"
    "ordered      MX  20 v4only\n"
    "ordered      MX  10 dual\n"
    "ordered      MX  30 dual\n";

static int
setup_dns(void)
{
	struct dns_config dcfg;
	char path[128], err[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/test.example.zone", tmpdir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(zone_text, f);
	fclose(f);
	memset(&dcfg, 0, sizeof(dcfg));
	dns = dns_new(loop, &dcfg);
	if (dns_add_zone_file(dns, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "zone file: %s\n", err);
		return -1;
	}
	return 0;
}

/*
 * Reply parser.
 */

struct reply_case {
	const char		*lines[4];
	enum smtp_reply_status	 want;	/* status after the last line */
	int			 code;
	const char		*enhanced;
	const char		*text;
};

static const struct reply_case reply_cases[] = {
	{ { "250 ok" }, SMTP_REPLY_DONE, 250, "", "ok" },
	{ { "250" }, SMTP_REPLY_DONE, 250, "", "" },
	{ { "550 5.1.1 <a@b>: no such user" }, SMTP_REPLY_DONE, 550, "5.1.1",
	    "<a@b>: no such user" },
	{ { "250-first", "250-second", "250 third" }, SMTP_REPLY_DONE, 250, "",
	    "first second third" },
	{ { "451-4.7.1 please", "451 4.7.1 try later" }, SMTP_REPLY_DONE, 451,
	    "4.7.1", "please try later" },
	{ { "250-mx.example" }, SMTP_REPLY_MORE, 250, "", "mx.example" },
	{ { "556 5.1.10 null MX" }, SMTP_REPLY_DONE, 556, "5.1.10", "null MX" },
	/* A class that does not match the code is left in the text. */
	{ { "250 5.1.1 odd" }, SMTP_REPLY_DONE, 250, "", "5.1.1 odd" },
	{ { "250 2.1.1234 four digits" }, SMTP_REPLY_DONE, 250, "",
	    "2.1.1234 four digits" },
	{ { "250 2.0.0" }, SMTP_REPLY_DONE, 250, "2.0.0", "" },
	{ { "250 tab\there\x01" }, SMTP_REPLY_DONE, 250, "", "tab?here?" },
	{ { "250-a", "251 b" }, SMTP_REPLY_MALFORMED, 0, NULL, NULL },
	{ { "199 low" }, SMTP_REPLY_MALFORMED, 0, NULL, NULL },
	{ { "600 high" }, SMTP_REPLY_MALFORMED, 0, NULL, NULL },
	{ { "25 short" }, SMTP_REPLY_MALFORMED, 0, NULL, NULL },
	{ { "2x0 letters" }, SMTP_REPLY_MALFORMED, 0, NULL, NULL },
	{ { "250_under" }, SMTP_REPLY_MALFORMED, 0, NULL, NULL },
	{ { "" }, SMTP_REPLY_MALFORMED, 0, NULL, NULL },
};

static void
test_reply_parser_table(void)
{
	struct smtp_reply_parser p;
	enum smtp_reply_status st;
	size_t i, k;

	for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *rc = &reply_cases[i];

		smtp_reply_begin(&p);
		st = SMTP_REPLY_MALFORMED;
		for (k = 0; k < 4 && rc->lines[k] != NULL; k++)
			st = smtp_reply_line(&p, rc->lines[k],
			    strlen(rc->lines[k]));
		if (st != rc->want)
			fprintf(stderr, "case %zu: \"%s\"\n", i, rc->lines[0]);
		CHECK_INT(st, rc->want);
		if (rc->text == NULL)
			continue;
		CHECK_INT(p.reply.code, rc->code);
		CHECK_STR(p.reply.enhanced, rc->enhanced);
		CHECK_STR(p.reply.text, rc->text);
		CHECK_INT(p.reply.local, 0);
	}
}

static void
test_reply_parser_limits(void)
{
	struct smtp_reply_parser p;
	char line[1200];
	size_t i;

	/* 998 bytes plus CRLF is the longest line. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "250 ", 4);
	smtp_reply_begin(&p);
	CHECK_INT(smtp_reply_line(&p, line, 998), SMTP_REPLY_DONE);
	CHECK_INT(strlen(p.reply.text), SMTP_REPLY_TEXT_MAX - 1);
	smtp_reply_begin(&p);
	CHECK_INT(smtp_reply_line(&p, line, 999), SMTP_REPLY_TOO_LARGE);

	/* 100 lines pass, the 101st does not. */
	smtp_reply_begin(&p);
	for (i = 0; i < 99; i++)
		CHECK_INT(smtp_reply_line(&p, "250-x", 5), SMTP_REPLY_MORE);
	CHECK_INT(smtp_reply_line(&p, "250 x", 5), SMTP_REPLY_DONE);
	smtp_reply_begin(&p);
	for (i = 0; i < 100; i++)
		CHECK_INT(smtp_reply_line(&p, "250-x", 5), SMTP_REPLY_MORE);
	CHECK_INT(smtp_reply_line(&p, "250 x", 5), SMTP_REPLY_TOO_LARGE);
}

static void
test_ehlo_keywords(void)
{
	struct smtp_ehlo e;
	static const char *const lines[] = {
		"PIPELINING", "size 35882577", "8BITMIME", "STARTTLS",
		"SMTPUTF8", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN",
		"PIPELININGX",
	};
	size_t i;

	memset(&e, 0, sizeof(e));
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		smtp_ehlo_keyword(&e, lines[i], strlen(lines[i]));
	CHECK_INT(e.pipelining, 1);
	CHECK_INT(e.size, 1);
	CHECK(e.size_max == 35882577ULL);
	CHECK_INT(e.eightbitmime, 1);
	CHECK_INT(e.starttls, 1);
	CHECK_INT(e.smtputf8, 1);

	memset(&e, 0, sizeof(e));
	smtp_ehlo_keyword(&e, "SIZE", 4);
	CHECK_INT(e.size, 1);
	CHECK(e.size_max == 0);
	smtp_ehlo_keyword(&e, "SIZE 12x", 8);
	CHECK(e.size_max == 0);
	smtp_ehlo_keyword(&e, "SIZE 99999999999999999999999", 28);
	CHECK(e.size_max == 0);
	CHECK_INT(e.pipelining, 0);
}

/*
 * MX host selection.
 */

static ldns_rr_list *
mx_rrs(const char *const *texts, size_t n)
{
	ldns_rr_list *list = ldns_rr_list_new();
	ldns_rr *rr;
	size_t i;

	for (i = 0; i < n; i++) {
		if (ldns_rr_new_frm_str(&rr, texts[i], 300, NULL, NULL) !=
		    LDNS_STATUS_OK) {
			fprintf(stderr, "bad test record %s\n", texts[i]);
			continue;
		}
		ldns_rr_list_push_rr(list, rr);
	}
	return list;
}

static void
test_mx_select_sorted(void)
{
	static const char *const texts[] = {
		"d.example. 300 IN MX 30 c.example.",
		"d.example. 300 IN MX 10 a.example.",
		"d.example. 300 IN MX 20 b.example.",
		"d.example. 300 IN MX 40 a.example.",	/* duplicate */
		"d.example. 300 IN MX 5 .",		/* not a host */
	};
	struct mx_host hosts[MX_HOSTS_MAX];
	ldns_rr_list *list = mx_rrs(texts, 5);
	size_t n = 0;

	CHECK_INT(mx_select_hosts(list, hosts, MX_HOSTS_MAX, &n), MX_OK);
	CHECK_INT(n, 3);
	CHECK_STR(hosts[0].name, "a.example");
	CHECK_INT(hosts[0].preference, 10);
	CHECK_STR(hosts[1].name, "b.example");
	CHECK_STR(hosts[2].name, "c.example");
	ldns_rr_list_deep_free(list);
}

static void
test_mx_select_null_and_limit(void)
{
	static const char *const null_mx[] = { "d.example. 300 IN MX 0 ." };
	static const char *const root_only[] = { "d.example. 300 IN MX 10 ." };
	struct mx_host hosts[MX_HOSTS_MAX];
	char text[64];
	ldns_rr_list *list;
	ldns_rr *rr;
	size_t n = 0, i;

	list = mx_rrs(null_mx, 1);
	CHECK_INT(mx_select_hosts(list, hosts, MX_HOSTS_MAX, &n), MX_NULL);
	CHECK_INT(n, 0);
	ldns_rr_list_deep_free(list);

	list = mx_rrs(root_only, 1);
	CHECK_INT(mx_select_hosts(list, hosts, MX_HOSTS_MAX, &n), MX_NOADDR);
	ldns_rr_list_deep_free(list);

	/* 15 hosts, listed worst first: the best 10 remain, in order. */
	list = ldns_rr_list_new();
	for (i = 15; i > 0; i--) {
		snprintf(text, sizeof(text), "d.example. 300 IN MX %zu h%zu.example.",
		    i, i);
		ldns_rr_new_frm_str(&rr, text, 300, NULL, NULL);
		ldns_rr_list_push_rr(list, rr);
	}
	CHECK_INT(mx_select_hosts(list, hosts, MX_HOSTS_MAX, &n), MX_OK);
	CHECK_INT(n, MX_HOSTS_MAX);
	CHECK_STR(hosts[0].name, "h1.example");
	CHECK_STR(hosts[9].name, "h10.example");
	ldns_rr_list_deep_free(list);
}

static void
test_mx_select_ties_shuffled(void)
{
	static const char *const texts[] = {
		"d.example. 300 IN MX 10 a.example.",
		"d.example. 300 IN MX 10 b.example.",
		"d.example. 300 IN MX 5 first.example.",
	};
	struct mx_host hosts[MX_HOSTS_MAX];
	ldns_rr_list *list = mx_rrs(texts, 3);
	size_t n, i, a_second = 0;

	for (i = 0; i < 200; i++) {
		mx_select_hosts(list, hosts, MX_HOSTS_MAX, &n);
		CHECK_STR(hosts[0].name, "first.example");
		if (strcmp(hosts[1].name, "a.example") == 0)
			a_second++;
	}
	/* Both orders appear; each has a chance of 2^-200 to be missing. */
	CHECK(a_second > 0);
	CHECK(a_second < 200);
	ldns_rr_list_deep_free(list);
}

/*
 * Host names come out as ldns_rdf2str() writes them, without the final
 * dot: escapes included, and names of up to 253 characters.
 */
static void
test_mx_select_name_text(void)
{
	static const char *const texts[] = {
		"d.example. 300 IN MX 10 Mixed-Case_1.example.",
		"d.example. 300 IN MX 20 a\\.dot.example.",
		"d.example. 300 IN MX 30 semi\\;paren\\(\\)back\\\\.example.",
		"d.example. 300 IN MX 40 sp\\032ace\\200\\009.example.",
	};
	struct mx_host hosts[MX_HOSTS_MAX];
	ldns_rr_list *list = mx_rrs(texts, 4);
	char want[MX_NAME_MAX + 2], label[64], text[300];
	size_t n = 0, i, len;
	char *s;
	ldns_rr *rr;

	CHECK_INT(mx_select_hosts(list, hosts, MX_HOSTS_MAX, &n), MX_OK);
	CHECK_INT(n, 4);
	for (i = 0; i < n && i < 4; i++) {
		s = ldns_rdf2str(ldns_rr_mx_exchange(ldns_rr_list_rr(list, i)));
		len = strlen(s);
		snprintf(want, sizeof(want), "%.*s", (int)(len - 1), s);
		free(s);
		CHECK_STR(hosts[i].name, want);
	}
	CHECK_STR(hosts[1].name, "a\\.dot.example");
	CHECK_STR(hosts[3].name, "sp\\032ace\\200\\009.example");
	ldns_rr_list_deep_free(list);

	/* 4 labels of 62 and one of 1: 253 characters without the dot. */
	memset(label, 'x', 62);
	label[62] = '\0';
	snprintf(text, sizeof(text), "d.example. 300 IN MX 1 %s.%s.%s.%s.y.",
	    label, label, label, label);
	list = ldns_rr_list_new();
	CHECK(ldns_rr_new_frm_str(&rr, text, 300, NULL, NULL) ==
	    LDNS_STATUS_OK);
	ldns_rr_list_push_rr(list, rr);
	CHECK_INT(mx_select_hosts(list, hosts, MX_HOSTS_MAX, &n), MX_OK);
	CHECK_INT(n, 1);
	CHECK_INT(strlen(hosts[0].name), 253);
	ldns_rr_list_deep_free(list);
}

/*
 * MX resolution against the zone.
 */

struct mx_capture {
	int			 done;
	enum mx_status		 status;
	int			 implicit;
	size_t			 ntargets;
	struct mx_target	 targets[MX_TARGETS_MAX];
};

static void
mx_capture_cb(void *arg, const struct mx_result *res)
{
	struct mx_capture *cap = arg;

	cap->done = 1;
	cap->status = res->status;
	cap->implicit = res->implicit;
	cap->ntargets = res->ntargets;
	if (res->ntargets > 0)
		memcpy(cap->targets, res->targets,
		    res->ntargets * sizeof(*res->targets));
}

static int
mx_captured(void *arg)
{
	return ((struct mx_capture *)arg)->done;
}

static void
resolve(const char *domain, struct mx_capture *cap)
{
	memset(cap, 0, sizeof(*cap));
	if (mx_resolve(dns, domain, mx_capture_cb, cap) == NULL)
		return;
	CHECK_INT(cap->done, 0);	/* never from inside mx_resolve() */
	CHECK(run_until(mx_captured, cap, 5.0));
}

static const char *
target_text(const struct mx_target *t, char *out, size_t outsz)
{
	return inet_ntop(t->family, t->addr, out, (socklen_t)outsz);
}

static void
test_mx_resolve_order(void)
{
	struct mx_capture cap;
	static const char *const want[] = {
		"::1", "127.0.0.1", "::2", "127.0.0.2", "127.0.0.3", "127.0.0.4",
	};
	char text[INET6_ADDRSTRLEN];
	size_t i;

	/*
	 * dual (preference 10) first, IPv6 and IPv4 alternating; dual again
	 * at 30 adds nothing; v4only (20) in between.
	 */
	resolve("ordered.test.example", &cap);
	CHECK_INT(cap.status, MX_OK);
	CHECK_INT(cap.ntargets, 6);
	for (i = 0; i < 6 && i < cap.ntargets; i++)
		CHECK_STR(target_text(&cap.targets[i], text, sizeof(text)),
		    want[i]);
	CHECK_STR(cap.targets[0].host, "dual.test.example");
	CHECK_STR(cap.targets[5].host, "v4only.test.example");
}

static void
test_mx_resolve_statuses(void)
{
	struct mx_capture cap;
	char text[INET6_ADDRSTRLEN];

	resolve("implicit.test.example", &cap);
	CHECK_INT(cap.status, MX_OK);
	CHECK_INT(cap.implicit, 1);
	CHECK_INT(cap.ntargets, 1);
	CHECK_STR(target_text(&cap.targets[0], text, sizeof(text)), "127.0.0.4");

	resolve("null.test.example", &cap);
	CHECK_INT(cap.status, MX_NULL);
	resolve("nope.test.example", &cap);
	CHECK_INT(cap.status, MX_NXDOMAIN);
	resolve("noaddr.test.example", &cap);
	CHECK_INT(cap.status, MX_NOADDR);
	/* NODATA for MX and for the addresses: the implicit MX has none. */
	resolve("ns.test.example", &cap);
	CHECK_INT(cap.status, MX_OK);
	resolve("test.example", &cap);
	CHECK_INT(cap.status, MX_NOADDR);

	CHECK(mx_resolve(dns, "bad domain.example", mx_capture_cb, &cap) == NULL);
	CHECK(mx_resolve(dns, "", mx_capture_cb, &cap) == NULL);
	CHECK(mx_resolve(dns, "a\r\nb.example", mx_capture_cb, &cap) == NULL);
}

/*
 * Sessions.
 */

static const char ehlo_full[] =
    "250-mx1.test.example greets relay.test.example\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10000000\r\n"
    "250-8BITMIME\r\n"
    "250-STARTTLS\r\n"
    "250 SMTPUTF8\r\n";

static void
test_session_delivers_message(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO relay.test.example", ehlo_full, 0 },
		{ "MAIL FROM:", "250 2.1.0 sender ok\r\n", 0 },
		{ "RCPT TO:<alice@mailbox.example>", "250 2.1.5 ok\r\n", 0 },
		{ "DATA", "354 go ahead\r\n", 0 },
		{ ".", "250 2.0.0 queued as ABC123\r\n", 0 },
		{ "QUIT", "221 2.0.0 bye\r\n", 0 },
	};
	static const char body[] =
	    "Subject: hi\r\n\r\n..leading dot, stuffed\r\nlast line\r\n";
	static const char want_rx[] =
	    "EHLO relay.test.example\r\n"
	    "MAIL FROM:<SRS0=abcd=XY=sender.example=bob@relay.test.example>"
	    " SIZE=4242 BODY=8BITMIME\r\n"
	    "RCPT TO:<alice@mailbox.example>\r\n"
	    "DATA\r\n"
	    "Subject: hi\r\n\r\n..leading dot, stuffed\r\nlast line\r\n"
	    ".\r\n"
	    "QUIT\r\n";
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1",
	    "220-mx1.test.example ESMTP\r\n220 ready\r\n", steps, 6) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 4242, 1);
	CHECK_INT(o.nevents, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.called_in_new, 0);
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	CHECK_INT(o.replies[0].code, 250);
	CHECK_STR(o.replies[0].enhanced, "2.1.0");
	CHECK_STR(smtp_client_peer_name(o.client), "mx1.test.example");
	CHECK_INT(strlen(smtp_client_id(o.client)), 10);

	smtp_client_rcpt(o.client, "alice@mailbox.example");
	CHECK(wait_events(&o, 2));
	CHECK_INT(o.events[1], SMTP_CLIENT_RCPT);
	CHECK_STR(o.replies[1].enhanced, "2.1.5");
	smtp_client_data(o.client);
	CHECK(wait_events(&o, 3));
	CHECK_INT(o.events[2], SMTP_CLIENT_DATA);
	CHECK_INT(o.replies[2].code, 354);
	CHECK(smtp_client_write(o.client, body, 20) > 0);
	CHECK(smtp_client_write(o.client, body + 20, sizeof(body) - 21) > 0);
	smtp_client_end(o.client);
	CHECK(wait_events(&o, 4));
	CHECK_INT(o.events[3], SMTP_CLIENT_END);
	CHECK_INT(o.replies[3].code, 250);
	CHECK_STR(o.replies[3].text, "queued as ABC123");
	smtp_client_quit(o.client);
	CHECK(run_until(mock_eof, &m, 5.0));
	CHECK_STR(m.rx, want_rx);
	CHECK_STR(m.body, body);
	CHECK_INT(m.mismatch, 0);
	CHECK_INT(o.nevents, 4);
	mock_stop(&m);
}

static void
test_session_pipelined_rcpts(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 2.1.0 ok\r\n", 0 },
		/* No reply before all three RCPTs are in: proves pipelining. */
		{ "RCPT TO:<a@", "250 2.1.5 ok a\r\n", 3 },
		{ "RCPT TO:<b@", "550-5.1.1 <b@mailbox.example>: user unknown\r\n"
		    "550 5.1.1 see https://mailbox.example/550\r\n", 0 },
		{ "RCPT TO:<c@", "452 4.2.2 mailbox full\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1.test.example\r\n", steps, 6) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	smtp_client_rcpt(o.client, "a@mailbox.example");
	smtp_client_rcpt(o.client, "b@mailbox.example");
	smtp_client_rcpt(o.client, "c@mailbox.example");
	CHECK(wait_events(&o, 4));
	CHECK_INT(o.events[1], SMTP_CLIENT_RCPT);
	CHECK_INT(o.replies[1].code, 250);
	CHECK_STR(o.replies[1].text, "ok a");
	CHECK_INT(o.events[2], SMTP_CLIENT_RCPT);
	CHECK_INT(o.replies[2].code, 550);
	CHECK_STR(o.replies[2].enhanced, "5.1.1");
	CHECK_STR(o.replies[2].text,
	    "<b@mailbox.example>: user unknown see https://mailbox.example/550");
	CHECK_INT(o.replies[2].local, 0);
	CHECK_INT(o.events[3], SMTP_CLIENT_RCPT);
	CHECK_INT(o.replies[3].code, 452);
	CHECK_INT(m.max_batch >= 3, 1);
	/* MAIL without SIZE= and BODY=: size 0, 7-bit. */
	CHECK(strstr(m.rx, "MAIL FROM:<SRS0=abcd=XY=sender.example="
	    "bob@relay.test.example>\r\n") != NULL);
	smtp_client_quit(o.client);
	CHECK(run_until(mock_eof, &m, 5.0));
	CHECK(strstr(m.rx, "QUIT\r\n") != NULL);
	CHECK_INT(m.mismatch, 0);
	mock_stop(&m);
}

/*
 * A RCPT queued before READY: with PIPELINING it goes out in one group
 * with MAIL (RFC 2920 section 3.1), without it only after MAIL's reply.
 * Either way the owner hears READY first, then the RCPT reply.
 */
static void
test_session_rcpt_before_ready(void)
{
	static const struct mock_step piped[] = {
		{ "EHLO", ehlo_full, 0 },
		/* No reply before the RCPT is in: proves MAIL and RCPT went together. */
		{ "MAIL FROM:", "250 2.1.0 ok\r\n", 2 },
		{ "RCPT TO:<a@", "250 2.1.5 ok a\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	static const struct mock_step serial[] = {
		{ "EHLO", "250-mx1.test.example\r\n250 8BITMIME\r\n", 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<a@", "250 ok a\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o;
	struct mock m;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		memset(&o, 0, sizeof(o));
		if (mock_start(&m, "127.0.0.1", "220 mx1.test.example\r\n",
		    pass == 0 ? piped : serial, 4) == -1) {
			CHECK(0);
			return;
		}
		start_client(&o, &cfg, "one.test.example", 0, 0);
		smtp_client_rcpt(o.client, "a@mailbox.example");
		CHECK(wait_events(&o, 2));
		CHECK_INT(o.events[0], SMTP_CLIENT_READY);
		CHECK_INT(o.events[1], SMTP_CLIENT_RCPT);
		CHECK_INT(o.replies[1].code, 250);
		CHECK_INT(m.max_batch, pass == 0 ? 2 : 1);
		smtp_client_quit(o.client);
		CHECK(run_until(mock_eof, &m, 5.0));
		CHECK_INT(m.mismatch, 0);
		mock_stop(&m);
	}
}

/* One delivered message on o: RCPT, DATA, a short body and the dot. */
static void
deliver_one(struct owner *o, size_t first_event)
{
	static const char body[] = "Subject: hi\r\n\r\nbody\r\n";

	smtp_client_rcpt(o->client, "alice@mailbox.example");
	CHECK(wait_events(o, first_event + 2));
	CHECK_INT(o->events[first_event], SMTP_CLIENT_READY);
	CHECK_INT(o->events[first_event + 1], SMTP_CLIENT_RCPT);
	smtp_client_data(o->client);
	CHECK(wait_events(o, first_event + 3));
	CHECK_INT(o->replies[first_event + 2].code, 354);
	smtp_client_write(o->client, body, sizeof(body) - 1);
	smtp_client_end(o->client);
	CHECK(wait_events(o, first_event + 4));
	CHECK_INT(o->events[first_event + 3], SMTP_CLIENT_END);
	CHECK_INT(o->replies[first_event + 3].code, 250);
}

/*
 * With reuse_idle, a second transaction to the same domain goes over the
 * connection of the first: one connection, one EHLO, two MAILs, and QUIT
 * once the connection has been idle for reuse_idle seconds.
 */
static void
test_session_reuse_connection(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<alice@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ ".", "250 queued 1\r\n", 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<alice@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ ".", "250 queued 2\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o1 = { 0 }, o2 = { 0 };
	struct mock m;
	const char *p;
	int mails = 0;

	cfg.reuse_idle = 0.3;
	if (mock_start(&m, "127.0.0.1", "220 mx1.test.example\r\n", steps,
	    10) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o1, &cfg, "one.test.example", 0, 0);
	deliver_one(&o1, 0);
	smtp_client_quit(o1.client);
	start_client(&o2, &cfg, "one.test.example", 0, 0);
	CHECK_INT(o2.called_in_new, 0);
	deliver_one(&o2, 0);
	CHECK_STR(o2.replies[3].text, "queued 2");
	smtp_client_quit(o2.client);
	CHECK(run_until(mock_eof, &m, 5.0));
	CHECK_INT(m.connections, 1);
	CHECK_INT(m.mismatch, 0);
	for (p = m.rx; (p = strstr(p, "MAIL FROM:")) != NULL; p++)
		mails++;
	CHECK_INT(mails, 2);
	CHECK(strstr(m.rx, "QUIT\r\n") != NULL);
	mock_stop(&m);
}

/*
 * A parked connection that the server closes is not reused.  When the
 * server closes it just as it is reused, before the reply to MAIL, the
 * client starts over on a new connection and the owner sees READY.
 */
static void
test_session_reuse_after_close(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<alice@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ ".", "250 queued 1\r\n", 0 },
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<alice@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ ".", "250 queued 2\r\n", 0 },
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<alice@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ ".", "250 queued 3\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o1 = { 0 }, o2 = { 0 }, o3 = { 0 };
	struct mock m;

	cfg.reuse_idle = 5.0;
	if (mock_start(&m, "127.0.0.1", "220 mx1.test.example\r\n", steps,
	    16) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o1, &cfg, "one.test.example", 0, 0);
	deliver_one(&o1, 0);
	smtp_client_quit(o1.client);
	/* The server ends the idle connection; the loop notices. */
	mock_on_eof(&m);
	run_until(never, NULL, 0.2);
	start_client(&o2, &cfg, "one.test.example", 0, 0);
	deliver_one(&o2, 0);
	CHECK_INT(m.connections, 2);
	smtp_client_quit(o2.client);
	/* Closed again, and reused before the loop can notice. */
	mock_on_eof(&m);
	start_client(&o3, &cfg, "one.test.example", 0, 0);
	deliver_one(&o3, 0);
	CHECK_STR(o3.replies[3].text, "queued 3");
	CHECK_INT(m.connections, 3);
	CHECK_INT(m.mismatch, 0);
	smtp_client_abort(o3.client);
	mock_stop(&m);
}

static void reuse_mail_refused(const char *);

/*
 * A 4xx or 5xx to MAIL on a reused connection, as from a server that
 * limits messages per connection: the client starts over on a new one.
 */
static void
test_session_reuse_mail_refused(void)
{
	static const char *const refusals[] = {
		"421 4.7.0 one message per connection\r\n",
		"550 5.7.1 one message per connection\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		reuse_mail_refused(refusals[i]);
}

static void
reuse_mail_refused(const char *refusal)
{
	const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<alice@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ ".", "250 queued 1\r\n", 0 },
		{ "MAIL FROM:", refusal, 0 },
		/* Pipelined behind MAIL; the server then closes, as after 421. */
		{ "RCPT TO:<alice@", MOCK_CLOSE, 0 },
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<alice@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ ".", "250 queued 2\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o1 = { 0 }, o2 = { 0 };
	struct mock m;

	cfg.reuse_idle = 5.0;
	if (mock_start(&m, "127.0.0.1", "220 mx1.test.example\r\n", steps,
	    12) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o1, &cfg, "one.test.example", 0, 0);
	deliver_one(&o1, 0);
	smtp_client_quit(o1.client);
	start_client(&o2, &cfg, "one.test.example", 0, 0);
	deliver_one(&o2, 0);
	CHECK_STR(o2.replies[3].text, "queued 2");
	CHECK_INT(m.connections, 2);
	CHECK_INT(m.mismatch, 0);
	smtp_client_abort(o2.client);
	mock_stop(&m);
}

static void
test_session_no_pipelining(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", "250-mx1.test.example\r\n250 8BITMIME\r\n", 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<a@", "250 ok\r\n", 0 },
		{ "RCPT TO:<b@", "250 ok\r\n", 0 },
		{ "DATA", "554 5.5.1 no valid recipients\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1.test.example\r\n", steps, 6) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 100, 1);
	CHECK(wait_events(&o, 1));
	smtp_client_rcpt(o.client, "a@mailbox.example");
	smtp_client_rcpt(o.client, "b@mailbox.example");
	smtp_client_data(o.client);
	CHECK(wait_events(&o, 4));
	CHECK_INT(o.events[1], SMTP_CLIENT_RCPT);
	CHECK_INT(o.events[2], SMTP_CLIENT_RCPT);
	CHECK_INT(o.events[3], SMTP_CLIENT_DATA);
	CHECK_INT(o.replies[3].code, 554);
	CHECK_INT(m.max_batch, 1);
	/* No SIZE offered, so no SIZE=; 8BITMIME offered. */
	CHECK(strstr(m.rx, "bob@relay.test.example> BODY=8BITMIME\r\n") != NULL);
	smtp_client_quit(o.client);
	CHECK(run_until(mock_eof, &m, 5.0));
	CHECK_INT(m.mismatch, 0);
	mock_stop(&m);
}

static void
test_session_4xx_greeting_then_next(void)
{
	static const struct mock_step good_steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock bad, good;

	if (mock_start(&bad, "127.0.0.2", "421 4.3.2 busy, try later\r\n",
	    NULL, 0) == -1 || mock_start(&good, "127.0.0.3",
	    "220 mx3.test.example ESMTP\r\n", good_steps, 2) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "fallback.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	CHECK_INT(bad.connections, 1);
	CHECK_INT(good.connections, 1);
	CHECK_STR(smtp_client_peer_name(o.client), "mx3.test.example");
	smtp_client_abort(o.client);
	mock_stop(&bad);
	mock_stop(&good);
}

static void
test_session_refused_then_next(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	/* Nothing listens on 127.0.0.5, the first MX. */
	if (mock_start(&m, "127.0.0.3", "220 mx3\r\n", steps, 2) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "refused.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	smtp_client_abort(o.client);
	mock_stop(&m);
}

static void
test_session_all_hosts_5xx(void)
{
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock a, b;

	if (mock_start(&a, "127.0.0.2", "554 5.7.1 go away\r\n", NULL, 0) == -1 ||
	    mock_start(&b, "127.0.0.3", "554 5.7.1 not you either\r\n",
	    NULL, 0) == -1) {
		CHECK(0);
		return;
	}
	o.quit_on_failed = 1;
	start_client(&o, &cfg, "allbad.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o.replies[0].code, 554);
	CHECK_STR(o.replies[0].enhanced, "5.7.1");
	CHECK_STR(o.replies[0].text, "not you either");
	CHECK_INT(o.replies[0].local, 0);
	mock_stop(&a);
	mock_stop(&b);
}

static void
test_session_5xx_and_refused(void)
{
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	/* 127.0.0.5 refuses and 127.0.0.3 replies 5xx, so not every host did. */
	if (mock_start(&m, "127.0.0.3", "554 5.7.1 go away\r\n", NULL, 0) == -1) {
		CHECK(0);
		return;
	}
	o.quit_on_failed = 1;
	start_client(&o, &cfg, "refused.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o.replies[0].code, 451);
	CHECK_STR(o.replies[0].enhanced, "4.4.1");
	CHECK_INT(o.replies[0].local, 1);
	mock_stop(&m);
}

/*
 * Half a message, long enough to be written before the end (the client
 * gathers up to 16 KiB), then an abort: no dot may follow.
 */
static void
test_session_abort_without_dot(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
	};
	static const char head[] = "Subject: half a message\r\n\r\n";
	static char part[40000];
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;
	size_t i;

	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 4) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	smtp_client_rcpt(o.client, "alice@mailbox.example");
	smtp_client_data(o.client);
	CHECK(wait_events(&o, 3));
	CHECK_INT(o.events[2], SMTP_CLIENT_DATA);
	memcpy(part, head, sizeof(head) - 1);
	for (i = sizeof(head) - 1; i < sizeof(part); i++)
		part[i] = (i + 2) % 80 == 0 ? '\r' : (i + 1) % 80 == 0 ?
		    '\n' : 's';
	smtp_client_write(o.client, part, sizeof(part));
	settle(0.05);
	smtp_client_abort(o.client);
	CHECK(run_until(mock_eof, &m, 5.0));
	CHECK(strstr(m.rx, "\r\n\r\nsss") != NULL);
	CHECK(strstr(m.rx, "\r\n.\r\n") == NULL);
	CHECK(m.body == NULL);
	CHECK_INT(o.nevents, 3);
	mock_stop(&m);
}

/*
 * Start a session that must fail before connecting and check the reply.
 * quit_inside calls smtp_client_quit() from the FAILED callback; without
 * it the client frees itself.
 */
static void
expect_dns_failure(const char *domain, int code, const char *enhanced,
    int quit_inside)
{
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };

	o.quit_on_failed = quit_inside;
	start_client(&o, &cfg, domain, 0, 0);
	CHECK_INT(o.called_in_new, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o.replies[0].code, code);
	CHECK_STR(o.replies[0].enhanced, enhanced);
	CHECK_INT(o.replies[0].local, 1);
	settle(0.01);
	CHECK_INT(o.nevents, 1);
}

static void
test_session_dns_failures(void)
{
	expect_dns_failure("null.test.example", 556, "5.1.10", 1);
	expect_dns_failure("nope.test.example", 451, "4.4.4", 0);
	expect_dns_failure("noaddr.test.example", 451, "4.4.4", 1);
	expect_dns_failure("bad_domain!.example", 451, "4.4.4", 0);
}

/*
 * A resolver on loopback that answers every query with SERVFAIL, or with
 * nothing when silent is set, for the DNS failure paths that zone mode
 * cannot produce.
 */
struct fake_resolver {
	int	 fd;
	int	 silent;
	ev_io	 w;
};

static void
fake_resolver_on_read(struct ev_loop *l, ev_io *w, int revents)
{
	struct fake_resolver *fr = w->data;
	unsigned char pkt[1500];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	ssize_t n;

	n = recvfrom(fr->fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&from,
	    &fromlen);
	if (n < 12 || fr->silent)
		return;
	pkt[2] |= 0x80;				/* QR: a response */
	pkt[3] = (unsigned char)((pkt[3] & 0xf0) | 0x80 | 2);	/* RA, SERVFAIL */
	sendto(fr->fd, pkt, (size_t)n, 0, (struct sockaddr *)&from, fromlen);
}

/* Returns a DNS client that asks the fake resolver, or NULL. */
static struct dns_ctx *
fake_resolver_start(struct fake_resolver *fr, int silent)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct dns_config dcfg;
	struct dns_ctx *ctx;
	char addr[32];

	memset(fr, 0, sizeof(*fr));
	fr->silent = silent;
	fr->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fr->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		return NULL;
	getsockname(fr->fd, (struct sockaddr *)&sin, &len);
	ev_io_init(&fr->w, fake_resolver_on_read, fr->fd, EV_READ);
	fr->w.data = fr;
	ev_io_start(loop, &fr->w);
	memset(&dcfg, 0, sizeof(dcfg));
	dcfg.timeout = 0.2;
	dcfg.attempts = 1;
	ctx = dns_new(loop, &dcfg);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
	if (dns_add_resolver(ctx, addr) == -1) {
		dns_free(ctx);
		return NULL;
	}
	return ctx;
}

static void
fake_resolver_stop(struct fake_resolver *fr, struct dns_ctx *ctx)
{
	dns_free(ctx);
	ev_io_stop(loop, &fr->w);
	close(fr->fd);
}

static void
test_session_dns_servfail_and_timeout(void)
{
	struct fake_resolver fr;
	struct dns_ctx *zone_dns = dns;
	int silent;

	for (silent = 0; silent <= 1; silent++) {
		dns = fake_resolver_start(&fr, silent);
		CHECK(dns != NULL);
		if (dns == NULL)
			break;
		expect_dns_failure("servfail.example", 451, "4.4.3", 0);
		fake_resolver_stop(&fr, dns);
	}
	dns = zone_dns;
}

static void
test_session_ehlo_rejected_helo(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO relay.test.example", "502 5.5.2 what is EHLO\r\n", 0 },
		{ "HELO relay.test.example", "250 mx1.test.example\r\n", 0 },
		{ "MAIL FROM:<SRS0=abcd=XY=sender.example=bob@relay.test.example>",
		    "250 ok\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 3) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 5000, 1);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	/* HELO offers no extensions: neither SIZE= nor BODY=. */
	CHECK(strstr(m.rx, "bob@relay.test.example>\r\n") != NULL);
	CHECK_INT(m.mismatch, 0);
	smtp_client_abort(o.client);
	mock_stop(&m);
}

static void
test_session_size_too_big(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", "250-mx1\r\n250 SIZE 1000\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 2) == -1) {
		CHECK(0);
		return;
	}
	o.quit_on_failed = 1;
	start_client(&o, &cfg, "one.test.example", 1001, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o.replies[0].code, 552);
	CHECK_STR(o.replies[0].enhanced, "5.3.4");
	CHECK(run_until(mock_eof, &m, 5.0));
	CHECK(strstr(m.rx, "MAIL") == NULL);
	CHECK(strstr(m.rx, "QUIT\r\n") != NULL);
	CHECK_INT(m.mismatch, 0);
	mock_stop(&m);
}

static void
test_session_loop_detected(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", "250-RELAY.test.example. hello\r\n250 PIPELINING\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 }, o2 = { 0 };
	struct mock m;

	/* The greeting names us. */
	if (mock_start(&m, "127.0.0.1", "220 relay.test.example ESMTP\r\n",
	    steps + 1, 1) == -1) {
		CHECK(0);
		return;
	}
	o.quit_on_failed = 1;
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o.replies[0].code, 554);
	CHECK_STR(o.replies[0].enhanced, "5.4.6");
	CHECK_STR(o.replies[0].text, "mail loop: destination MX is this relay");
	CHECK(run_until(mock_eof, &m, 5.0));
	mock_stop(&m);

	/* The EHLO reply names us, in another case and with the root dot. */
	if (mock_start(&m, "127.0.0.1", "220 mx1 ESMTP\r\n", steps, 2) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o2, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o2, 1));
	CHECK_INT(o2.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o2.replies[0].code, 554);
	CHECK(run_until(mock_eof, &m, 5.0));
	CHECK(strstr(m.rx, "MAIL") == NULL);
	mock_stop(&m);
}

static void
test_session_greeting_timeout(void)
{
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", NULL, NULL, 0) == -1) {
		CHECK(0);
		return;
	}
	cfg.command_timeout = 0.2;
	o.quit_on_failed = 1;
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o.replies[0].code, 451);
	CHECK_STR(o.replies[0].enhanced, "4.4.1");
	CHECK(run_until(mock_eof, &m, 5.0));
	mock_stop(&m);
}

static void
test_session_rcpt_timeout_lost(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:", NULL, 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 3) == -1) {
		CHECK(0);
		return;
	}
	cfg.command_timeout = 0.2;
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	smtp_client_rcpt(o.client, "alice@mailbox.example");
	CHECK(wait_events(&o, 2));
	CHECK_INT(o.events[1], SMTP_CLIENT_LOST);
	CHECK_INT(o.replies[1].code, 451);
	CHECK_STR(o.replies[1].enhanced, "4.4.2");
	CHECK_INT(o.replies[1].local, 1);
	CHECK(run_until(mock_eof, &m, 5.0));
	mock_stop(&m);
}

static void
test_session_dot_timeout_lost(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ ".", NULL, 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 5) == -1) {
		CHECK(0);
		return;
	}
	cfg.data_end_timeout = 0.3;
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	smtp_client_rcpt(o.client, "alice@mailbox.example");
	smtp_client_data(o.client);
	CHECK(wait_events(&o, 3));
	/* No CRLF at the end: the client adds one before the dot. */
	smtp_client_write(o.client, "no line end", 11);
	smtp_client_end(o.client);
	CHECK(wait_events(&o, 4));
	CHECK_INT(o.events[3], SMTP_CLIENT_LOST);
	CHECK_STR(o.replies[3].enhanced, "4.4.2");
	CHECK_STR(m.body, "no line end\r\n");
	mock_stop(&m);
}

static void
test_session_oversize_reply_line(void)
{
	static char ehlo_long[1300];
	static struct mock_step steps[] = {
		{ "EHLO", ehlo_long, 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	memset(ehlo_long, 'x', sizeof(ehlo_long) - 3);
	memcpy(ehlo_long, "250-", 4);
	memcpy(ehlo_long + sizeof(ehlo_long) - 3, "\r\n", 3);
	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 1) == -1) {
		CHECK(0);
		return;
	}
	o.quit_on_failed = 1;
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o.replies[0].code, 451);
	CHECK_STR(o.replies[0].enhanced, "4.4.2");
	CHECK(run_until(mock_eof, &m, 5.0));
	mock_stop(&m);
}

static void
test_session_mail_rejected(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "550 5.7.1 sender blocked\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 3) == -1) {
		CHECK(0);
		return;
	}
	/* No quit() here: after FAILED the client says QUIT by itself. */
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o.replies[0].code, 550);
	CHECK_STR(o.replies[0].enhanced, "5.7.1");
	CHECK_STR(o.replies[0].text, "sender blocked");
	CHECK_INT(o.replies[0].local, 0);
	CHECK(run_until(mock_eof, &m, 5.0));
	CHECK(strstr(m.rx, "QUIT\r\n") != NULL);
	CHECK_INT(m.mismatch, 0);
	mock_stop(&m);
}

static void
test_session_lost_mid_transaction(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:", MOCK_CLOSE, 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 3) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	smtp_client_rcpt(o.client, "alice@mailbox.example");
	CHECK(wait_events(&o, 2));
	CHECK_INT(o.events[1], SMTP_CLIENT_LOST);
	CHECK_STR(o.replies[1].enhanced, "4.4.2");
	mock_stop(&m);
}

static void
test_session_malformed_reply(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:", "250-ok\r\n251 changed code\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 3) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	smtp_client_rcpt(o.client, "alice@mailbox.example");
	CHECK(wait_events(&o, 2));
	CHECK_INT(o.events[1], SMTP_CLIENT_LOST);
	CHECK_STR(o.replies[1].enhanced, "4.4.2");
	CHECK(run_until(mock_eof, &m, 5.0));
	mock_stop(&m);
}

static void
test_session_abort_inside_callback(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<a@", "250 ok\r\n250 ok\r\n", 2 },
		{ "RCPT TO:<b@", NULL, 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;

	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 4) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	/* Both replies arrive in one read; the first aborts the client. */
	o.abort_on_rcpt = 1;
	smtp_client_rcpt(o.client, "a@mailbox.example");
	smtp_client_rcpt(o.client, "b@mailbox.example");
	CHECK(wait_events(&o, 2));
	CHECK(run_until(mock_eof, &m, 5.0));
	CHECK_INT(o.nevents, 2);
	mock_stop(&m);
}

struct wait_drains {
	struct owner	*owner;
	int		 count;
};

static int
have_drains(void *arg)
{
	struct wait_drains *w = arg;

	return w->owner->drains >= w->count;
}

static void
test_session_backpressure_and_drain(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_full, 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ ".", "250 2.0.0 big one queued\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	struct mock m;
	char *body;
	size_t body_len = 4000000, i, off = 0, room;
	int zero_seen = 0;

	body = malloc(body_len);
	for (i = 0; i < body_len; i++)
		body[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' :
		    (char)('a' + i % 26);
	if (mock_start(&m, "127.0.0.1", "220 mx1\r\n", steps, 6) == -1) {
		CHECK(0);
		free(body);
		return;
	}
	cfg.out_high_water = 64 * 1024;
	/* Generous: this test is about flow control, not about timeouts. */
	cfg.command_timeout = 10.0;
	cfg.data_end_timeout = 10.0;
	start_client(&o, &cfg, "one.test.example", body_len, 0);
	CHECK(wait_events(&o, 1));
	smtp_client_rcpt(o.client, "alice@mailbox.example");
	smtp_client_data(o.client);
	CHECK(wait_events(&o, 3));
	/* Write in 48 KiB chunks; on zero, wait for DRAIN. */
	while (off < body_len) {
		size_t chunk = body_len - off < 48 * 1024 ? body_len - off : 48 * 1024;

		room = smtp_client_write(o.client, body + off, chunk);
		off += chunk;
		if (room == 0)
			zero_seen++;
		if (room == 0 && off < body_len) {
			if (!run_until(have_drains, &(struct wait_drains){ &o,
			    zero_seen }, 5.0))
				break;
		}
	}
	smtp_client_end(o.client);
	CHECK(wait_events(&o, 4));
	/* Every zero from smtp_client_write() is followed by one DRAIN. */
	CHECK(zero_seen > 0);
	CHECK_INT(o.drains, zero_seen);
	CHECK_INT(o.nevents, 4);
	CHECK_INT(o.events[3], SMTP_CLIENT_END);
	CHECK_INT(m.body_len, body_len);
	CHECK(m.body != NULL);
	if (m.body != NULL)
		CHECK(memcmp(m.body, body, body_len) == 0);
	if (o.events[3] == SMTP_CLIENT_END)
		smtp_client_quit(o.client);
	CHECK(run_until(mock_eof, &m, 5.0));
	mock_stop(&m);
	free(body);
}

/*
 * STARTTLS.
 */

static const char ehlo_tls_offered[] =
    "250-mx1.test.example greets relay.test.example\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10000000\r\n"
    "250-8BITMIME\r\n"
    "250 STARTTLS\r\n";

/* The reply to EHLO inside TLS offers STARTTLS again, to be ignored. */
static const char ehlo_in_tls[] =
    "250-mx1.test.example greets relay.test.example over TLS\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10000000\r\n"
    "250-8BITMIME\r\n"
    "250 STARTTLS\r\n";

#define MAIL_LINE \
    "MAIL FROM:<SRS0=abcd=XY=sender.example=bob@relay.test.example>"

static struct smtp_client_config
tls_config(void)
{
	struct smtp_client_config cfg = test_config();

	cfg.tls_ctx = client_tls;
	return cfg;
}

/*
 * Start a mock on addr that greets, then after its 220 to STARTTLS runs
 * TLS with ctx, or fails as mode says.  Returns 0 or -1.
 */
static int
tls_mock_start(struct mock *m, const char *addr, const struct mock_step *steps,
    size_t nsteps, SSL_CTX *ctx, enum mock_tls mode)
{
	if (mock_start(m, addr, "220 mx.test.example ESMTP\r\n", steps,
	    nsteps) == -1)
		return -1;
	m->tls_ctx = ctx;
	m->tls_mode = mode;
	return 0;
}

/* Whether the client reports TLS: "TLSv1.2:..." or "TLSv1.3:...". */
static int
client_uses_tls(const struct smtp_client *c)
{
	return strncmp(smtp_client_tls(c), "TLSv1.", 6) == 0;
}

static void
test_tls_client_sni_names(void)
{
	static const struct {
		const char	*host;
		const char	*sni;	/* NULL: none sent */
	} cases[] = {
		{ "mx1.test.example", "mx1.test.example" },
		{ "MX_1.Test-Example.org", "MX_1.Test-Example.org" },
		{ "192.0.2.1", NULL },		/* an address literal */
		{ "mx.example.", NULL },	/* empty last label */
		{ "bad name.example", NULL },
		{ "mx\\032.example", NULL },	/* ldns escape */
	};
	char err[256];
	size_t i;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
		CHECK(0);
		return;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		SSL *ssl = tls_client_new(client_tls, sv[0], cases[i].host, err,
		    sizeof(err));
		const char *sni;

		CHECK(ssl != NULL);
		if (ssl == NULL)
			continue;
		sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
		if (cases[i].sni == NULL)
			CHECK(sni == NULL);
		else
			CHECK_STR(sni, cases[i].sni);
		SSL_free(ssl);
	}
	close(sv[0]);
	close(sv[1]);
}

static void
test_tls_delivers_large_message(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO relay.test.example", ehlo_tls_offered, 0 },
		{ "STARTTLS", "220 2.0.0 ready to start TLS\r\n", 0 },
		{ "EHLO relay.test.example", ehlo_in_tls, 0 },
		{ "MAIL FROM:", "250 2.1.0 sender ok\r\n", 0 },
		{ "RCPT TO:<alice@mailbox.example>", "250 2.1.5 ok\r\n", 0 },
		{ "DATA", "354 go ahead\r\n", 0 },
		{ ".", "250 2.0.0 queued as TLS1\r\n", 0 },
		{ "QUIT", "221 2.0.0 bye\r\n", 0 },
	};
	static const char want_plain[] =
	    "EHLO relay.test.example\r\nSTARTTLS\r\n";
	struct smtp_client_config cfg = tls_config();
	struct owner o = { 0 };
	struct mock m;
	const char *reason = NULL;
	char want_tls[256], *body;
	size_t body_len = 10000000, first = 9000000, i;

	if (tls_mock_start(&m, "127.0.0.1", steps, 8, server_tls_ca,
	    MOCK_TLS_HANDSHAKE) == -1) {
		CHECK(0);
		return;
	}
	body = malloc(body_len);
	for (i = 0; i < body_len; i++)
		body[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' :
		    (char)('A' + i % 26);
	cfg.out_high_water = 8 * 1024 * 1024;
	cfg.command_timeout = 10.0;
	cfg.data_end_timeout = 10.0;
	start_client(&o, &cfg, "one.test.example", body_len, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	CHECK_STR(o.replies[0].text, "sender ok");
	if (o.nevents != 1 || o.events[0] != SMTP_CLIENT_READY)
		goto stop;
	CHECK(client_uses_tls(o.client));
	CHECK_INT(smtp_client_tls_verified(o.client, &reason), 1);
	CHECK_STR(reason, "ok");
	CHECK_STR(m.sni, "mx1.test.example");
	CHECK_INT(m.tls_done, 1);
	CHECK_INT(m.tls_rx_start, strlen(want_plain));
	CHECK(strncmp(m.rx, want_plain, strlen(want_plain)) == 0);
	snprintf(want_tls, sizeof(want_tls),
	    "EHLO relay.test.example\r\n" MAIL_LINE " SIZE=%zu\r\n", body_len);
	CHECK_STR(m.rx + m.tls_rx_start, want_tls);

	smtp_client_rcpt(o.client, "alice@mailbox.example");
	smtp_client_data(o.client);
	CHECK(wait_events(&o, 3));
	CHECK_INT(o.events[2], SMTP_CLIENT_DATA);
	CHECK_INT(o.replies[2].code, 354);
	if (o.nevents != 3 || o.replies[2].code != 354)
		goto stop;
	/*
	 * While the server does not read, 9 MB is more than the socket
	 * buffers take (about 4 MB on loopback with Debian's default
	 * net.ipv4.tcp_wmem), so a TLS write must wait for room.  DRAIN and
	 * END come only if the client resumes on its own once the server
	 * reads again.
	 */
	ev_io_stop(loop, &m.read_w);
	CHECK_INT(smtp_client_write(o.client, body, first), 0);
	settle(0.2);
	CHECK(smtp_client_write(o.client, body, 0) < cfg.out_high_water);
	ev_io_start(loop, &m.read_w);
	CHECK(run_until(have_drains, &(struct wait_drains){ &o, 1 }, 5.0));
	smtp_client_write(o.client, body + first, body_len - first);
	smtp_client_end(o.client);
	CHECK(wait_events(&o, 4));
	CHECK_INT(o.events[3], SMTP_CLIENT_END);
	CHECK_STR(o.replies[3].text, "queued as TLS1");
	CHECK_INT(m.body_len, body_len);
	CHECK(m.body != NULL);
	if (m.body != NULL && m.body_len == body_len)
		CHECK(memcmp(m.body, body, body_len) == 0);
	if (o.events[3] == SMTP_CLIENT_END) {
		smtp_client_quit(o.client);
		CHECK(run_until(mock_eof, &m, 5.0));
		CHECK(strstr(m.rx + m.tls_rx_start, "\r\nQUIT\r\n") != NULL);
	}
	CHECK_INT(m.mismatch, 0);
	CHECK_INT(m.connections, 1);
stop:
	mock_stop(&m);
	free(body);
}

static void
test_tls_injected_reply_discarded(void)
{
	/* "250 injected" comes in plaintext right after the 220. */
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_tls_offered, 0 },
		{ "STARTTLS", "220 2.0.0 ready\r\n250 injected\r\n", 0 },
		{ "EHLO", "250-mx1.test.example after TLS\r\n250 SIZE 5000\r\n",
		    0 },
		{ "MAIL FROM:", "250 2.1.0 sender ok\r\n", 0 },
	};
	static const char want_tls[] =
	    "EHLO relay.test.example\r\n" MAIL_LINE " SIZE=100\r\n";
	struct smtp_client_config cfg = tls_config();
	struct owner o = { 0 };
	struct mock m;
	const char *reason = NULL;

	if (tls_mock_start(&m, "127.0.0.1", steps, 4, server_tls_self,
	    MOCK_TLS_HANDSHAKE) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 100, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	/* Taking "250 injected" for the EHLO reply would shift every reply. */
	CHECK_STR(o.replies[0].text, "sender ok");
	CHECK_INT(m.tls_done, 1);
	CHECK_STR(m.rx + m.tls_rx_start, want_tls);
	CHECK_INT(m.mismatch, 0);
	if (o.nevents == 1 && o.events[0] == SMTP_CLIENT_READY) {
		CHECK(client_uses_tls(o.client));
		/* Self-signed: logged as unverified, and delivery goes on. */
		CHECK_INT(smtp_client_tls_verified(o.client, &reason), 0);
		CHECK(reason != NULL && strstr(reason, "self-signed") != NULL);
		smtp_client_abort(o.client);
	}
	mock_stop(&m);
}

static void
test_tls_hostname_mismatch_not_fatal(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_tls_offered, 0 },
		{ "STARTTLS", "220 2.0.0 ready\r\n", 0 },
		{ "EHLO", ehlo_in_tls, 0 },
		{ "MAIL FROM:", "250 2.1.0 ok\r\n", 0 },
	};
	struct smtp_client_config cfg = tls_config();
	struct owner o = { 0 };
	struct mock m;
	const char *reason = NULL;

	if (tls_mock_start(&m, "127.0.0.1", steps, 4, server_tls_other,
	    MOCK_TLS_HANDSHAKE) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	if (o.nevents == 1 && o.events[0] == SMTP_CLIENT_READY) {
		CHECK(client_uses_tls(o.client));
		/* The CA is trusted, but the certificate names another host. */
		CHECK_INT(smtp_client_tls_verified(o.client, &reason), 0);
		CHECK_STR(reason, "hostname mismatch");
		smtp_client_abort(o.client);
	}
	CHECK_INT(m.mismatch, 0);
	mock_stop(&m);
}

/*
 * The reply to the first EHLO limits SIZE to 100 and offers PIPELINING and
 * 8BITMIME.  The reply inside TLS, over 8 KiB in one TLS record, allows
 * 10000 bytes and offers neither, so only its limits may apply.
 */
static char ehlo_big_in_tls[12 * 1024];

static void
make_ehlo_big_in_tls(void)
{
	size_t off = 0, i;

	off += (size_t)snprintf(ehlo_big_in_tls, sizeof(ehlo_big_in_tls),
	    "250-mx1.test.example greets relay.test.example\r\n");
	for (i = 0; i < 60; i++)
		off += (size_t)snprintf(ehlo_big_in_tls + off,
		    sizeof(ehlo_big_in_tls) - off,
		    "250-X-FILLER-%02zu %.*s\r\n", i, 140,
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	snprintf(ehlo_big_in_tls + off, sizeof(ehlo_big_in_tls) - off,
	    "250-STARTTLS\r\n250 SIZE 10000\r\n");
}

static void
test_tls_capabilities_from_second_ehlo(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", "250-mx1.test.example\r\n250-PIPELINING\r\n"
		    "250-8BITMIME\r\n250-SIZE 100\r\n250 STARTTLS\r\n", 0 },
		{ "STARTTLS", "220 2.0.0 ready\r\n", 0 },
		{ "EHLO", ehlo_big_in_tls, 0 },
		{ "MAIL FROM:", "250 2.1.0 ok\r\n", 0 },
		{ "RCPT TO:<a@", "250 2.1.5 ok a\r\n", 0 },
		{ "RCPT TO:<b@", "250 2.1.5 ok b\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	static const char want_tls[] =
	    "EHLO relay.test.example\r\n" MAIL_LINE " SIZE=4242\r\n";
	struct smtp_client_config cfg = tls_config();
	struct owner o = { 0 };
	struct mock m;

	make_ehlo_big_in_tls();
	CHECK(strlen(ehlo_big_in_tls) > 8192);
	if (tls_mock_start(&m, "127.0.0.1", steps, 7, server_tls_self,
	    MOCK_TLS_HANDSHAKE) == -1) {
		CHECK(0);
		return;
	}
	/* 4242 bytes, 8-bit: over the first SIZE, under the second. */
	start_client(&o, &cfg, "one.test.example", 4242, 1);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	if (o.nevents != 1 || o.events[0] != SMTP_CLIENT_READY)
		goto stop;
	/* No BODY=8BITMIME and no second STARTTLS. */
	CHECK_STR(m.rx + m.tls_rx_start, want_tls);
	smtp_client_rcpt(o.client, "a@mailbox.example");
	smtp_client_rcpt(o.client, "b@mailbox.example");
	CHECK(wait_events(&o, 3));
	CHECK_INT(o.events[1], SMTP_CLIENT_RCPT);
	CHECK_STR(o.replies[1].text, "ok a");
	CHECK_INT(o.events[2], SMTP_CLIENT_RCPT);
	CHECK_STR(o.replies[2].text, "ok b");
	/* Without PIPELINING, each RCPT waited for the previous reply. */
	CHECK_INT(m.max_batch, 1);
	smtp_client_quit(o.client);
	CHECK(run_until(mock_eof, &m, 5.0));
stop:
	CHECK_INT(m.mismatch, 0);
	mock_stop(&m);
}

static void
test_tls_starttls_rejected_plaintext(void)
{
	static const char *const rejections[] = {
		"454 4.7.0 TLS not available due to temporary reason\r\n",
		"502 5.5.1 command not implemented\r\n",
	};
	struct mock_step steps[] = {
		{ "EHLO", ehlo_tls_offered, 0 },
		{ "STARTTLS", NULL, 0 },
		{ "MAIL FROM:", "250 2.1.0 ok\r\n", 0 },
		{ "QUIT", "221 bye\r\n", 0 },
	};
	static const char want_rx[] =
	    "EHLO relay.test.example\r\nSTARTTLS\r\n" MAIL_LINE "\r\n"
	    "QUIT\r\n";
	struct smtp_client_config cfg = tls_config();
	const char *reason = NULL;
	struct mock m;
	size_t i;

	for (i = 0; i < 2; i++) {
		struct owner o = { 0 };

		steps[1].reply = rejections[i];
		if (tls_mock_start(&m, "127.0.0.1", steps, 4, server_tls_self,
		    MOCK_TLS_HANDSHAKE) == -1) {
			CHECK(0);
			return;
		}
		start_client(&o, &cfg, "one.test.example", 0, 0);
		CHECK(wait_events(&o, 1));
		CHECK_INT(o.events[0], SMTP_CLIENT_READY);
		if (o.nevents == 1 && o.events[0] == SMTP_CLIENT_READY) {
			CHECK_STR(smtp_client_tls(o.client), "");
			CHECK_INT(smtp_client_tls_verified(o.client, &reason),
			    0);
			CHECK_STR(reason, "no TLS");
			smtp_client_quit(o.client);
			CHECK(run_until(mock_eof, &m, 5.0));
		}
		/* The same connection goes on in plaintext. */
		CHECK_STR(m.rx, want_rx);
		CHECK_INT(m.connections, 1);
		CHECK_INT(m.tls_done, 0);
		CHECK_INT(m.mismatch, 0);
		mock_stop(&m);
	}
}

static void
test_tls_not_offered_plaintext(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", "250-mx1.test.example\r\n250 8BITMIME\r\n", 0 },
		{ "MAIL FROM:", "250 2.1.0 ok\r\n", 0 },
	};
	static const char want_rx[] =
	    "EHLO relay.test.example\r\n" MAIL_LINE "\r\n";
	struct smtp_client_config cfg = tls_config();
	struct owner o = { 0 };
	struct mock m;

	if (tls_mock_start(&m, "127.0.0.1", steps, 2, server_tls_self,
	    MOCK_TLS_HANDSHAKE) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "one.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	CHECK_STR(m.rx, want_rx);
	if (o.nevents == 1 && o.events[0] == SMTP_CLIENT_READY) {
		CHECK_STR(smtp_client_tls(o.client), "");
		smtp_client_abort(o.client);
	}
	CHECK_INT(m.mismatch, 0);
	mock_stop(&m);
}

static void
test_tls_handshake_failure_next_address(void)
{
	static const struct mock_step bad_steps[] = {
		{ "EHLO", ehlo_tls_offered, 0 },
		{ "STARTTLS", "220 2.0.0 ready\r\n", 0 },
	};
	static const struct mock_step good_steps[] = {
		{ "EHLO", ehlo_tls_offered, 0 },
		{ "STARTTLS", "220 2.0.0 ready\r\n", 0 },
		{ "EHLO", ehlo_in_tls, 0 },
		{ "MAIL FROM:", "250 2.1.0 ok\r\n", 0 },
	};
	struct smtp_client_config cfg = tls_config();
	struct owner o = { 0 };
	struct mock bad, good;

	/* mx2 closes the connection instead of the handshake. */
	if (tls_mock_start(&bad, "127.0.0.2", bad_steps, 2, server_tls_self,
	    MOCK_TLS_CLOSE) == -1 || tls_mock_start(&good, "127.0.0.3",
	    good_steps, 4, server_tls_self, MOCK_TLS_HANDSHAKE) == -1) {
		CHECK(0);
		return;
	}
	start_client(&o, &cfg, "fallback.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	CHECK_INT(bad.connections, 1);
	CHECK_INT(bad.tls_done, 0);
	CHECK_INT(good.connections, 1);
	CHECK_INT(good.tls_done, 1);
	CHECK_STR(good.sni, "mx3.test.example");
	if (o.nevents == 1 && o.events[0] == SMTP_CLIENT_READY) {
		CHECK(client_uses_tls(o.client));
		smtp_client_abort(o.client);
	}
	CHECK_INT(good.mismatch, 0);
	mock_stop(&bad);
	mock_stop(&good);
}

static void
test_tls_all_hosts_fail_handshake(void)
{
	static const struct mock_step steps[] = {
		{ "EHLO", ehlo_tls_offered, 0 },
		{ "STARTTLS", "220 2.0.0 ready\r\n", 0 },
	};
	struct smtp_client_config cfg = tls_config();
	struct owner o = { 0 };
	struct mock closing, silent;

	/* mx2 closes; mx3 never answers the ClientHello, so it times out. */
	if (tls_mock_start(&closing, "127.0.0.2", steps, 2, server_tls_self,
	    MOCK_TLS_CLOSE) == -1 || tls_mock_start(&silent, "127.0.0.3",
	    steps, 2, server_tls_self, MOCK_TLS_SILENT) == -1) {
		CHECK(0);
		return;
	}
	cfg.command_timeout = 0.5;
	start_client(&o, &cfg, "allbad.test.example", 0, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_FAILED);
	CHECK_INT(o.replies[0].code, 451);
	CHECK_STR(o.replies[0].enhanced, "4.4.2");
	CHECK_STR(o.replies[0].text,
	    "TLS handshake with the destination mail server failed");
	CHECK_INT(o.replies[0].local, 1);
	CHECK_INT(closing.connections, 1);
	CHECK_INT(silent.connections, 1);
	/* No retry without TLS. */
	settle(0.2);
	CHECK_INT(closing.connections, 1);
	CHECK_INT(silent.connections, 1);
	CHECK_INT(o.nevents, 1);
	mock_stop(&closing);
	mock_stop(&silent);
}

/*
 * A real server: aiosmtpd.
 */

/*
 * Arguments: port, output file, and optionally a certificate and key
 * file, with which the server offers STARTTLS.  The envelope file gets a
 * third line, "tls" or "plain", from the session's TLS state.
 */
static const char aiosmtpd_script[] =
    "import asyncio, ssl, sys\n"
    "from aiosmtpd.controller import Controller\n"
    "class Store:\n"
    "    async def handle_DATA(self, server, session, envelope):\n"
    "        with open(sys.argv[2], 'wb') as f:\n"
    "            f.write(envelope.original_content)\n"
    "        with open(sys.argv[2] + '.env', 'w') as f:\n"
    "            f.write(envelope.mail_from + '\\n')\n"
    "            f.write(' '.join(envelope.rcpt_tos) + '\\n')\n"
    "            f.write(('plain' if session.ssl is None else 'tls') + '\\n')\n"
    "        return '250 2.0.0 stored'\n"
    "kwargs = {}\n"
    "if len(sys.argv) > 4:\n"
    "    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)\n"
    "    tls.load_cert_chain(sys.argv[3], sys.argv[4])\n"
    "    kwargs['tls_context'] = tls\n"
    "c = Controller(Store(), hostname='127.0.0.1', port=int(sys.argv[1]),\n"
    "               server_hostname='aiosmtpd.test.example', **kwargs)\n"
    "c.start()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
    "c.stop()\n";

/* Find a free port on 127.0.0.1 for the child to bind. */
static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/*
 * Start aiosmtpd on 127.0.0.1:port storing messages at out, offering
 * STARTTLS with cert and key when cert is not NULL.  Returns the child's
 * pid, or -1.  *stdin_fd is the child's standard input (closing it stops
 * the server) and *stdout_fd its standard output, which must stay open
 * while it runs, or its next output kills it with a broken pipe.
 */
static pid_t
aiosmtpd_start(int port, const char *out, const char *cert, const char *key,
    int *stdin_fd, int *stdout_fd)
{
	char script[128], portstr[16], line[64];
	int in_pipe[2], out_pipe[2];
	FILE *f;
	pid_t pid;
	ssize_t n;

	snprintf(script, sizeof(script), "%s/store.py", tmpdir);
	f = fopen(script, "w");
	if (f == NULL)
		return -1;
	fputs(aiosmtpd_script, f);
	fclose(f);
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (pipe(in_pipe) == -1 || pipe(out_pipe) == -1)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(in_pipe[0], 0);
		dup2(out_pipe[1], 1);
		close(in_pipe[1]);
		close(out_pipe[0]);
		/* A NULL cert ends the argument list there. */
		execl("/usr/bin/python3", "python3", script, portstr, out,
		    cert, key, (char *)NULL);
		_exit(127);
	}
	close(in_pipe[0]);
	close(out_pipe[1]);
	*stdin_fd = in_pipe[1];
	*stdout_fd = out_pipe[0];
	n = read(out_pipe[0], line, sizeof(line) - 1);
	if (n < 5 || strncmp(line, "ready", 5) != 0) {
		close(in_pipe[1]);
		close(out_pipe[0]);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

/*
 * Send a message to aiosmtpd, with STARTTLS when use_tls, and compare
 * what it stored with what was written.
 */
static void
check_aiosmtpd_delivery(int use_tls)
{
	/* Stuffed as the inbound side passes it on: "." doubled at line start. */
	static const char stuffed[] =
	    "From: Bob <bob@sender.example>\r\n"
	    "To: alice@example.com\r\n"
	    "Subject: aiosmtpd check\r\n"
	    "\r\n"
	    "..\r\n"
	    "..dot line\r\n"
	    "...two dots\r\n"
	    "tab\there and trailing space \r\n"
	    "last\r\n";
	static const char plain[] =
	    "From: Bob <bob@sender.example>\r\n"
	    "To: alice@example.com\r\n"
	    "Subject: aiosmtpd check\r\n"
	    "\r\n"
	    ".\r\n"
	    ".dot line\r\n"
	    "..two dots\r\n"
	    "tab\there and trailing space \r\n"
	    "last\r\n";
	struct smtp_client_config cfg = test_config();
	struct owner o = { 0 };
	char out[128], env[160], got[1024];
	int stdin_fd, stdout_fd, status;
	size_t n;
	pid_t pid;
	FILE *f;

	snprintf(out, sizeof(out), "%s/aiosmtpd.msg", tmpdir);
	cfg.port = free_port();
	if (use_tls)
		cfg.tls_ctx = client_tls;
	pid = aiosmtpd_start(cfg.port, out, use_tls ? self_cert_path : NULL,
	    self_key_path, &stdin_fd, &stdout_fd);
	if (pid == -1) {
		fprintf(stderr, "aiosmtpd did not start: install python3-aiosmtpd\n");
		CHECK(0);
		return;
	}
	/* mx1 is 127.0.0.1. */
	start_client(&o, &cfg, "one.test.example", sizeof(plain) - 1, 0);
	CHECK(wait_events(&o, 1));
	CHECK_INT(o.events[0], SMTP_CLIENT_READY);
	if (o.nevents != 1 || o.events[0] != SMTP_CLIENT_READY)
		goto stop;
	CHECK_STR(smtp_client_peer_name(o.client), "aiosmtpd.test.example");
	CHECK_INT(smtp_client_tls(o.client)[0] != '\0', use_tls);
	smtp_client_rcpt(o.client, "alice@mailbox.example");
	smtp_client_data(o.client);
	CHECK(wait_events(&o, 3));
	CHECK_INT(o.events[2], SMTP_CLIENT_DATA);
	CHECK_INT(o.replies[2].code, 354);
	if (o.nevents != 3 || o.replies[2].code != 354)
		goto stop;
	smtp_client_write(o.client, stuffed, sizeof(stuffed) - 1);
	smtp_client_end(o.client);
	CHECK(wait_events(&o, 4));
	CHECK_INT(o.events[3], SMTP_CLIENT_END);
	CHECK_INT(o.replies[3].code, 250);
	CHECK_STR(o.replies[3].text, "stored");
	if (o.events[3] == SMTP_CLIENT_END)
		smtp_client_quit(o.client);
	settle(0.1);

	f = fopen(out, "rb");
	CHECK(f != NULL);
	if (f != NULL) {
		n = fread(got, 1, sizeof(got) - 1, f);
		got[n] = '\0';
		fclose(f);
		CHECK_INT(n, sizeof(plain) - 1);
		CHECK(memcmp(got, plain, sizeof(plain) - 1) == 0);
	}
	snprintf(env, sizeof(env), "%s.env", out);
	f = fopen(env, "r");
	CHECK(f != NULL);
	if (f != NULL) {
		n = fread(got, 1, sizeof(got) - 1, f);
		got[n] = '\0';
		fclose(f);
		CHECK_STR(got, use_tls ?
		    "SRS0=abcd=XY=sender.example=bob@relay.test.example\n"
		    "alice@mailbox.example\ntls\n" :
		    "SRS0=abcd=XY=sender.example=bob@relay.test.example\n"
		    "alice@mailbox.example\nplain\n");
	}
stop:
	close(stdin_fd);
	waitpid(pid, &status, 0);
	close(stdout_fd);
}

/*
 * Write c as tmpdir/name.crt and tmpdir/name.key (paths copied to
 * cert_path and key_path when not NULL) and load a server context from
 * the files.  Returns NULL on failure.
 */
static SSL_CTX *
server_ctx_from(const struct test_cert *c, const char *name, char *cert_path,
    char *key_path, size_t pathsz)
{
	char crt[128], key[128], err[256];
	SSL_CTX *ctx;

	snprintf(crt, sizeof(crt), "%s/%s.crt", tmpdir, name);
	snprintf(key, sizeof(key), "%s/%s.key", tmpdir, name);
	if (test_cert_write(c, crt, key) == -1)
		return NULL;
	if ((ctx = tls_server_ctx_new(crt, key, err, sizeof(err))) == NULL)
		fprintf(stderr, "server TLS context %s: %s\n", name, err);
	if (cert_path != NULL)
		snprintf(cert_path, pathsz, "%s", crt);
	if (key_path != NULL)
		snprintf(key_path, pathsz, "%s", key);
	return ctx;
}

/*
 * Make the test CA, the server certificates and the TLS contexts.
 * Returns 0 or -1.
 */
static int
setup_tls(void)
{
	struct test_cert ca = { 0 }, leaf = { 0 }, self = { 0 }, other = { 0 };
	char err[256];
	int ret = -1;

	if (test_cert_make(&ca, "Relay Test CA", NULL, 1) == -1 ||
	    test_cert_make(&leaf, "mx1.test.example", &ca, 0) == -1 ||
	    test_cert_make(&self, "mx1.test.example", NULL, 0) == -1 ||
	    test_cert_make(&other, "other.test.example", &ca, 0) == -1)
		goto out;
	if ((client_tls = tls_client_ctx_new(err, sizeof(err))) == NULL) {
		fprintf(stderr, "client TLS context: %s\n", err);
		goto out;
	}
	if (X509_STORE_add_cert(SSL_CTX_get_cert_store(client_tls),
	    ca.cert) != 1)
		goto out;
	server_tls_ca = server_ctx_from(&leaf, "mx1-ca", NULL, NULL, 0);
	server_tls_self = server_ctx_from(&self, "mx1-self", self_cert_path,
	    self_key_path, sizeof(self_cert_path));
	server_tls_other = server_ctx_from(&other, "other-ca", NULL, NULL, 0);
	if (server_tls_ca != NULL && server_tls_self != NULL &&
	    server_tls_other != NULL)
		ret = 0;
out:
	test_cert_free(&ca);
	test_cert_free(&leaf);
	test_cert_free(&self);
	test_cert_free(&other);
	return ret;
}

static void
free_tls(void)
{
	SSL_CTX_free(client_tls);
	SSL_CTX_free(server_tls_ca);
	SSL_CTX_free(server_tls_self);
	SSL_CTX_free(server_tls_other);
}

static void
test_session_aiosmtpd_byte_for_byte(void)
{
	check_aiosmtpd_delivery(0);
}

static void
test_tls_aiosmtpd_starttls(void)
{
	check_aiosmtpd_delivery(1);
}

static void
cleanup_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

int
main(void)
{
	struct mock probe;

	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	log_init("test_smtp_client", getenv("TEST_DEBUG") ? LOG_LVL_DEBUG :
	    LOG_LVL_ERR);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_smtp_client.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	loop = ev_default_loop(0);
	if (setup_dns() == -1)
		return 1;
	if (setup_tls() == -1) {
		fprintf(stderr, "could not make the test certificates\n");
		return 1;
	}
	/* Pick the port every mock shares. */
	if (mock_start(&probe, "127.0.0.1", NULL, NULL, 0) == -1)
		return 1;
	mock_stop(&probe);

	RUN(test_reply_parser_table);
	RUN(test_reply_parser_limits);
	RUN(test_ehlo_keywords);
	RUN(test_mx_select_sorted);
	RUN(test_mx_select_null_and_limit);
	RUN(test_mx_select_ties_shuffled);
	RUN(test_mx_select_name_text);
	RUN(test_mx_resolve_order);
	RUN(test_mx_resolve_statuses);
	RUN(test_session_delivers_message);
	RUN(test_session_pipelined_rcpts);
	RUN(test_session_no_pipelining);
	RUN(test_session_rcpt_before_ready);
	RUN(test_session_reuse_connection);
	RUN(test_session_reuse_after_close);
	RUN(test_session_reuse_mail_refused);
	RUN(test_session_4xx_greeting_then_next);
	RUN(test_session_refused_then_next);
	RUN(test_session_all_hosts_5xx);
	RUN(test_session_5xx_and_refused);
	RUN(test_session_abort_without_dot);
	RUN(test_session_dns_failures);
	RUN(test_session_dns_servfail_and_timeout);
	RUN(test_session_ehlo_rejected_helo);
	RUN(test_session_size_too_big);
	RUN(test_session_loop_detected);
	RUN(test_session_greeting_timeout);
	RUN(test_session_rcpt_timeout_lost);
	RUN(test_session_dot_timeout_lost);
	RUN(test_session_oversize_reply_line);
	RUN(test_session_mail_rejected);
	RUN(test_session_lost_mid_transaction);
	RUN(test_session_malformed_reply);
	RUN(test_session_abort_inside_callback);
	RUN(test_session_backpressure_and_drain);
	RUN(test_tls_client_sni_names);
	RUN(test_tls_delivers_large_message);
	RUN(test_tls_injected_reply_discarded);
	RUN(test_tls_hostname_mismatch_not_fatal);
	RUN(test_tls_capabilities_from_second_ehlo);
	RUN(test_tls_starttls_rejected_plaintext);
	RUN(test_tls_not_offered_plaintext);
	RUN(test_tls_handshake_failure_next_address);
	RUN(test_tls_all_hosts_fail_handshake);
	RUN(test_session_aiosmtpd_byte_for_byte);
	RUN(test_tls_aiosmtpd_starttls);

	dns_free(dns);
	free_tls();
	cleanup_tmpdir();
	CHECK_SUMMARY();
}
