/*
 * IDNA conversion with GNU libidn2.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "idn.h"

int
idn_has_utf8(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

int
idn_to_alabel(const char *domain, char *out, size_t outsz)
{
	char *ascii = NULL;
	size_t i, n;

	if (!idn_has_utf8(domain)) {
		n = strlen(domain);
		if (n + 1 > outsz)
			return -1;
		for (i = 0; i <= n; i++)
			out[i] = (char)tolower((unsigned char)domain[i]);
		return 0;
	}
	/* Non-transitional UTS #46 processing, as browsers and MTAs do. */
	if (idn2_to_ascii_8z(domain, &ascii, IDN2_NFC_INPUT |
	    IDN2_NONTRANSITIONAL) != IDN2_OK)
		return -1;
	n = strlen(ascii);
	if (n + 1 > outsz) {
		idn2_free(ascii);
		return -1;
	}
	for (i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)ascii[i]);
	idn2_free(ascii);
	return 0;
}
