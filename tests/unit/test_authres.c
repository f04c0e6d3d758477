/*
 * Tests of the Authentication-Results formatter (router/authres.c):
 * golden strings for typical results, folding, quoting, sanitizing of
 * peer text, and the error cases.
 */
#include <stdio.h>
#include <string.h>

#include "authres.h"
#include "check.h"

#define ID	"relay.example.net"

static char out[4096];

/* Check that every line of a field ends in CRLF and none passes max. */
static void
check_lines(const char *field, size_t max)
{
	const char *p = field, *crlf;
	size_t longest = 0;

	while ((crlf = strstr(p, "\r\n")) != NULL) {
		CHECK(memchr(p, '\n', (size_t)(crlf - p)) == NULL);
		CHECK(memchr(p, '\r', (size_t)(crlf - p)) == NULL);
		if ((size_t)(crlf - p) > longest)
			longest = (size_t)(crlf - p);
		p = crlf + 2;
	}
	CHECK_STR(p, "");
	if (longest > max)
		fprintf(stderr, "line of %zu characters in:\n%s", longest,
		    field);
	CHECK(longest <= max);
}

static void
authres_typical_results(void)
{
	struct authres_item items[3] = {
		{ "spf", "pass", NULL, 1,
		    { { "smtp.mailfrom", "sender.example" } } },
		{ "dkim", "pass", NULL, 2,
		    { { "header.d", "sender.example" },
		    { "header.s", "sel1" } } },
		{ "dmarc", "pass", NULL, 1,
		    { { "header.from", "sender.example" } } },
	};
	int n = authres_format(out, sizeof(out), ID, items, 3);

	CHECK_STR(out, "Authentication-Results: " ID ";\r\n"
	    "\tspf=pass smtp.mailfrom=sender.example;\r\n"
	    "\tdkim=pass header.d=sender.example header.s=sel1;\r\n"
	    "\tdmarc=pass header.from=sender.example\r\n");
	CHECK_INT(n, strlen(out));
	check_lines(out, AUTHRES_FOLD_AT);
}

static void
authres_addresses_and_policy(void)
{
	struct authres_item items[3] = {
		{ "spf", "softfail", NULL, 1,
		    { { "smtp.mailfrom", "bob.smith+tag@sender.example" } } },
		{ "dkim", "fail", "signature verification failed", 3,
		    { { "header.d", "sender.example" },
		    { "header.i", "@mail.sender.example" },
		    { "header.s", "2024" } } },
		{ "dmarc", "fail", NULL, 2,
		    { { "policy.dmarc", "reject" },
		    { "header.from", "sender.example" } } },
	};

	CHECK(authres_format(out, sizeof(out), ID, items, 3) > 0);
	CHECK_STR(out, "Authentication-Results: " ID ";\r\n"
	    "\tspf=softfail smtp.mailfrom=bob.smith+tag@sender.example;\r\n"
	    "\tdkim=fail reason=\"signature verification failed\""
	    " header.d=sender.example\r\n"
	    "\theader.i=@mail.sender.example header.s=2024;\r\n"
	    "\tdmarc=fail policy.dmarc=reject header.from=sender.example\r\n");
	check_lines(out, AUTHRES_FOLD_AT);
}

static void
authres_no_results(void)
{
	CHECK_INT(authres_format(out, sizeof(out), ID, NULL, 0),
	    strlen("Authentication-Results: " ID "; none\r\n"));
	CHECK_STR(out, "Authentication-Results: " ID "; none\r\n");
}

static void
authres_quoting(void)
{
	struct authres_item item = { "spf", "pass", "a token", 4, {
		{ "smtp.mailfrom", "\"odd local\"@sender.example" },
		{ "smtp.helo", "[192.0.2.1]" },
		{ "header.s", "back\\slash" },
		{ "policy.x", "" },
	} };

	CHECK(authres_format(out, sizeof(out), ID, &item, 1) > 0);
	CHECK_STR(out, "Authentication-Results: " ID ";\r\n"
	    "\tspf=pass reason=\"a token\""
	    " smtp.mailfrom=\"\\\"odd local\\\"@sender.example\"\r\n"
	    "\tsmtp.helo=\"[192.0.2.1]\" header.s=\"back\\\\slash\""
	    " policy.x=\"\"\r\n");
	check_lines(out, AUTHRES_FOLD_AT);

	/* A token reason is quoted as well. */
	item.reason = "ok";
	item.nprops = 0;
	CHECK(authres_format(out, sizeof(out), ID, &item, 1) > 0);
	CHECK_STR(out, "Authentication-Results: " ID ";\r\n"
	    "\tspf=pass reason=\"ok\"\r\n");
}

