/*
 * Logging: one line per event on stderr, syslog-style levels, key=value
 * fields.  Peer-supplied text goes through log_printable() before it is
 * logged.  Mail addresses go through log_addr(), which returns a keyed hash
 * unless the operator asked for plaintext addresses.
 */
#ifndef UTIL_LOG_H
#define UTIL_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LVL_ERR,
	LOG_LVL_WARN,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

void	log_init(const char *progname, enum log_level max_level);
/* A forked child calls this so its lines carry its own process id. */
void	log_after_fork(void);
void	log_set_level(enum log_level);
/* Non-zero when lines of this level are logged. */
int	log_enabled(enum log_level);
/* Key for log_addr(); plaintext non-zero logs addresses unchanged. */
void	log_set_addr_key(const unsigned char *key, size_t len, int plaintext);

void	log_msg(enum log_level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
#define log_err(...)	log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * Copy at most len bytes of peer text into out (size outsz, always
 * NUL-terminated), replacing control and non-ASCII bytes with '?' and
 * truncating at 200 characters.  Returns out.
 */
char	*log_printable(char *out, size_t outsz, const char *in, size_t len);

/*
 * Format an address for a log line into out: "h:" followed by 12 hex
 * digits of a keyed BLAKE2b hash, or the printable address itself when
 * plaintext logging is on.  Returns out.
 */
#define LOG_ADDR_MAX 272
char	*log_addr(char out[LOG_ADDR_MAX], const char *addr);

#endif
