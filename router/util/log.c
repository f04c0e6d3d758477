/*
 * Logging to stderr.  Each line reads
 *   PROG[PID]: LEVEL message
 * and the message is made of key=value fields chosen by the caller.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"

static const char *log_progname = "router";
static enum log_level log_max = LOG_LVL_INFO;
static unsigned char log_key[crypto_generichash_KEYBYTES];
static int log_plain_addrs;
static long log_pid;

static const char *const log_level_names[] = {
	[LOG_LVL_ERR] = "error",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void
log_init(const char *progname, enum log_level max_level)
{
	log_progname = progname;
	log_max = max_level;
	log_pid = (long)getpid();
}

void
log_after_fork(void)
{
	log_pid = (long)getpid();
}

void
log_set_level(enum log_level max_level)
{
	log_max = max_level;
}

void
log_set_addr_key(const unsigned char *key, size_t len, int plaintext)
{
	crypto_generichash(log_key, sizeof(log_key), key, len,
	    (const unsigned char *)"log-address-key", 15);
	log_plain_addrs = plaintext;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (level > log_max)
		return;
	n = snprintf(line, sizeof(line), "%s[%ld]: %s ", log_progname,
	    log_pid, log_level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

char *
log_printable(char *out, size_t outsz, const char *in, size_t len)
{
	size_t i, o = 0;

	if (outsz == 0)
		return out;
	for (i = 0; i < len && o + 1 < outsz && o < 200; i++) {
		unsigned char c = (unsigned char)in[i];

		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[o] = '\0';
	return out;
}

char *
log_addr(char out[LOG_ADDR_MAX], const char *addr)
{
	unsigned char h[6];
	size_t len = strlen(addr), i;
	char lower[256];

	if (log_plain_addrs) {
		log_printable(out, LOG_ADDR_MAX, addr, len);
		return out;
	}
	/* Hash the lower-cased form so that case variants correlate. */
	if (len > sizeof(lower))
		len = sizeof(lower);
	for (i = 0; i < len; i++)
		lower[i] = (char)tolower((unsigned char)addr[i]);
	crypto_generichash(h, sizeof(h), (unsigned char *)lower, len,
	    log_key, sizeof(log_key));
	snprintf(out, LOG_ADDR_MAX, "h:%02x%02x%02x%02x%02x%02x",
	    h[0], h[1], h[2], h[3], h[4], h[5]);
	return out;
}
