/*
 * libFuzzer target for the DKIM tag-list parsers: the input is parsed as
 * a DKIM-Signature, ARC-Message-Signature and ARC-Seal value, as a key
 * record and as the start of an ARC-Authentication-Results value.  Any
 * input must parse or fail cleanly, and what a parse returns must lie
 * inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "dkim.h"

static void
check_taglist(const char *s, size_t size)
{
	struct dkim_taglist tl;
	const struct dkim_tag *t;
	size_t i;

	if (dkim_taglist_parse(&tl, s, size) < 0)
		return;
	if (tl.count > DKIM_TAGS_MAX)
		abort();
	for (i = 0; i < tl.count; i++) {
		t = &tl.tags[i];
		if (t->name < s || t->name + t->name_len > s + size ||
		    t->value < s || t->value + t->value_len > s + size ||
		    t->raw_start > t->raw_end || t->raw_end > size ||
		    t->name_len == 0)
			abort();
	}
}

static void
check_sig(const struct dkim_sig *sig, size_t size)
{
	size_t i;

	if (sig->b_raw_start > sig->b_raw_end || sig->b_raw_end > size ||
	    sig->b_len == 0 || sig->b_len > sizeof(sig->b) ||
	    sig->domain[0] == '\0' || sig->selector[0] == '\0' ||
	    sig->alg == DKIM_ALG_UNKNOWN)
		abort();
	for (i = 0; i < sig->h_count; i++)
		if (sig->h[i].len == 0 ||
		    (size_t)sig->h[i].off + sig->h[i].len > size)
			abort();
	if (sig->kind != DKIM_SIG_DKIM && (sig->instance < 1 ||
	    sig->instance > 50))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char keysig[] = "v=1; a=rsa-sha256; d=e.org; s=s; "
	    "h=from; b=dGVzdA==; bh=dGVzdA==";
	static const enum dkim_sig_kind kinds[] = {
		DKIM_SIG_DKIM, DKIM_SIG_AMS, DKIM_SIG_SEAL,
	};
	const char *s = (const char *)data, *reason;
	struct dkim_sig sig;
	struct dkim_key key;
	size_t i;

	check_taglist(s, size);
	for (i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
		reason = NULL;
		if (dkim_sig_parse(&sig, kinds[i], s, size, &reason) == 0)
			check_sig(&sig, size);
		else if (reason == NULL)
			abort();
	}
	if (dkim_sig_parse(&sig, DKIM_SIG_DKIM, keysig, strlen(keysig),
	    &reason) != 0)
		abort();
	if (dkim_key_parse(&key, &sig, s, size, &reason) == DKIM_PASS &&
	    key.rsa == NULL && key.alg != DKIM_ALG_ED25519_SHA256)
		abort();
	dkim_key_clear(&key);
	if (arc_aar_instance(s, size) > ARC_INSTANCE_MAX)
		abort();
	return 0;
}
