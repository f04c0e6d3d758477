/*
 * Master-file spelling of names and TXT character-strings for dnsconf.
 * The output is meant to load into any RFC 1035 zone file reader, so it
 * uses only the plain forms: quoted strings, backslash escapes, \DDD.
 */
#include <stdio.h>
#include <string.h>

#include "zone.h"

static int
zone_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int
zone_domain_normalize(char out[ZONE_DOMAIN_MAX + 1], const char *in)
{
	size_t len = strlen(in), i, label = 0;
	char c;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > ZONE_DOMAIN_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		c = in[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = c;
		if (c != '.') {
			if (!zone_ldh(c) || ++label > 63)
				return -1;
			continue;
		}
		/* A label may neither be empty nor end with '-'. */
		if (label == 0 || out[i - 1] == '-')
			return -1;
		label = 0;
	}
	out[len] = '\0';
	if (label == 0 || out[len - 1] == '-')
		return -1;
	/* Nor start with '-'. */
	for (i = 0; i < len; i++)
		if (out[i] == '-' && (i == 0 || out[i - 1] == '.'))
			return -1;
	return 0;
}

/* Write the escaped form of one content byte; returns its length. */
static size_t
zone_escape(char w[5], unsigned char c)
{
	if (c == '"' || c == '\\') {
		w[0] = '\\';
		w[1] = (char)c;
		return 2;
	}
	if (c < 0x20 || c > 0x7e) {
		snprintf(w, 5, "\\%03u", c);
		return 4;
	}
	w[0] = (char)c;
	return 1;
}

int
zone_txt_quote(char *out, size_t outsz, const char *txt, size_t len)
{
	char esc[5];
	size_t i, o = 0, n;

	if (outsz < 3)
		return -1;
	out[o++] = '"';
	for (i = 0; i < len; i++) {
		n = zone_escape(esc, (unsigned char)txt[i]);
		if (i > 0 && i % ZONE_STRING_MAX == 0) {
			if (outsz - o < 3)
				return -1;
			memcpy(out + o, "\" \"", 3);
			o += 3;
		}
		if (outsz - o < n)
			return -1;
		memcpy(out + o, esc, n);
		o += n;
	}
	if (outsz - o < 2)
		return -1;
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}