static void
authres_peer_text_sanitized(void)
{
	struct authres_item item = { "spf", "pass", "evil\r\nX-Injected: 1",
	    2, {
		{ "smtp.helo", "host\r\n\tX-Injected: yes" },
		{ "smtp.mailfrom", "b\xc3\xbcr\x01o@sender.example" },
	} };
	char big[1000];

	CHECK(authres_format(out, sizeof(out), ID, &item, 1) > 0);
	CHECK_STR(out, "Authentication-Results: " ID ";\r\n"
	    "\tspf=pass reason=\"evil??X-Injected: 1\""
	    " smtp.helo=\"host???X-Injected: yes\"\r\n"
	    "\tsmtp.mailfrom=b??r?o@sender.example\r\n");
	check_lines(out, AUTHRES_FOLD_AT);

	/* Long peer values are cut at AUTHRES_VALUE_MAX bytes. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	item.reason = big;
	item.nprops = 1;
	item.props[0].name = "header.s";
	item.props[0].value = big;
	CHECK(authres_format(out, sizeof(out), ID, &item, 1) > 0);
	CHECK(strstr(out, "reason=\"") != NULL);
	CHECK_INT(strcspn(strstr(out, "reason=\"") + 8, "\""),
	    AUTHRES_REASON_MAX);
	CHECK(strstr(out, "header.s=") != NULL);
	CHECK_INT(strcspn(strstr(out, "header.s=") + 9, "\r"),
	    AUTHRES_VALUE_MAX);
	/* One atom longer than a line stays whole, well under 998. */
	check_lines(out, 300);
}

static void
authres_folding(void)
{
	struct authres_item item = { "dkim", "pass", NULL, 6, {
		{ "header.d", "a-rather-long-signing-domain.example" },
		{ "header.s", "selector-2024-rotation-one" },
		{ "header.i", "someone@a-rather-long-signing-domain.example" },
		{ "header.b", "AbCdEfGh" },
		{ "header.a", "rsa-sha256" },
		{ "policy.x", "y" },
	} };

	CHECK(authres_format(out, sizeof(out), ID, &item, 1) > 0);
	CHECK_STR(out, "Authentication-Results: " ID ";\r\n"
	    "\tdkim=pass header.d=a-rather-long-signing-domain.example\r\n"
	    "\theader.s=selector-2024-rotation-one\r\n"
	    "\theader.i=someone@a-rather-long-signing-domain.example"
	    " header.b=AbCdEfGh\r\n"
	    "\theader.a=rsa-sha256 policy.x=y\r\n");
	check_lines(out, AUTHRES_FOLD_AT);
}

static void
authres_authserv_id(void)
{
	struct authres_item item = { "spf", "none", NULL, 0, { { 0 } } };
	char longid[80];

	CHECK(authres_format(out, sizeof(out), "relay one", &item, 1) > 0);
	CHECK_STR(out, "Authentication-Results: \"relay one\";\r\n"
	    "\tspf=none\r\n");

	/* An id too long for the first line moves to the next. */
	memset(longid, 'r', 60);
	memcpy(longid + 60, ".example", 9);
	CHECK(authres_format(out, sizeof(out), longid, &item, 1) > 0);
	CHECK(strncmp(out, "Authentication-Results:\r\n\trrrr", 30) == 0);
	check_lines(out, AUTHRES_FOLD_AT);

	CHECK_INT(authres_format(out, sizeof(out), "", &item, 1), -1);
	CHECK_INT(authres_format(out, sizeof(out), NULL, &item, 1), -1);
}

