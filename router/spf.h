/*
 * Sender Policy Framework (RFC 7208): check_host() for the MAIL FROM
 * identity, or for the HELO identity when the sender is null, run on the
 * asynchronous DNS client.  The SMTP server starts a check at MAIL FROM
 * and uses the result in its Authentication-Results field and in DMARC.
 *
 * The record parser and the macro expander are public too, so that tests
 * and fuzz targets can reach them without DNS.
 */
#ifndef ROUTER_SPF_H
#define ROUTER_SPF_H

#include <stddef.h>

struct dns_ctx;

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

struct spf_outcome {
	enum spf_result	 result;
	/* The domain checked: the sender's domain, or the HELO name. */
	char		 domain[256];
	/*
	 * The expanded exp= text when the result is SPF_FAIL and the
	 * domain published a usable one, else empty.  Printable ASCII,
	 * truncated to 255 bytes.
	 */
	char		 explanation[256];
	/* Why the result is an error or none, for logs; may be empty. */
	char		 problem[128];
};

typedef void spf_cb(void *arg, const struct spf_outcome *);

struct spf_check;

/*
 * Start check_host() for a client address (IPv4 or IPv6 text; an
 * IPv4-mapped IPv6 address counts as IPv4), the HELO name, the envelope
 * sender "local@domain" ("" for the null sender, checked as
 * postmaster@helo) and our own host name (the %{r} macro; NULL or ""
 * gives "unknown").  The strings are copied.
 *
 * The callback runs exactly once, from the event loop and never inside
 * spf_check_start(), unless the check is cancelled first.  The outcome is
 * valid only during the callback, and the check is freed when the
 * callback returns.  Invalid input (an unparsable address, a sender or
 * HELO name too long to be a domain) gives SPF_NONE with a problem.
 *
 * The elapsed time is bounded only by the DNS client's timeouts.  RFC
 * 7208 section 4.6.4 asks for an overall limit of at least 20 seconds
 * with a temperror result: the caller enforces it with spf_check_cancel().
 */
struct spf_check *spf_check_start(struct dns_ctx *, const char *client_ip,
		    const char *helo, const char *sender, const char *receiver,
		    spf_cb *, void *arg);
/*
 * Stop a check and free it: no callback runs after this.  A no-op on
 * NULL and from inside the check's own callback.
 */
void		 spf_check_cancel(struct spf_check *);

/* Result names as RFC 8601 spells them: "pass", "softfail", ... */
const char	*spf_result_str(enum spf_result);

/*
 * A parsed record: the version, then mechanisms and modifiers checked
 * against the grammar of RFC 7208 sections 4.6.1, 5, 6 and 7.1.
 */
struct spf_record;

#define SPF_RECORD_MAX	4096	/* bytes of one record, strings joined */
#define SPF_MAX_TERMS	256	/* mechanisms and modifiers per record */

/*
 * Parse len bytes of record text starting with "v=spf1".  Returns a new
 * record owned by the caller, or NULL with the reason in problem (a
 * syntax error, which makes check_host() return permerror).
 */
struct spf_record *spf_record_parse(const char *text, size_t len,
		    char *problem, size_t problemsz);
/* Mechanisms in the record; modifiers are not counted. */
size_t		 spf_record_mechanisms(const struct spf_record *);
void		 spf_record_free(struct spf_record *);

/* The values that the macro letters of RFC 7208 section 7.3 expand to. */
struct spf_macro_vars {
	const char	*sender;	/* s: local-part@domain */
	const char	*local;		/* l */
	const char	*sender_domain;	/* o */
	const char	*domain;	/* d: the domain being checked now */
	const char	*ip;		/* i: dotted quad or dotted nibbles */
	const char	*validated;	/* p: NULL gives "unknown" */
	const char	*ip_version;	/* v: "in-addr" or "ip6" */
	const char	*helo;		/* h */
	const char	*client;	/* c: the address as usually written */
	const char	*receiver;	/* r */
	long long	 timestamp;	/* t: seconds since the epoch */
};

enum spf_macro_context {
	SPF_MACRO_DOMAIN,	/* domain-spec: letters s l o d i p v h */
	SPF_MACRO_EXPLANATION,	/* exp= text: also c r t, and spaces */
};

#define SPF_MACRO_SYNTAX	(-1)
#define SPF_MACRO_TOO_LONG	(-2)
#define SPF_MACRO_VALUE_MAX	512	/* bytes of one macro's value */

/*
 * Expand the macro-string in[0..len) into out (size outsz, always
 * NUL-terminated).  Returns the length written, SPF_MACRO_SYNTAX for a
 * syntax error, or SPF_MACRO_TOO_LONG when the result or a value longer
 * than SPF_MACRO_VALUE_MAX does not fit; out then contains what fitted.
 * A NULL value expands to an empty string, except p ("unknown").
 */
int		 spf_macro_expand(const struct spf_macro_vars *,
		    enum spf_macro_context, const char *in, size_t len,
		    char *out, size_t outsz);

#endif
