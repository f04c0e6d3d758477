/*
 * Unit tests for the RFC 5321 path parser (router/addr.c).
 */
#include <string.h>

#include "addr.h"
#include "check.h"

struct path_case {
	const char	*in;
	int		 allow_null;
	enum addr_status want;
	const char	*local;
	const char	*domain;
	size_t		 end;
};

static const struct path_case path_cases[] = {
	{ "<alice@example.com>", 0, ADDR_OK, "alice", "example.com", 19 },
	{ "<Alice@EXAMPLE.com> SIZE=10", 0, ADDR_OK, "Alice", "example.com", 19 },
	{ "<>", 1, ADDR_OK, "", "", 2 },
	{ "<>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	/* RFC 5321 4.1.2: quoted local parts may contain space, @ and > */
	{ "<\"a b\"@example.com>", 0, ADDR_OK, "a b", "example.com", 19 },
	{ "<\"a@b\"@example.com>", 0, ADDR_OK, "a@b", "example.com", 19 },
	{ "<\"a>b\"@example.com>", 0, ADDR_OK, "a>b", "example.com", 19 },
	{ "<\"a\\\"b\"@example.com>", 0, ADDR_OK, "a\"b", "example.com", 20 },
	/* RFC 5321 4.1.2 and C.: source routes are accepted and ignored */
	{ "<@relay.example,@b.example:bob@example.com>", 0, ADDR_OK, "bob",
	    "example.com", 43 },
	{ "<a.b@example.com>", 0, ADDR_OK, "a.b", "example.com", 17 },
	{ "<a+tag@example.com>", 0, ADDR_OK, "a+tag", "example.com", 19 },
	{ "<user@[127.0.0.1]>", 0, ADDR_OK, "user", "[127.0.0.1]", 18 },
	/* Not paths by the grammar. */
	{ "alice@example.com", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<alice@example.com", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<alice>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<@example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<.a@example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a.@example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a..b@example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a@example.com.>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a@exa..mple.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a@-example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a@example-.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a b@example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a@b@example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a@example.com@>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<a\r@example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<\"a\nb\"@example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	{ "<\"unterminated@example.com>", 0, ADDR_SYNTAX, NULL, NULL, 0 },
	/* Local parts up to ADDR_LOCAL_MAX (128) octets, not more. */
	{ "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@example.com>", 0, ADDR_TOO_LONG, NULL, NULL, 0 },
};

static void
test_parse_path_table(void)
{
	size_t i, end;

	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		struct addr a;
		enum addr_status st;

		end = 0;
		st = addr_parse_path(&a, c->in, strlen(c->in), c->allow_null,
		    &end);
		CHECK_INT(st, c->want);
		if (st != ADDR_OK || c->want != ADDR_OK)
			continue;
		CHECK_STR(a.local, c->local);
		CHECK_STR(a.domain, c->domain);
		CHECK_INT(end, c->end);
	}
}

static void
test_format_requotes(void)
{
	struct addr a;
	char out[300];

	CHECK_INT(addr_parse_mailbox(&a, "\"a b\"@example.com"), ADDR_OK);
	CHECK_INT(addr_format(&a, out, sizeof(out)), 0);
	CHECK_STR(out, "\"a b\"@example.com");
	CHECK_INT(addr_parse_mailbox(&a, "\"a\\\"b\"@example.com"), ADDR_OK);
	CHECK_INT(addr_format(&a, out, sizeof(out)), 0);
	CHECK_STR(out, "\"a\\\"b\"@example.com");
	/* A quoted local part that is a valid dot-string loses its quotes. */
	CHECK_INT(addr_parse_mailbox(&a, "\"alice\"@example.com"), ADDR_OK);
	CHECK_INT(addr_format(&a, out, sizeof(out)), 0);
	CHECK_STR(out, "alice@example.com");
	CHECK_INT(addr_format_local("a..b", out, sizeof(out)), 0);
	CHECK_STR(out, "\"a..b\"");
	CHECK_INT(addr_format_local("abc", out, 3), -1);
}

static void
test_parse_mailbox(void)
{
	struct addr a;

	CHECK_INT(addr_parse_mailbox(&a, "SRS0=abcd=2W=example.org=bob@fwd.example"),
	    ADDR_OK);
	CHECK_STR(a.local, "SRS0=abcd=2W=example.org=bob");
	CHECK_STR(a.domain, "fwd.example");
	CHECK_INT(addr_parse_mailbox(&a, "bob@example.com>x"), ADDR_SYNTAX);
	CHECK_INT(addr_parse_mailbox(&a, ""), ADDR_OK);
	CHECK(a.null);
}

int
main(void)
{
	RUN(test_parse_path_table);
	RUN(test_format_requotes);
	RUN(test_parse_mailbox);
	CHECK_SUMMARY();
}
