/*
 * Command line errors shared by every dnsconf command, so that each one
 * reports a bad option the same way and exits with the usage status.
 */
#include <stdarg.h>
#include <stdio.h>

#include "dnsconf.h"

int
dnsconf_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dnsconf %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun \"dnsconf %s -h\" for help.\n", cmd);
	return DNSCONF_EXIT_USAGE;
}
