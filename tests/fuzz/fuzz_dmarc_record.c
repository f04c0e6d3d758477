/*
 * libFuzzer target for the DMARC record parser (dmarc_record_parse) and,
 * on the same bytes, the From field parser (dmarc_from_parse): any input
 * must parse or fail cleanly, and what parses must satisfy the documented
 * invariants of each result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"

static void
check_record(const uint8_t *data, size_t size)
{
	struct dmarc_record rec;

	if (dmarc_record_parse(&rec, (const char *)data, size) !=
	    DMARC_PARSE_OK)
		return;
	if (rec.pct > 100 || rec.p > DMARC_POLICY_REJECT ||
	    rec.sp > DMARC_POLICY_REJECT)
		abort();
	if (!rec.sp_set && rec.sp != rec.p)
		abort();
	if (rec.p_fallback && (rec.p != DMARC_POLICY_NONE || rec.sp_set ||
	    !rec.rua_valid))
		abort();
}

static void
check_from(const uint8_t *data, size_t size)
{
	struct dmarc_from from;
	const char *values[1] = { (const char *)data };
	size_t lens[1] = { size }, i;

	switch (dmarc_from_parse(&from, values, lens, 1)) {
	case DMARC_FROM_OK:
		if (from.ndomains != 1 || from.truncated)
			abort();
		break;
	case DMARC_FROM_MULTIPLE_DOMAINS:
		if (from.ndomains < 2 && !from.truncated)
			abort();
		break;
	case DMARC_FROM_UNPARSEABLE:
		if (from.ndomains != 0)
			abort();
		return;
	default:
		abort();
	}
	for (i = 0; i < from.ndomains; i++)
		if (from.domains[i][0] == '\0' ||
		    strlen(from.domains[i]) >= DMARC_DOMAIN_MAX)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_record(data, size);
	check_from(data, size);
	return 0;
}
