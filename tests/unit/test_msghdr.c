/*
 * Tests of the header section collector (router/msghdr.c): field
 * boundaries, folding, names and values, the body offset, any split of
 * the input into pieces, and the field and byte limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "msghdr.h"

/* Feed msg in pieces of step bytes (all at once when step is 0). */
static size_t
feed(struct msghdr_section *h, const char *msg, size_t len, size_t step)
{
	size_t pos = 0, n, used = 0;

	while (pos < len) {
		n = step == 0 || step > len - pos ? len - pos : step;
		used += msghdr_update(h, msg + pos, n);
		pos += n;
	}
	return used;
}

static void
check_field(const struct msghdr_section *h, size_t i, const char *name,
    const char *raw)
{
	const char *p;
	size_t len;

	CHECK(i < msghdr_count(h));
	if (i >= msghdr_count(h))
		return;
	p = msghdr_name(h, i, &len);
	CHECK_INT(len, strlen(name));
	CHECK(strncmp(p, name, len) == 0);
	p = msghdr_raw(h, i, &len);
	CHECK_INT(len, strlen(raw));
	CHECK(len == strlen(raw) && memcmp(p, raw, len) == 0);
}

static void
check_value(const struct msghdr_section *h, size_t i, const char *want)
{
	char out[256];

	CHECK_INT(msghdr_value(h, i, out, sizeof(out)), strlen(want));
	CHECK_STR(out, want);
}

static const char message[] =
    "Received: from a\r\n"
    "\tby b;  date\r\n"
    "From: Alice <a@example.org>\r\n"
    "Subject : hello\r\n"
    " world  \r\n"
    "X-Empty:\r\n"
    "\r\n"
    "Body line\r\n"
    "Subject: not a header\r\n";

static void
fields_and_values(void)
{
	struct msghdr_section h;
	size_t step, used;
	const char *p;
	size_t len;

	for (step = 0; step < 40; step++) {
		msghdr_init(&h);
		used = feed(&h, message, sizeof(message) - 1, step);
		CHECK(msghdr_done(&h));
		CHECK(!msghdr_overflow(&h));
		CHECK_INT(used, strlen(message) - strlen("Body line\r\n"
		    "Subject: not a header\r\n"));
		CHECK_INT(msghdr_body_offset(&h), used);
		CHECK_INT(msghdr_count(&h), 4);
		check_field(&h, 0, "Received",
		    "Received: from a\r\n\tby b;  date\r\n");
		check_field(&h, 1, "From", "From: Alice <a@example.org>\r\n");
		check_field(&h, 2, "Subject",
		    "Subject : hello\r\n world  \r\n");
		check_field(&h, 3, "X-Empty", "X-Empty:\r\n");
		check_value(&h, 0, "from a\tby b;  date");
		check_value(&h, 2, "hello world");
		check_value(&h, 3, "");
		p = msghdr_raw_value(&h, 2, &len);
		CHECK_INT(len, strlen(" hello\r\n world  "));
		CHECK(strncmp(p, " hello\r\n world  ", len) == 0);
		msghdr_free(&h);
	}
}

static void
find_by_name(void)
{
	const char *msg = "To: a\r\nTO: b\r\nfrom: c\r\nTo: d\r\n\r\n";
	struct msghdr_section h;

	msghdr_init(&h);
	feed(&h, msg, strlen(msg), 0);
	CHECK_INT(msghdr_find(&h, "to", 0), 0);
	CHECK_INT(msghdr_find(&h, "to", 1), 1);
	CHECK_INT(msghdr_find(&h, "TO", 2), 3);
	CHECK(msghdr_find(&h, "to", 4) == MSGHDR_NONE);
	CHECK_INT(msghdr_find(&h, "From", 0), 2);
	CHECK(msghdr_find(&h, "Fro", 0) == MSGHDR_NONE);
	CHECK(msghdr_find(&h, "", 0) == MSGHDR_NONE);
	CHECK(msghdr_name_is(&h, 2, "FROM"));
	CHECK(!msghdr_name_is(&h, 2, "To"));
	/* Once done, further bytes are not header bytes. */
	CHECK_INT(msghdr_update(&h, "X: y\r\n", 6), 0);
	CHECK_INT(msghdr_count(&h), 4);
	msghdr_free(&h);
}

/* Lines that are not valid fields are kept without a name. */
static void
nameless_lines(void)
{
	const char *msg = " leading continuation\r\n"
	    "no colon here\r\n"
	    "Bad Name: x\r\n"
	    ": empty name\r\n"
	    "Ok:1\r\n"
	    "\r\n";
	struct msghdr_section h;
	size_t len;

	msghdr_init(&h);
	feed(&h, msg, strlen(msg), 3);
	CHECK_INT(msghdr_count(&h), 5);
	CHECK(msghdr_name(&h, 0, &len) != NULL && len == 0);
	CHECK(msghdr_name(&h, 1, &len) != NULL && len == 0);
	CHECK(msghdr_name(&h, 2, &len) != NULL && len == 0);
	CHECK(msghdr_name(&h, 3, &len) != NULL && len == 0);
	check_field(&h, 4, "Ok", "Ok:1\r\n");
	check_value(&h, 4, "1");
	check_value(&h, 1, "no colon here");
	CHECK(msghdr_find(&h, "Bad Name", 0) == MSGHDR_NONE);
	msghdr_free(&h);
}

