/*
 * Logging to stderr.  Each line reads
 *   PROG[PID]: LEVEL message
 * and the message is made of key=value fields chosen by the caller.
 */
#include <ctype.h>
#include <errno.h>
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
/* "PROG[PID]: ", the start of every line, rebuilt by log_after_fork(). */
static char log_prefix[128];
static size_t log_prefix_len;

static const char *const log_level_names[] = {
	[LOG_LVL_ERR] = "error",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

static void
log_set_prefix(void)
{
	int n = snprintf(log_prefix, sizeof(log_prefix), "%s[%ld]: ",
	    log_progname, (long)getpid());

	log_prefix_len = n < 0 ? 0 : (size_t)n < sizeof(log_prefix) ?
	    (size_t)n : sizeof(log_prefix) - 1;
}

void
log_init(const char *progname, enum log_level max_level)
{
	log_progname = progname;
	log_max = max_level;
	log_set_prefix();
}

void
log_after_fork(void)
{
	log_set_prefix();
}

int
log_enabled(enum log_level level)
{
	return level <= log_max;
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
	const char *name;
	size_t len, name_len;
	ssize_t w;
	va_list ap;
	int n;

	if (level > log_max)
		return;
	if (log_prefix_len == 0)
		log_set_prefix();
	name = log_level_names[level];
	name_len = strlen(name);
	/* The prefix has under 128 bytes and the level name under 8. */
	memcpy(line, log_prefix, log_prefix_len);
	len = log_prefix_len;
	memcpy(line + len, name, name_len);
	len += name_len;
	line[len++] = ' ';
	va_start(ap, fmt);
	/* One byte stays free for the newline. */
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n :
	    sizeof(line) - len - 2;
	line[len++] = '\n';
	/* One write per line, so lines of several processes do not mix. */
	do
		w = write(STDERR_FILENO, line, len);
	while (w < 0 && errno == EINTR);
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
	out[0] = 'h';
	out[1] = ':';
	sodium_bin2hex(out + 2, LOG_ADDR_MAX - 2, h, sizeof(h));
	return out;
}
