/*
 * Unit tests for the DATA stream scanner (router/smtp_data.c).  RFC 5321
 * section 4.1.1.4: only CRLF "." CRLF ends the data; section 2.3.8: bare
 * CR and bare LF are not line endings.
 */
#include <string.h>

#include "check.h"
#include "smtp_data.h"

struct scan_case {
	const char	*in;
	const char	*want_out;	/* bytes passed on */
	int		 want_done;
	size_t		 want_used;
	int		 bare_cr, bare_lf;
};

static const struct scan_case scan_cases[] = {
	{ "Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n", 1,
	    23, 0, 0 },
	{ ".\r\n", "", 1, 3, 0, 0 },
	/* Dot-stuffed lines pass through still stuffed. */
	{ "..hidden\r\n.\r\nQUIT\r\n", "..hidden\r\n", 1, 13, 0, 0 },
	{ "a\r\n.x\r\n", "a\r\n.x\r\n", 0, 7, 0, 0 },
	/* Smuggling variants: none of these ends the data. */
	{ "a\n.\nb", "a\n.\nb", 0, 5, 0, 1 },
	/* Only CRLF "." CRLF ends the data, never LF "." CRLF. */
	{ "a\n.\r\nb", "a\n.\r\nb", 0, 6, 0, 1 },
	{ "a\r\n\n.\r\nb", "a\r\n\n.\r\nb", 0, 8, 0, 1 },
	{ "a\r.\rb", "a\r.\rb", 0, 5, 1, 0 },
	{ "a\r\n.\rb", "a\r\n.\rb", 0, 6, 1, 0 },
	{ "a\r\n.\nb", "a\r\n.\nb", 0, 6, 0, 1 },
	{ "a\rb\r\n", "a\rb\r\n", 0, 5, 1, 0 },
};

static void
test_scan_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
		const struct scan_case *c = &scan_cases[i];
		struct data_scan ds;
		char out[64];
		size_t outlen, used;
		int done;

		data_scan_init(&ds);
		used = data_scan(&ds, c->in, strlen(c->in), out, &outlen, &done);
		out[outlen] = '\0';
		CHECK_STR(out, c->want_out);
		CHECK_INT(done, c->want_done);
		CHECK_INT(used, c->want_used);
		CHECK_INT(ds.bare_cr, c->bare_cr);
		CHECK_INT(ds.bare_lf, c->bare_lf);
	}
}

/* The end marker split across reads is still found, byte by byte. */
static void
test_scan_split(void)
{
	const char *msg = "line\r\n..dot\r\n.\r\n";
	char out[64], all[64];
	size_t i, outlen, total = 0;
	struct data_scan ds;
	int done = 0;

	data_scan_init(&ds);
	for (i = 0; i < strlen(msg) && !done; i++) {
		data_scan(&ds, msg + i, 1, out, &outlen, &done);
		memcpy(all + total, out, outlen);
		total += outlen;
	}
	all[total] = '\0';
	CHECK(done);
	CHECK_INT(i, strlen(msg));
	CHECK_STR(all, "line\r\n..dot\r\n");
	/* RFC 1870: the size leaves out the doubled quoting dot. */
	CHECK_INT(ds.bytes, 12);
}

/* RFC 5321 section 6.3: Received fields are counted to detect loops. */
static void
test_scan_counts_received(void)
{
	const char *msg = "Received: from a\r\n\tby b\r\nRECEIVED: x\r\n"
	    "Subject: Received: no\r\n\r\nReceived: in the body \xc3\xa9\r\n"
	    ".\r\n";
	char out[256];
	size_t outlen;
	struct data_scan ds;
	int done;

	data_scan_init(&ds);
	data_scan(&ds, msg, strlen(msg), out, &outlen, &done);
	CHECK(done);
	CHECK_INT(ds.received, 2);
	CHECK_INT(ds.in_header, 0);
	/* UTF-8 only in the body: the header section is ASCII. */
	CHECK_INT(ds.header_8bit, 0);
}

/*
 * The header state comes out the same in pieces of every size, with
 * "Received:" and the UTF-8 byte split across pieces.
 */
static void
test_scan_header_split(void)
{
	const char *msg = "Received: from a\r\nX-Long: 0123456789\r\n"
	    "received: b\r\nSubject: caf\xc3\xa9\r\n\r\nReceived: c\r\n"
	    ".\r\n";
	char out[256], all[256];
	size_t len = strlen(msg), step, off, outlen, total;
	struct data_scan ds;
	int done;

	for (step = 1; step <= len; step++) {
		data_scan_init(&ds);
		off = total = 0;
		done = 0;
		while (off < len && !done) {
			off += data_scan(&ds, msg + off, len - off < step ?
			    len - off : step, out, &outlen, &done);
			memcpy(all + total, out, outlen);
			total += outlen;
		}
		CHECK(done);
		CHECK_INT(ds.received, 2);
		CHECK_INT(ds.header_8bit, 1);
		CHECK_INT(ds.in_header, 0);
		CHECK_INT(total, len - 3);
		CHECK(memcmp(all, msg, len - 3) == 0);
	}
}

