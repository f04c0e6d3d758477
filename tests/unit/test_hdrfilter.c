/*
 * Tests of the removal of Authentication-Results fields that claim the
 * relay's authserv-id (router/hdrfilter.c, RFC 8601 section 5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hdrfilter.h"

#define ID	"mx.relay.example"

/* Filter msg in pieces of step bytes (0: whole); returns a new string. */
static char *
filter(const char *msg, size_t step, unsigned *removed)
{
	size_t len = strlen(msg), i, n, o = 0;
	struct hdrfilter *f = malloc(sizeof(*f));
	char *out = malloc(HDRFILTER_OUT(len) + 1);

	hdrfilter_init(f, ID);
	for (i = 0; i < len; i += n) {
		n = step == 0 || len - i < step ? len - i : step;
		o += hdrfilter_run(f, msg + i, n, out + o);
	}
	o += hdrfilter_finish(f, out + o);
	out[o] = '\0';
	*removed = f->removed;
	free(f);
	return out;
}

/* Whole, byte by byte and in pieces of 7: always the same result. */
static void
check_filter(const char *msg, const char *want, unsigned want_removed)
{
	static const size_t steps[] = { 0, 1, 7 };
	unsigned removed;
	size_t i;
	char *got;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		got = filter(msg, steps[i], &removed);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "step %zu:\n%s\nwant:\n%s\n", steps[i],
			    got, want);
		CHECK_STR(got, want);
		CHECK_INT(removed, want_removed);
		free(got);
	}
}

static void
hdrfilter_removes_own_id(void)
{
	check_filter(
	    "Received: from a\r\n"
	    "Authentication-Results: " ID "; dmarc=pass\r\n"
	    "\theader.from=victim.example\r\n"
	    "From: x@victim.example\r\n\r\n"
	    "Authentication-Results: " ID "; body text stays\r\n",
	    "Received: from a\r\n"
	    "From: x@victim.example\r\n\r\n"
	    "Authentication-Results: " ID "; body text stays\r\n", 1);
}

static void
hdrfilter_spellings_of_own_id(void)
{
	static const char *const fields[] = {
		"authentication-results: MX.Relay.Example; spf=pass\r\n",
		"Authentication-Results : " ID ";spf=pass\r\n",
		"Authentication-Results: (forged) " ID "; spf=pass\r\n",
		"Authentication-Results: (a (nested) comment) " ID ";\r\n",
		"Authentication-Results: \"" ID "\"; spf=pass\r\n",
		"Authentication-Results:\r\n " ID ";\r\n spf=pass\r\n",
		"Authentication-Results: " ID " 1; spf=pass\r\n",
		"Authentication-Results: " ID "(c); spf=pass\r\n",
		"Authentication-Results: " ID "\r\n",
	};
	char msg[512];
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		snprintf(msg, sizeof(msg), "A: 1\r\n%sB: 2\r\n\r\nbody\r\n",
		    fields[i]);
		check_filter(msg, "A: 1\r\nB: 2\r\n\r\nbody\r\n", 1);
	}
}

/* Fields of other servers and look-alike names pass byte for byte. */
static void
hdrfilter_keeps_other_fields(void)
{
	static const char *const fields[] = {
		"Authentication-Results: mx.other.example; spf=pass\r\n",
		"Authentication-Results: " ID ".evil.example; spf=pass\r\n",
		"Authentication-Results: x" ID "; spf=pass\r\n",
		"Authentication-Results: (" ID ") other.example; none\r\n",
		"X-Authentication-Results: " ID "; spf=pass\r\n",
		"Authentication-Results-Copy: " ID "; spf=pass\r\n",
		"ARC-Authentication-Results: i=1; " ID "; spf=pass\r\n",
		"Authentication: " ID "\r\n",
		"Authentication-Results: \"" ID "\r\n",
		"Authentication-Results:\r\n",
		"Authentication-Results \r\n",
	};
	char msg[512];
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		snprintf(msg, sizeof(msg), "A: 1\r\n%sB: 2\r\n\r\nbody\r\n",
		    fields[i]);
		check_filter(msg, msg, 0);
	}
}

/* A field longer than the filter can keep back is judged on its start. */
static void
hdrfilter_long_fields(void)
{
	size_t n = HDRFILTER_HOLD_MAX * 2;
	char *own = malloc(n + 256), *other = malloc(n + 256);
	char *pad = malloc(n + 1);

	memset(pad, 'x', n);
	pad[n] = '\0';
	snprintf(own, n + 256, "A: 1\r\nAuthentication-Results: " ID
	    "; x=%s\r\n\tmore\r\nB: 2\r\n\r\n", pad);
	check_filter(own, "A: 1\r\nB: 2\r\n\r\n", 1);
	snprintf(other, n + 256, "A: 1\r\nAuthentication-Results: other; "
	    "x=%s\r\n\tmore\r\nB: 2\r\n\r\n", pad);
	check_filter(other, other, 0);
	free(own);
	free(other);
	free(pad);
}

/* A message that ends inside its header section. */
static void
hdrfilter_no_body(void)
{
	check_filter("A: 1\r\nAuthentication-Results: " ID "; none\r\n",
	    "A: 1\r\n", 1);
	check_filter("A: 1\r\nAuthentication-Re", "A: 1\r\nAuthentication-Re",
	    0);
	check_filter("", "", 0);
}

int
main(void)
{
	RUN(hdrfilter_removes_own_id);
	RUN(hdrfilter_spellings_of_own_id);
	RUN(hdrfilter_keeps_other_fields);
	RUN(hdrfilter_long_fields);
	RUN(hdrfilter_no_body);
	CHECK_SUMMARY();
}
