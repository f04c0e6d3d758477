/*
 * libFuzzer target for the filter that removes Authentication-Results
 * fields claiming the relay's authserv-id (hdrfilter_run).  The first
 * input byte sets the piece size the data is fed in.  Invariants: the
 * output never exceeds the input, it equals the input when no field was
 * removed, and any piece size gives the same output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hdrfilter.h"

static size_t
run(const uint8_t *data, size_t size, size_t step, char *out,
    unsigned *removed)
{
	struct hdrfilter *f = malloc(sizeof(*f));
	size_t i, n, o = 0;

	if (f == NULL)
		abort();
	hdrfilter_init(f, "mx.relay.example");
	for (i = 0; i < size; i += n) {
		n = size - i < step ? size - i : step;
		o += hdrfilter_run(f, (const char *)data + i, n, out + o);
	}
	o += hdrfilter_finish(f, out + o);
	*removed = f->removed;
	free(f);
	return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *whole, *pieces;
	size_t step, n1, n2;
	unsigned r1, r2;

	if (size < 1)
		return 0;
	step = 1 + data[0] % 64;
	data++;
	size--;
	whole = malloc(HDRFILTER_OUT(size));
	pieces = malloc(HDRFILTER_OUT(size));
	if (whole == NULL || pieces == NULL)
		abort();
	n1 = run(data, size, size > 0 ? size : 1, whole, &r1);
	n2 = run(data, size, step, pieces, &r2);
	if (n1 > size || n1 != n2 || r1 != r2 || memcmp(whole, pieces, n1))
		abort();
	if (r1 == 0 && (n1 != size || memcmp(whole, data, size) != 0))
		abort();
	free(whole);
	free(pieces);
	return 0;
}