/* RFC 6532: UTF-8 in header fields makes the message need SMTPUTF8. */
static void
test_scan_flags_8bit_headers(void)
{
	const char *msg = "Subject: caf\xc3\xa9\r\n\r\nbody\r\n.\r\n";
	char out[256];
	size_t outlen;
	struct data_scan ds;
	int done;

	data_scan_init(&ds);
	data_scan(&ds, msg, strlen(msg), out, &outlen, &done);
	CHECK(done);
	CHECK_INT(ds.header_8bit, 1);
}

/* RFC 5321 section 4.5.3.1.6: at most 1000 octets per line, CRLF included. */
static void
test_scan_line_limit(void)
{
	char msg[1200], out[2500];
	size_t outlen;
	struct data_scan ds;
	int done;

	memset(msg, 'a', 998);
	memcpy(msg + 998, "\r\n.\r\n", 5);
	data_scan_init(&ds);
	data_scan(&ds, msg, 1003, out, &outlen, &done);
	CHECK(done);
	CHECK_INT(ds.long_line, 0);

	memset(msg, 'a', 999);
	memcpy(msg + 999, "\r\n.\r\n", 5);
	data_scan_init(&ds);
	data_scan(&ds, msg, 1004, out, &outlen, &done);
	CHECK(done);
	CHECK_INT(ds.long_line, 1);

	/* The same limits in the body, which is copied in runs. */
	memcpy(msg, "S: x\r\n\r\n", 8);
	memset(msg + 8, 'b', 998);
	memcpy(msg + 1006, "\r\n.\r\n", 5);
	data_scan_init(&ds);
	data_scan(&ds, msg, 1011, out, &outlen, &done);
	CHECK(done);
	CHECK_INT(ds.long_line, 0);
	CHECK_INT(outlen, 1008);
	memset(msg + 8, 'b', 999);
	memcpy(msg + 1007, "\r\n.\r\n", 5);
	data_scan_init(&ds);
	data_scan(&ds, msg, 1012, out, &outlen, &done);
	CHECK(done);
	CHECK_INT(ds.long_line, 1);

	/* A dot-stuffed line counts its stuffing dot: it is on the wire. */
	msg[0] = '.';
	memset(msg + 1, 'a', 998);
	memcpy(msg + 999, "\r\n.\r\n", 5);
	data_scan_init(&ds);
	data_scan(&ds, msg, 1004, out, &outlen, &done);
	CHECK_INT(ds.long_line, 1);
}

/*
 * Normalising mode: bare CR and LF become CRLF, a dot that would start a
 * line after them is stuffed, and no end marker appears where the sender
 * did not send CRLF "." CRLF.
 */
static const struct scan_case normalize_cases[] = {
	{ "a\nb\r\n.\r\n", "a\r\nb\r\n", 1, 8, 0, 1 },
	{ "a\rb\r\n.\r\n", "a\r\nb\r\n", 1, 8, 1, 0 },
	{ "a\n.\r\nb", "a\r\n..\r\nb", 0, 6, 0, 1 },
	{ "a\n.\nb", "a\r\n..\r\nb", 0, 5, 0, 1 },
	{ "a\r.\rb", "a\r\n..\r\nb", 0, 5, 1, 0 },
	{ "a\r\n.\rb", "a\r\n..\r\nb", 0, 6, 1, 0 },
	{ "a\r\n.\nb", "a\r\n..\r\nb", 0, 6, 0, 1 },
	{ "a\r\r\n.\r\n", "a\r\n\r\n", 1, 7, 1, 0 },
};

static void
test_scan_normalize_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(normalize_cases) / sizeof(normalize_cases[0]);
	    i++) {
		const struct scan_case *c = &normalize_cases[i];
		struct data_scan ds;
		char out[64];
		size_t outlen, used;
		int done;

		data_scan_init(&ds);
		ds.normalize = 1;
		used = data_scan(&ds, c->in, strlen(c->in), out, &outlen, &done);
		out[outlen] = '\0';
		CHECK_STR(out, c->want_out);
		CHECK_INT(done, c->want_done);
		CHECK_INT(used, c->want_used);
		CHECK_INT(ds.bare_cr, c->bare_cr);
		CHECK_INT(ds.bare_lf, c->bare_lf);
		CHECK(ds.normalized > 0);
	}
}

int
main(void)
{
	RUN(test_scan_table);
	RUN(test_scan_split);
	RUN(test_scan_counts_received);
	RUN(test_scan_line_limit);
	RUN(test_scan_flags_8bit_headers);
	RUN(test_scan_header_split);
	RUN(test_scan_normalize_table);
	CHECK_SUMMARY();
}
