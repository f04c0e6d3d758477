/*
 * libFuzzer target for authres_find_result(), which reads results out of
 * the newest ARC-Authentication-Results of a message for the
 * trusted-sealer policy.  Any input must be read without a fault, and a
 * result found must be a lower-case keyword that fits its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "dmarc", "spf", "dkim", "arc" };
	char *value, result[16];
	size_t i, j, n;

	/* The caller passes an unfolded, NUL-terminated value. */
	if ((value = malloc(size + 1)) == NULL)
		return 0;
	memcpy(value, data, size);
	value[size] = '\0';
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		memset(result, 'x', sizeof(result));
		if (!authres_find_result(value, methods[i], result,
		    sizeof(result)))
			continue;
		if ((n = strnlen(result, sizeof(result))) == sizeof(result))
			abort();
		for (j = 0; j < n; j++)
			if (!((result[j] >= 'a' && result[j] <= 'z') ||
			    (result[j] >= '0' && result[j] <= '9') ||
			    result[j] == '-'))
				abort();
	}
	free(value);
	return 0;
}