static void
header_ends(void)
{
	struct msghdr_section h;
	size_t len;

	/* No header at all: the body starts after the first CRLF. */
	msghdr_init(&h);
	CHECK_INT(msghdr_update(&h, "\r\nbody\r\n", 8), 2);
	CHECK(msghdr_done(&h));
	CHECK_INT(msghdr_count(&h), 0);
	CHECK_INT(msghdr_body_offset(&h), 2);
	msghdr_free(&h);

	/* No empty line: the message ends in the header section. */
	msghdr_init(&h);
	CHECK_INT(msghdr_update(&h, "A: 1\r\nB: 2", 10), 10);
	CHECK(!msghdr_done(&h));
	CHECK_INT(msghdr_count(&h), 1);
	msghdr_finish(&h);
	CHECK(msghdr_done(&h));
	CHECK_INT(msghdr_count(&h), 2);
	check_field(&h, 1, "B", "B: 2");
	check_value(&h, 1, "2");
	msghdr_raw_value(&h, 1, &len);
	CHECK_INT(len, 2);
	msghdr_free(&h);

	/* An unterminated continuation line joins the field before. */
	msghdr_init(&h);
	msghdr_update(&h, "A: 1\r\n 2", 8);
	msghdr_finish(&h);
	CHECK_INT(msghdr_count(&h), 1);
	check_value(&h, 0, "1 2");
	msghdr_free(&h);

	/* Bare LF line ends. */
	msghdr_init(&h);
	CHECK_INT(msghdr_update(&h, "A: 1\n b\nC: 2\n\nbody", 18), 14);
	CHECK_INT(msghdr_count(&h), 2);
	check_field(&h, 0, "A", "A: 1\n b\n");
	check_value(&h, 0, "1 b");
	msghdr_free(&h);
}

static void
value_truncated(void)
{
	const char *msg = "Subject: 0123456789\r\n\r\n";
	char out[8];
	struct msghdr_section h;

	msghdr_init(&h);
	feed(&h, msg, strlen(msg), 0);
	CHECK_INT(msghdr_value(&h, 0, out, sizeof(out)), 10);
	CHECK_STR(out, "0123456");
	CHECK_INT(msghdr_value(&h, 0, out, 1), 10);
	CHECK_STR(out, "");
	msghdr_free(&h);
}

/* Past MSGHDR_FIELDS_MAX fields: the first ones stay, the end is found. */
static void
limit_fields(void)
{
	struct msghdr_section h;
	char line[32];
	size_t i, n, total = 0;

	msghdr_init(&h);
	for (i = 0; i < MSGHDR_FIELDS_MAX + 5; i++) {
		n = (size_t)snprintf(line, sizeof(line), "X-%zu: v\r\n", i);
		total += msghdr_update(&h, line, n);
		if (i == MSGHDR_FIELDS_MAX + 2)
			total += msghdr_update(&h, " continued\r\n", 12);
	}
	total += msghdr_update(&h, "\r\nbody", 6);
	CHECK(msghdr_done(&h));
	CHECK(msghdr_overflow(&h));
	CHECK_INT(msghdr_count(&h), MSGHDR_FIELDS_MAX);
	CHECK_INT(msghdr_body_offset(&h), total);
	check_field(&h, MSGHDR_FIELDS_MAX - 1, "X-999", "X-999: v\r\n");
	msghdr_free(&h);
}

/* Past MSGHDR_BYTES_MAX: the field that crossed it is dropped whole. */
static void
limit_bytes(void)
{
	struct msghdr_section h;
	char *chunk;
	size_t i, size = 64 * 1024, total = 0;

	chunk = malloc(size);
	memset(chunk, 'a', size);
	chunk[0] = ' ';
	msghdr_init(&h);
	total += msghdr_update(&h, "First: 1\r\nBig: x", 16);
	for (i = 0; i < 5; i++) {
		total += msghdr_update(&h, "\r\n", 2);
		total += msghdr_update(&h, chunk, size);
	}
	total += msghdr_update(&h, "\r\nAfter: 2\r\n\r\n", 15);
	CHECK(msghdr_done(&h));
	CHECK(msghdr_overflow(&h));
	CHECK_INT(msghdr_count(&h), 1);
	check_field(&h, 0, "First", "First: 1\r\n");
	CHECK_INT(msghdr_body_offset(&h), total);
	msghdr_free(&h);

	/* One line longer than the limit, then normal fields. */
	chunk[0] = 'b';
	msghdr_init(&h);
	msghdr_update(&h, "A: 1\r\nLong: ", 12);
	for (i = 0; i < 5; i++)
		msghdr_update(&h, chunk, size);
	msghdr_update(&h, "\r\nB: 2\r\n\r\n", 10);
	CHECK(msghdr_done(&h));
	CHECK(msghdr_overflow(&h));
	CHECK_INT(msghdr_count(&h), 1);
	check_field(&h, 0, "A", "A: 1\r\n");
	msghdr_free(&h);
	free(chunk);
}

int
main(void)
{
	log_init("test_msghdr", LOG_LVL_WARN);
	RUN(fields_and_values);
	RUN(find_by_name);
	RUN(nameless_lines);
	RUN(header_ends);
	RUN(value_truncated);
	RUN(limit_fields);
	RUN(limit_bytes);
	CHECK_SUMMARY();
}