static void
authres_invalid_items(void)
{
	struct authres_item item = { "spf", "pass", NULL, 1,
	    { { "smtp.mailfrom", "sender.example" } } };

	item.method = "sp f";
	CHECK_INT(authres_format(out, sizeof(out), ID, &item, 1), -1);
	CHECK_STR(out, "");
	item.method = "spf";
	item.result = "pass;";
	CHECK_INT(authres_format(out, sizeof(out), ID, &item, 1), -1);
	item.result = NULL;
	CHECK_INT(authres_format(out, sizeof(out), ID, &item, 1), -1);
	item.result = "pass";
	item.props[0].name = "mailfrom";
	CHECK_INT(authres_format(out, sizeof(out), ID, &item, 1), -1);
	item.props[0].name = "smtp.";
	CHECK_INT(authres_format(out, sizeof(out), ID, &item, 1), -1);
	item.props[0].name = "smtp.mail from";
	CHECK_INT(authres_format(out, sizeof(out), ID, &item, 1), -1);
	item.props[0].name = NULL;
	CHECK_INT(authres_format(out, sizeof(out), ID, &item, 1), -1);
	item.props[0].name = "smtp.mailfrom";
	item.nprops = AUTHRES_PROPS_MAX + 1;
	CHECK_INT(authres_format(out, sizeof(out), ID, &item, 1), -1);
	item.nprops = 1;
	CHECK(authres_format(out, sizeof(out), ID, &item, 1) > 0);
}

static void
authres_buffer_bounds(void)
{
	struct authres_item item = { "spf", "pass", NULL, 1,
	    { { "smtp.mailfrom", "sender.example" } } };
	const char *want = "Authentication-Results: " ID ";\r\n"
	    "\tspf=pass smtp.mailfrom=sender.example\r\n";
	char small[128];
	size_t len = strlen(want);

	CHECK_INT(authres_format(small, len + 1, ID, &item, 1), len);
	CHECK_STR(small, want);
	CHECK_INT(authres_format(small, len, ID, &item, 1), -1);
	CHECK_STR(small, "");
	CHECK_INT(authres_format(small, 1, ID, &item, 1), -1);
	CHECK_INT(authres_format(small, 0, ID, &item, 1), -1);
}

/*
 * Reading results back (RFC 8601 section 2.2): comments, quoted strings,
 * method versions and case do not hide or fake a result.
 */
static void
authres_find_results(void)
{
	static const struct {
		const char	*value;
		const char	*method;
		const char	*want;		/* NULL: not found */
	} cases[] = {
		{ "i=1; mx.example; spf=pass smtp.mailfrom=a.example; "
		    "dmarc=fail header.from=b.example", "dmarc", "fail" },
		{ "i=1; mx.example; spf=pass smtp.mailfrom=a.example",
		    "dmarc", NULL },
		{ "mx.example; DMARC=Pass (p=reject) header.from=b.example",
		    "dmarc", "pass" },
		{ "mx.example; dkim/1 = pass header.d=b.example", "dkim",
		    "pass" },
		{ "mx.example; spf=fail (dmarc=pass; not really) "
		    "smtp.mailfrom=x", "dmarc", NULL },
		{ "mx.example; x-note=\"; dmarc=pass\"; dmarc=fail", "dmarc",
		    "fail" },
		{ "mx.example; dkim-adsp=pass; dkim=neutral", "dkim",
		    "neutral" },
		{ "mx.example (dmarc=pass); none", "dmarc", NULL },
		{ "mx.example; dmarc=", "dmarc", NULL },
		/* The authserv-id is not a result, even when it looks like one. */
		{ "i=1; dmarc=pass; spf=fail", "dmarc", NULL },
		{ "dmarc=pass; spf=fail", "dmarc", NULL },
		{ "i = 2 ; mx.example ; dmarc=pass", "dmarc", "pass" },
	};
	char result[16];
	size_t i;
	int found;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		found = authres_find_result(cases[i].value, cases[i].method,
		    result, sizeof(result));
		if (found != (cases[i].want != NULL))
			fprintf(stderr, "case %zu: \"%s\"\n", i,
			    cases[i].value);
		CHECK_INT(found, cases[i].want != NULL);
		if (found && cases[i].want != NULL)
			CHECK_STR(result, cases[i].want);
	}
	/* A keyword longer than the buffer is found but left empty. */
	CHECK_INT(authres_find_result("x; dmarc=averyveryverylongresult",
	    "dmarc", result, 8), 1);
	CHECK_STR(result, "");
}

int
main(void)
{
	RUN(authres_typical_results);
	RUN(authres_addresses_and_policy);
	RUN(authres_no_results);
	RUN(authres_quoting);
	RUN(authres_peer_text_sanitized);
	RUN(authres_folding);
	RUN(authres_authserv_id);
	RUN(authres_invalid_items);
	RUN(authres_buffer_bounds);
	RUN(authres_find_results);
	CHECK_SUMMARY();
}
