/*
 * libFuzzer target for the RFC 5321 path parser: any input must parse or
 * fail cleanly, and a parsed address must format and parse back to the
 * same address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr a, b;
	char out[600];
	size_t end;

	if (addr_parse_path(&a, (const char *)data, size, 1, &end) != ADDR_OK)
		return 0;
	if (end > size)
		abort();
	if (addr_format(&a, out, sizeof(out)) < 0)
		abort();
	if (addr_parse_mailbox(&b, out) != ADDR_OK)
		abort();
	if (strcmp(a.local, b.local) != 0 || strcmp(a.domain, b.domain) != 0)
		abort();
	return 0;
}
