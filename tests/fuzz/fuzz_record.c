/*
 * libFuzzer target for the ER1 record parsers, which read TXT data from
 * any DNS server: the rule parser, the domain record parser and the full
 * verification path with a fixed key set and relay key.  The first input
 * byte picks the parser; the rest is the record text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "record.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rec_relay_key relay;
	static struct rec_domain dom;
	static int ready;
	struct rec_rule_fields fields;
	struct rec_rule rule;
	const char *txt;
	size_t len;

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		memset(relay.sec, 2, sizeof(relay.sec));
		crypto_scalarmult_base(relay.pub, relay.sec);
		relay.kid = rec_kid(relay.pub, sizeof(relay.pub));
		memset(dom.salt, 3, sizeof(dom.salt));
		dom.nkeys = 1;
		memset(dom.keys[0].pub, 4, sizeof(dom.keys[0].pub));
		dom.keys[0].kid = rec_kid(dom.keys[0].pub, sizeof(dom.keys[0].pub));
		ready = 1;
	}
	if (size < 1)
		return 0;
	txt = (const char *)data + 1;
	len = size - 1;
	switch (data[0] % 3) {
	case 0:
		if (rec_rule_parse(&fields, txt, len) == REC_OK &&
		    (fields.nsealed > REC_MAX_RELAYS ||
		    fields.boxes_len > sizeof(fields.boxes)))
			abort();
		break;
	case 1: {
		struct rec_domain d;

		if (rec_domain_parse(&d, &txt, &len, 1) == REC_OK &&
		    d.nkeys > REC_MAX_KEYS)
			abort();
		break;
	}
	default:
		if (rec_rule_verify(&rule, &dom, "a._er.example.com.",
		    "example.com", txt, len, &relay, 0) == REC_OK)
			abort();	/* nobody holds the secret of key 0x04... */
		break;
	}
	return 0;
}
