/*
 * libFuzzer target for the DATA stream scanner.  The input is scanned in
 * pieces whose sizes come from the first byte, and the invariants that
 * keep smuggling out are checked: the data ends only at CRLF "." CRLF,
 * the output never holds that marker, and when neither a bare CR nor a
 * bare LF was flagged, or the scanner normalised them, every LF in the
 * output follows a CR.  The first byte's top bit turns normalising on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct data_scan ds;
	char *out, *all;
	size_t step, off = 0, outlen, total = 0, i;
	int done = 0;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 16 + 1;
	data_scan_init(&ds);
	ds.normalize = (data[0] & 0x80) != 0;
	data++;
	size--;
	out = malloc(DATA_SCAN_OUT(size));
	all = malloc(DATA_SCAN_OUT(size));
	while (off < size && !done) {
		size_t n = size - off < step ? size - off : step;

		off += data_scan(&ds, (const char *)data + off, n, out, &outlen,
		    &done);
		/* Only CRLF "." CRLF, or "." CRLF at the very start, ends it. */
		if (done && (off < 3 || memcmp(data + off - 3, ".\r\n", 3) != 0 ||
		    (off > 3 && (off < 5 ||
		    memcmp(data + off - 5, "\r\n", 2) != 0))))
			abort();
		if (outlen > DATA_SCAN_OUT(n) || total + outlen > DATA_SCAN_OUT(size))
			abort();
		memcpy(all + total, out, outlen);
		total += outlen;
	}
	if (ds.normalize || (!ds.bare_cr && !ds.bare_lf)) {
		for (i = 0; i < total; i++)
			if (all[i] == '\n' && (i == 0 || all[i - 1] != '\r'))
				abort();
		/* Normalised output has no bare CR either. */
		for (i = 0; ds.normalize && i < total; i++)
			if (all[i] == '\r' && i + 1 < total && all[i + 1] != '\n')
				abort();
		/* CRLF "." CRLF must never be passed on. */
		for (i = 0; i + 5 <= total; i++)
			if (memcmp(all + i, "\r\n.\r\n", 5) == 0)
				abort();
	}
	free(out);
	free(all);
	return 0;
}
