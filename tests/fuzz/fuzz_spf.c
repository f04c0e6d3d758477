/*
 * libFuzzer target for the SPF record parser and macro expander
 * (router/spf.c).  The input up to the first newline is parsed as a
 * record, then expanded as a domain-spec and as explanation text.  The
 * rest of the input is the value of the l macro.  Parsing and expansion
 * must finish cleanly, and every expansion must report the length it
 * wrote.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

static void
expand(const struct spf_macro_vars *vars, enum spf_macro_context ctx,
    const char *in, size_t len, size_t outsz)
{
	char out[1024];
	int n;

	n = spf_macro_expand(vars, ctx, in, len, out, outsz);
	if (n == SPF_MACRO_SYNTAX)
		return;
	if (memchr(out, '\0', outsz) == NULL)
		abort();
	if (n >= 0 && (size_t)n != strlen(out))
		abort();
	if (n != SPF_MACRO_TOO_LONG && n < 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spf_macro_vars vars = {
		.sender = "strong-bad@email.example.com",
		.sender_domain = "email.example.com",
		.domain = "email.example.com",
		.ip = "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
		    "C.B.0.1",
		.validated = NULL,
		.ip_version = "ip6",
		.helo = "mx.example.org",
		.client = "2001:db8::cb01",
		.receiver = "relay.example.net",
		.timestamp = 1700000000,
	};
	const char *text = (const char *)data, *nl;
	struct spf_record *rec;
	char problem[128], local[SPF_MACRO_VALUE_MAX + 8];
	size_t len = size, rest;

	if ((nl = memchr(text, '\n', size)) != NULL) {
		len = (size_t)(nl - text);
		rest = size - len - 1;
		if (rest >= sizeof(local))
			rest = sizeof(local) - 1;
		memcpy(local, nl + 1, rest);
		local[rest] = '\0';
		vars.local = local;
	}
	rec = spf_record_parse(text, len, problem, sizeof(problem));
	if (rec != NULL && spf_record_mechanisms(rec) > SPF_MAX_TERMS)
		abort();
	if (rec == NULL && memchr(problem, '\0', sizeof(problem)) == NULL)
		abort();
	spf_record_free(rec);
	expand(&vars, SPF_MACRO_DOMAIN, text, len, 1024);
	expand(&vars, SPF_MACRO_EXPLANATION, text, len, 1024);
	expand(&vars, SPF_MACRO_EXPLANATION, text, len, 7);
	return 0;
}
