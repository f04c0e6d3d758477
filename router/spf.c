/*
 * SPF check_host() (RFC 7208) on the asynchronous DNS client.  The SMTP
 * server starts one check per transaction at MAIL FROM; the result feeds
 * the Authentication-Results field and DMARC.
 *
 * A check evaluates a stack of frames, one per record being evaluated.
 * The bottom frame contains the checked domain's record.  An include
 * mechanism pushes a frame for the included domain, and a redirect
 * modifier replaces the current frame's domain and record.  Every
 * include counts towards the limit of 10 DNS terms, so the stack is at
 * most 11 frames deep.  Records are parsed completely into bounded
 * structures before evaluation, because a syntax error anywhere in a
 * record makes the result permerror.
 *
 * The check is a state machine with one DNS lookup in flight, or up to
 * 10 in parallel for the addresses of MX hosts and PTR names.  States
 * in capitals below wait for DNS; TERMS, EXP_BEGIN, EXP_TEXT and DONE
 * run in spf_run()'s loop.  Each DNS callback handles its answer (valid
 * only during the callback), picks the next state and calls spf_run().
 *
 *   spf_check_start()
 *     |  invalid input: DEFER (one no-op lookup) -> DONE
 *     v
 *   RECORD <--- include: push a frame, redirect: replace the frame --+
 *     | TXT answer: exactly one v=spf1 record, parsed                |
 *     v                                                              |
 *   TERMS: all, ip4, ip6 in place; the other terms start lookups ----+
 *     |   a, exists ---> ADDRESS -----------------> back to TERMS
 *     |   mx ----------> MX --> MX_HOSTS ---------> back to TERMS
 *     |   ptr, %{p} ---> PTR --> PTR_NAMES -------> back to the state
 *     |                   (validated names kept      that asked
 *     |                    for the whole check)
 *     | a result for the bottom frame
 *     v
 *   fail and exp= present: EXP_BEGIN -> EXP -> EXP_TEXT -> DONE
 *   any other result, and every error: DONE
 *
 * DONE runs the caller's callback and frees the check.  An include
 * frame's result goes to the including term instead: pass matches,
 * fail, softfail and neutral do not, and every error ends the check.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ldns/ldns.h>

#include "dns.h"
#include "log.h"
#include "spf.h"
#include "str.h"
#include "xmalloc.h"

/* Terms that cause DNS lookups, and void lookups: RFC 7208 4.6.4. */
#define SPF_MAX_DNS_TERMS	10
#define SPF_MAX_VOID_LOOKUPS	2
/* MX names, and PTR names, looked up per term: RFC 7208 4.6.4. */
#define SPF_MAX_NAMES		10
/* The checked domain's record plus one frame per include. */
#define SPF_MAX_DEPTH		(1 + SPF_MAX_DNS_TERMS)
/*
 * Every query a check can make within the limits above: the first
 * record, 10 DNS terms of at most 1 + 10 queries (mx), the PTR names
 * once (1 + 10) and the exp= text.  It caps the work of one check even
 * if the accounting elsewhere were wrong.
 */
#define SPF_MAX_QUERIES \
	(1 + SPF_MAX_DNS_TERMS * (1 + SPF_MAX_NAMES) + 1 + SPF_MAX_NAMES + 1)
#define SPF_NAME_MAX		253	/* bytes of a name, final dot excluded */
#define SPF_NAME_SIZE		(SPF_NAME_MAX + 2)
#define SPF_LABEL_MAX		63
#define SPF_EXPAND_MAX		2048	/* bytes of one expanded domain-spec */
#define SPF_INPUT_MAX		512	/* bytes of sender, HELO, receiver */
#define SPF_EXP_TEXT_MAX	1024	/* bytes of the exp= TXT record */
/*
 * A name whose first label is 64 octets long: dns_lookup() answers it
 * with DNS_SERVFAIL through the event loop without sending a query,
 * which delivers a result known at start asynchronously.
 */
#define SPF_DEFER_NAME \
	"0123456789012345678901234567890123456789012345678901234567890123.invalid"

enum spf_mech {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

static const struct {
	const char	*name;
	enum spf_mech	 mech;
} spf_mechs[] = {
	{ "all", SPF_MECH_ALL },
	{ "include", SPF_MECH_INCLUDE },
	{ "a", SPF_MECH_A },
	{ "mx", SPF_MECH_MX },
	{ "ptr", SPF_MECH_PTR },
	{ "ip4", SPF_MECH_IP4 },
	{ "ip6", SPF_MECH_IP6 },
	{ "exists", SPF_MECH_EXISTS },
};

/* A part of the record text; len 0 means absent. */
struct spf_span {
	uint16_t	 off;
	uint16_t	 len;
};

struct spf_term {
	uint8_t		 mech;		/* enum spf_mech */
	uint8_t		 result;	/* enum spf_result on a match */
	uint8_t		 cidr4;		/* prefix lengths for a, mx, ip4 */
	uint8_t		 cidr6;		/* and ip6 */
	struct spf_span	 spec;		/* domain-spec */
	uint8_t		 net[16];	/* ip4 (4 bytes) or ip6 network */
};

struct spf_record {
	char		*text;		/* NUL-terminated */
	size_t		 len;
	struct spf_term	*terms;		/* mechanisms in order */
	size_t		 nterms;
	struct spf_span	 redirect;	/* domain-spec of redirect= */
	struct spf_span	 exp;		/* domain-spec of exp= */
};

struct spf_frame {
	char			 domain[SPF_NAME_SIZE];	/* <domain> */
	struct spf_record	*record;	/* NULL until the TXT answer */
	size_t			 next;		/* term being evaluated */
	int			 counted;	/* terms[next] counted as DNS term */
	int			 target;	/* include or redirect target */
};

enum spf_state {
	SPF_ST_START,		/* inside spf_check_start() */
	SPF_ST_DEFER,		/* a result known at start, made async */
	SPF_ST_RECORD,		/* TXT lookup of the frame's domain */
	SPF_ST_TERMS,		/* evaluating the frame's terms */
	SPF_ST_ADDRESS,		/* address lookup of a or exists */
	SPF_ST_MX,		/* MX lookup of mx */
	SPF_ST_MX_HOSTS,	/* address lookups of the MX hosts */
	SPF_ST_PTR,		/* PTR lookup of the client address */
	SPF_ST_PTR_NAMES,	/* address lookups of the PTR names */
	SPF_ST_EXP_BEGIN,	/* expand exp= and look its TXT up */
	SPF_ST_EXP,		/* TXT lookup of the exp= target */
	SPF_ST_EXP_TEXT,	/* expand the explanation text */
	SPF_ST_DONE,		/* outcome ready */
};

static const char *const spf_state_names[] = {
	[SPF_ST_START] = "start",
	[SPF_ST_DEFER] = "defer",
	[SPF_ST_RECORD] = "record",
	[SPF_ST_TERMS] = "terms",
	[SPF_ST_ADDRESS] = "address",
	[SPF_ST_MX] = "mx",
	[SPF_ST_MX_HOSTS] = "mx-hosts",
	[SPF_ST_PTR] = "ptr",
	[SPF_ST_PTR_NAMES] = "ptr-names",
	[SPF_ST_EXP_BEGIN] = "exp-begin",
	[SPF_ST_EXP] = "exp",
	[SPF_ST_EXP_TEXT] = "exp-text",
	[SPF_ST_DONE] = "done",
};

/* One lookup in flight; slot i looks up name i of a parallel batch. */
struct spf_slot {
	struct spf_check	*check;
	struct dns_query	*query;		/* NULL when idle */
	unsigned		 index;
};

enum spf_name_state {
	SPF_NAME_WAITING,
	SPF_NAME_MATCH,
	SPF_NAME_NO_MATCH,
	SPF_NAME_ERROR,
};

struct spf_check {
	struct dns_ctx		*dns;
	spf_cb			*cb;
	void			*cb_arg;
	enum spf_state		 state;
	enum spf_state		 ptr_resume;	/* state that asked for PTR */
	int			 delivering;	/* inside the caller's callback */

	/* The inputs, and the macro values derived from them. */
	int			 family;	/* AF_INET or AF_INET6 */
	uint8_t			 ip[16];	/* IPv4 in the first 4 bytes */
	char			 ip_text[INET6_ADDRSTRLEN];	/* %{c} */
	char			 ip_dotted[72];		/* %{i} */
	char			 sender[2 * SPF_INPUT_MAX + 2];
	char			 local[SPF_INPUT_MAX + 1];
	char			 sender_domain[SPF_INPUT_MAX + 1];
	char			 helo[SPF_INPUT_MAX + 1];
	char			 receiver[SPF_INPUT_MAX + 1];

	struct spf_frame	*stack[SPF_MAX_DEPTH];
	size_t			 depth;
	unsigned		 dns_terms;	/* terms that caused lookups */
	unsigned		 void_terms;	/* terms with a void lookup */
	unsigned		 queries;

	struct spf_slot		 slots[SPF_MAX_NAMES];
	unsigned		 pending;	/* slots with a query */
	/*
	 * MX host names of the current mx term, SPF_MAX_NAMES entries
	 * allocated by the first mx term.
	 */
	char			(*names)[SPF_NAME_SIZE];
	uint8_t			 name_state[SPF_MAX_NAMES];
	unsigned		 nnames;

	/*
	 * PTR names of the client address, looked up once per check.  The
	 * SPF_MAX_NAMES entries are allocated with the PTR answer.
	 */
	int			 ptr_done;
	int			 ptr_void;	/* PTR lookup found nothing */
	char			(*ptr_names)[SPF_NAME_SIZE];
	uint8_t			 ptr_valid[SPF_MAX_NAMES];
	unsigned		 nptr;

	char			*exp_text;	/* SPF_EXP_TEXT_MAX + 1 bytes */
	size_t			 exp_len;
	struct spf_outcome	 outcome;
};

static void	spf_dns_cb(void *, const struct dns_answer *);
static void	spf_term_done(struct spf_check *, int matched);

/*
 * Characters and names.
 */

static int
spf_is_alpha(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int
spf_is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static int
spf_lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

/* Returns 1 if the n bytes at s equal word, ignoring ASCII case. */
static int
spf_word_eq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Copy src into dst (size dstsz), bytes outside 0x20-0x7e as '?'. */
static void
spf_copy_printable(char *dst, size_t dstsz, const char *src, size_t len)
{
	size_t i;

	if (dstsz == 0)
		return;
	for (i = 0; i < len && i < dstsz - 1; i++) {
		unsigned char ch = src[i];

		dst[i] = ch >= 0x20 && ch <= 0x7e ? (char)ch : '?';
	}
	dst[i] = '\0';
}

/*
 * Returns 1 if name can be looked up: printable ASCII (spaces allowed,
 * as macros can produce them), at most 253 bytes without a final dot,
 * labels of 1 to 63 bytes.
 */
static int
spf_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0, i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = name[i];

		if (ch < 0x20 || ch > 0x7e)
			return 0;
		if (ch != '.') {
			if (++label > SPF_LABEL_MAX)
				return 0;
		} else if (label == 0)
			return 0;
		else
			label = 0;
	}
	return label > 0;
}

/*
 * Returns 1 if name is domain or a subdomain of it, ignoring case and
 * final dots.
 */
static int
spf_name_within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (d > 0 && domain[d - 1] == '.')
		d--;
	if (d == 0 || n < d || strncasecmp(name + n - d, domain, d) != 0)
		return 0;
	return n == d || name[n - d - 1] == '.';
}

/*
 * Drop leading labels of name until it has at most 253 bytes, a final
 * dot not counted (RFC 7208 section 7.3).
 */
static void
spf_name_truncate(char *name)
{
	size_t body = strlen(name);
	char *p = name, *dot;

	if (body > 0 && name[body - 1] == '.')
		body--;
	while (body > SPF_NAME_MAX &&
	    (dot = memchr(p, '.', body)) != NULL) {
		body -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	memmove(name, p, strlen(p) + 1);
}

/*
 * Write name in the text form dns_lookup() parses: ldns reads every
 * byte as itself except the backslash, which starts an escape.
 */
static void
spf_escape_name(const char *name, char *out, size_t outsz)
{
	size_t o = 0;

	for (; *name != '\0' && o + 2 < outsz; name++) {
		if (*name == '\\')
			out[o++] = '\\';
		out[o++] = *name;
	}
	out[o] = '\0';
}

/*
 * Convert a domain name from DNS data (an MX exchange, a PTR target)
 * to text without a final dot.  Returns 0, or -1 for the root name and
 * for names with a label holding a dot, a space or a byte outside
 * printable ASCII, which no SPF name matches.
 */
static int
spf_dname_text(const ldns_rdf *rdf, char *out, size_t outsz)
{
	const uint8_t *d;
	size_t size, pos = 0, o = 0, n, i;

	if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
		return -1;
	d = ldns_rdf_data(rdf);
	size = ldns_rdf_size(rdf);
	while (pos < size && (n = d[pos]) != 0) {
		if (pos + 1 + n > size || o + n + 1 >= outsz)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (i = 0; i < n; i++) {
			uint8_t ch = d[pos + 1 + i];

			if (ch <= 0x20 || ch > 0x7e || ch == '.')
				return -1;
			out[o++] = (char)ch;
		}
		pos += 1 + n;
	}
	out[o] = '\0';
	return o > 0 ? 0 : -1;
}

/*
 * Macros (RFC 7208 section 7).
 */

enum spf_token {
	SPF_TOKEN_END,
	SPF_TOKEN_LITERAL,	/* one byte of text */
	SPF_TOKEN_ESCAPE,	/* %%, %_ or %- */
	SPF_TOKEN_MACRO,	/* %{...} */
	SPF_TOKEN_ERROR,
};

struct spf_macro {
	char		 letter;	/* lower case */
	int		 url_encode;	/* the letter was upper case */
	unsigned	 keep;		/* rightmost parts kept, 0 for all */
	int		 reverse;
	char		 delims[8];	/* split characters; "" means "." */
	const char	*text;		/* for literals and escapes */
	size_t		 textlen;
};

static const char spf_delimiters[] = ".-+,/_=";

static int
spf_macro_letter_ok(int letter, enum spf_macro_context ctx)
{
	if (letter != '\0' && strchr("slodipvh", letter) != NULL)
		return 1;
	return ctx == SPF_MACRO_EXPLANATION && letter != '\0' &&
	    strchr("crt", letter) != NULL;
}

/* Read "%{" letter transformers delimiters "}" at s[*pos]. */
static enum spf_token
spf_macro_braces(const char *s, size_t len, size_t *pos,
    enum spf_macro_context ctx, struct spf_macro *m)
{
	size_t i = *pos + 2, ndelims = 0;
	int digits = 0;

	if (i >= len || !spf_is_alpha(s[i]))
		return SPF_TOKEN_ERROR;
	m->url_encode = s[i] >= 'A' && s[i] <= 'Z';
	m->letter = (char)spf_lower(s[i++]);
	if (!spf_macro_letter_ok(m->letter, ctx))
		return SPF_TOKEN_ERROR;
	for (; i < len && spf_is_digit(s[i]); i++) {
		digits = 1;
		if (m->keep < 1000)	/* more parts than any value has */
			m->keep = m->keep * 10 + (unsigned)(s[i] - '0');
	}
	if (digits && m->keep == 0)	/* "the value MUST be nonzero" */
		return SPF_TOKEN_ERROR;
	if (i < len && (s[i] == 'r' || s[i] == 'R')) {
		m->reverse = 1;
		i++;
	}
	for (; i < len && s[i] != '}'; i++) {
		if (s[i] == '\0' || strchr(spf_delimiters, s[i]) == NULL)
			return SPF_TOKEN_ERROR;
		if (memchr(m->delims, s[i], ndelims) == NULL)
			m->delims[ndelims++] = s[i];
	}
	if (i >= len)
		return SPF_TOKEN_ERROR;
	*pos = i + 1;
	return SPF_TOKEN_MACRO;
}

/*
 * Read the next item of the macro-string s[0..len) at *pos and advance
 * *pos past it.  Literal bytes are %x21-24 / %x26-7E, plus the space in
 * explanation text.
 */
static enum spf_token
spf_macro_next(const char *s, size_t len, size_t *pos,
    enum spf_macro_context ctx, struct spf_macro *m)
{
	size_t i = *pos;
	unsigned char ch;

	memset(m, 0, sizeof(*m));
	if (i >= len)
		return SPF_TOKEN_END;
	ch = s[i];
	if (ch != '%') {
		if (ch < 0x20 || ch > 0x7e ||
		    (ch == ' ' && ctx != SPF_MACRO_EXPLANATION))
			return SPF_TOKEN_ERROR;
		m->text = s + i;
		m->textlen = 1;
		*pos = i + 1;
		return SPF_TOKEN_LITERAL;
	}
	if (i + 1 >= len)
		return SPF_TOKEN_ERROR;
	switch (s[i + 1]) {
	case '%':
		m->text = "%";
		break;
	case '_':
		m->text = " ";
		break;
	case '-':
		m->text = "%20";
		break;
	case '{':
		return spf_macro_braces(s, len, pos, ctx, m);
	default:
		return SPF_TOKEN_ERROR;
	}
	m->textlen = strlen(m->text);
	*pos = i + 2;
	return SPF_TOKEN_ESCAPE;
}

/* Returns 1 if s[0..len) is a macro-string with a p macro in it. */
static int
spf_macro_uses_p(const char *s, size_t len, enum spf_macro_context ctx)
{
	enum spf_token tok;
	struct spf_macro m;
	size_t pos = 0;

	while ((tok = spf_macro_next(s, len, &pos, ctx, &m)) !=
	    SPF_TOKEN_END && tok != SPF_TOKEN_ERROR)
		if (tok == SPF_TOKEN_MACRO && m.letter == 'p')
			return 1;
	return 0;
}

/* A bounded output buffer, always NUL-terminated. */
struct spf_out {
	char	*buf;
	size_t	 size;		/* at least 1 */
	size_t	 len;
	int	 overflow;
};

static void
spf_out_put(struct spf_out *o, const char *p, size_t n)
{
	size_t room = o->size - 1 - o->len;

	if (n > room) {
		n = room;
		o->overflow = 1;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* Append n bytes, percent-encoding all but RFC 3986 unreserved ones. */
static void
spf_out_url(struct spf_out *o, const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[3];
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = p[i];

		if (spf_is_alpha(ch) || spf_is_digit(ch) || ch == '-' ||
		    ch == '.' || ch == '_' || ch == '~') {
			spf_out_put(o, p + i, 1);
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[ch >> 4];
		enc[2] = hex[ch & 0xf];
		spf_out_put(o, enc, 3);
	}
}

static const char *
spf_macro_value(const struct spf_macro_vars *v, int letter, char *tbuf,
    size_t tbufsz)
{
	switch (letter) {
	case 's':
		return v->sender;
	case 'l':
		return v->local;
	case 'o':
		return v->sender_domain;
	case 'd':
		return v->domain;
	case 'i':
		return v->ip;
	case 'p':
		return v->validated != NULL ? v->validated : "unknown";
	case 'v':
		return v->ip_version;
	case 'h':
		return v->helo;
	case 'c':
		return v->client;
	case 'r':
		return v->receiver;
	case 't':
		snprintf(tbuf, tbufsz, "%lld", v->timestamp);
		return tbuf;
	default:
		fatal_invariant("SPF macro letter not checked");
	}
}

/*
 * Append the value transformed by the macro's transformers: split on
 * the delimiters, reverse if asked, keep the rightmost parts, join with
 * dots, URL-encode for an upper-case letter.
 */
static int
spf_macro_transform(const struct spf_macro *m, const char *value,
    struct spf_out *o)
{
	uint16_t start[SPF_MACRO_VALUE_MAX + 2];
	const char *delims = m->delims[0] != '\0' ? m->delims : ".";
	size_t len = strlen(value), nparts = 0, count, k, idx, i;

	if (len > SPF_MACRO_VALUE_MAX)
		return SPF_MACRO_TOO_LONG;
	start[nparts++] = 0;
	for (i = 0; i < len; i++)
		if (value[i] != '\0' && strchr(delims, value[i]) != NULL)
			start[nparts++] = (uint16_t)(i + 1);
	start[nparts] = (uint16_t)(len + 1);
	count = m->keep > 0 && m->keep < nparts ? m->keep : nparts;
	for (k = 0; k < count; k++) {
		idx = m->reverse ? count - 1 - k : nparts - count + k;
		if (k > 0)
			spf_out_put(o, ".", 1);
		if (m->url_encode)
			spf_out_url(o, value + start[idx],
			    start[idx + 1] - 1 - start[idx]);
		else
			spf_out_put(o, value + start[idx],
			    start[idx + 1] - 1 - start[idx]);
	}
	return 0;
}

int
spf_macro_expand(const struct spf_macro_vars *vars,
    enum spf_macro_context ctx, const char *in, size_t len, char *out,
    size_t outsz)
{
	struct spf_out o = { out, outsz, 0, 0 };
	enum spf_token tok;
	struct spf_macro m;
	const char *value;
	char tbuf[32];
	size_t pos = 0;
	int too_long = 0;

	if (outsz == 0)
		return SPF_MACRO_TOO_LONG;
	out[0] = '\0';
	while ((tok = spf_macro_next(in, len, &pos, ctx, &m)) !=
	    SPF_TOKEN_END) {
		switch (tok) {
		case SPF_TOKEN_LITERAL:
		case SPF_TOKEN_ESCAPE:
			spf_out_put(&o, m.text, m.textlen);
			break;
		case SPF_TOKEN_MACRO:
			value = spf_macro_value(vars, m.letter, tbuf,
			    sizeof(tbuf));
			if (spf_macro_transform(&m, value != NULL ? value :
			    "", &o) != 0)
				too_long = 1;
			break;
		default:
			return SPF_MACRO_SYNTAX;
		}
	}
	if (too_long || o.overflow)
		return SPF_MACRO_TOO_LONG;
	return o.len > INT32_MAX ? SPF_MACRO_TOO_LONG : (int)o.len;
}

/*
 * Record syntax (RFC 7208 sections 4.6.1, 5, 6 and 7.1).
 */

/*
 * Returns 1 for a toplabel: alphanumerics with at least one letter, or
 * alphanumerics and dashes that neither start nor end with a dash.
 */
static int
spf_toplabel_valid(const char *s, size_t len)
{
	int alpha = 0, dash = 0;
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (spf_is_alpha(s[i]))
			alpha = 1;
		else if (s[i] == '-')
			dash = 1;
		else if (!spf_is_digit(s[i]))
			return 0;
	}
	if (dash)
		return s[0] != '-' && s[len - 1] != '-';
	return alpha;
}

/*
 * Returns 1 if s[0..len) is a domain-spec: a macro-string ending in a
 * macro-expand or in "." toplabel with an optional final dot.  The
 * syntax is checked before expansion, never after.
 */
static int
spf_domain_spec_valid(const char *s, size_t len)
{
	enum spf_token tok, last = SPF_TOKEN_END;
	struct spf_macro m;
	size_t pos = 0, end, dot;

	if (len == 0)
		return 0;
	while ((tok = spf_macro_next(s, len, &pos, SPF_MACRO_DOMAIN, &m)) !=
	    SPF_TOKEN_END) {
		if (tok == SPF_TOKEN_ERROR)
			return 0;
		last = tok;
	}
	if (last == SPF_TOKEN_MACRO || last == SPF_TOKEN_ESCAPE)
		return 1;
	end = s[len - 1] == '.' ? len - 1 : len;
	for (dot = end; dot > 0 && s[dot - 1] != '.'; dot--)
		;
	if (dot == 0)
		return 0;
	return spf_toplabel_valid(s + dot, end - dot);
}

/*
 * Parse a CIDR length: decimal without leading zeros, at most max.
 * Returns 0, or -1.
 */
static int
spf_cidr_parse(const char *s, size_t len, unsigned max, uint8_t *out)
{
	unsigned value = 0;
	size_t i;

	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (!spf_is_digit(s[i]))
			return -1;
		value = value * 10 + (unsigned)(s[i] - '0');
	}
	if (value > max)
		return -1;
	*out = (uint8_t)value;
	return 0;
}

/* Parse ip4-network: four decimal octets, no leading zeros. */
static int
spf_ip4_parse(const char *s, size_t len, uint8_t out[4])
{
	size_t i = 0, part, digits;
	unsigned value;

	for (part = 0; part < 4; part++) {
		if (part > 0 && (i >= len || s[i++] != '.'))
			return -1;
		value = 0;
		for (digits = 0; i < len && spf_is_digit(s[i]); digits++, i++)
			value = value * 10 + (unsigned)(s[i] - '0');
		if (digits == 0 || digits > 3 || value > 255 ||
		    (digits > 1 && s[i - digits] == '0'))
			return -1;
		out[part] = (uint8_t)value;
	}
	return i == len ? 0 : -1;
}

/* Parse ":" network [ "/" length ] of ip4 and ip6 into t. */
static int
spf_ip_arg(const char *a, size_t alen, struct spf_term *t)
{
	char text[INET6_ADDRSTRLEN + 1];
	size_t slash;
	uint8_t *cidr;

	if (alen < 2 || a[0] != ':')
		return -1;
	a++;
	alen--;
	for (slash = 0; slash < alen && a[slash] != '/'; slash++)
		;
	if (t->mech == SPF_MECH_IP4) {
		if (spf_ip4_parse(a, slash, t->net) == -1)
			return -1;
		cidr = &t->cidr4;
	} else {
		if (slash >= sizeof(text))
			return -1;
		memcpy(text, a, slash);
		text[slash] = '\0';
		if (inet_pton(AF_INET6, text, t->net) != 1)
			return -1;
		cidr = &t->cidr6;
	}
	if (slash == alen)
		return 0;
	return spf_cidr_parse(a + slash + 1, alen - slash - 1,
	    t->mech == SPF_MECH_IP4 ? 32 : 128, cidr);
}

/* Returns the length of a run of digits ending at s[len]. */
static size_t
spf_digits_before(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && spf_is_digit(s[len - 1 - n]))
		n++;
	return n;
}

/*
 * Take a dual-cidr-length ("/" ip4 length, "//" ip6 length, both
 * optional, in that order) off the end of the a or mx argument
 * a[0..*alen).  Returns 0 with *alen shortened, or -1.
 */
static int
spf_dual_cidr(const char *a, size_t *alen, struct spf_term *t)
{
	size_t n = *alen, d = spf_digits_before(a, n);

	if (d > 0 && n >= d + 2 && a[n - d - 1] == '/' &&
	    a[n - d - 2] == '/') {
		if (spf_cidr_parse(a + n - d, d, 128, &t->cidr6) == -1)
			return -1;
		n -= d + 2;
		d = spf_digits_before(a, n);
	}
	if (d > 0 && n >= d + 1 && a[n - d - 1] == '/') {
		if (n >= d + 2 && a[n - d - 2] == '/')
			return -1;	/* a second ip6 length */
		if (spf_cidr_parse(a + n - d, d, 32, &t->cidr4) == -1)
			return -1;
		n -= d + 1;
	}
	*alen = n;
	return 0;
}

/*
 * Check the argument a[0..alen) of a mechanism (text after its name)
 * and fill t.  Returns 0, or -1 for a syntax error.
 */
static int
spf_mech_arg(const char *text, size_t aoff, size_t alen, struct spf_term *t)
{
	const char *a = text + aoff;
	int optional = 1;

	switch (t->mech) {
	case SPF_MECH_ALL:
		return alen == 0 ? 0 : -1;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		return spf_ip_arg(a, alen, t);
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		optional = 0;
		break;
	case SPF_MECH_A:
	case SPF_MECH_MX:
		if (spf_dual_cidr(a, &alen, t) == -1)
			return -1;
		break;
	case SPF_MECH_PTR:
		break;
	}
	if (alen == 0)
		return optional ? 0 : -1;
	if (a[0] != ':' || !spf_domain_spec_valid(a + 1, alen - 1))
		return -1;
	t->spec.off = (uint16_t)(aoff + 1);
	t->spec.len = (uint16_t)(alen - 1);
	return 0;
}

static void
spf_term_problem(char *problem, size_t problemsz, const char *what,
    const char *term, size_t len)
{
	char text[64];

	spf_copy_printable(text, sizeof(text), term, len);
	snprintf(problem, problemsz, "%s: %s", what, text);
}

/* Parse the mechanism rec->text[off..off+len) into the next term. */
static int
spf_mech_parse(struct spf_record *rec, size_t off, size_t len,
    char *problem, size_t problemsz)
{
	struct spf_term *t = &rec->terms[rec->nterms];
	const char *s = rec->text + off;
	size_t skip = 0, name_len, i;

	t->result = SPF_PASS;
	switch (s[0]) {
	case '+': t->result = SPF_PASS; skip = 1; break;
	case '-': t->result = SPF_FAIL; skip = 1; break;
	case '~': t->result = SPF_SOFTFAIL; skip = 1; break;
	case '?': t->result = SPF_NEUTRAL; skip = 1; break;
	}
	for (name_len = 0; skip + name_len < len &&
	    s[skip + name_len] != ':' && s[skip + name_len] != '/'; name_len++)
		;
	for (i = 0; i < sizeof(spf_mechs) / sizeof(spf_mechs[0]); i++)
		if (spf_word_eq(s + skip, name_len, spf_mechs[i].name))
			break;
	if (i == sizeof(spf_mechs) / sizeof(spf_mechs[0])) {
		spf_term_problem(problem, problemsz, "unknown mechanism", s,
		    len);
		return -1;
	}
	t->mech = (uint8_t)spf_mechs[i].mech;
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (spf_mech_arg(rec->text, off + skip + name_len,
	    len - skip - name_len, t) == -1) {
		spf_term_problem(problem, problemsz, "invalid mechanism", s,
		    len);
		return -1;
	}
	rec->nterms++;
	return 0;
}

/*
 * Parse the modifier rec->text[off..off+len) whose name has name_len
 * bytes: redirect= and exp= once each with a domain-spec, others with
 * any macro-string.
 */
static int
spf_modifier_parse(struct spf_record *rec, size_t off, size_t name_len,
    size_t len, char *problem, size_t problemsz)
{
	const char *s = rec->text + off, *value = s + name_len + 1;
	size_t vlen = len - name_len - 1, pos = 0;
	struct spf_span *span = NULL;
	enum spf_token tok;
	struct spf_macro m;

	if (spf_word_eq(s, name_len, "redirect"))
		span = &rec->redirect;
	else if (spf_word_eq(s, name_len, "exp"))
		span = &rec->exp;
	if (span == NULL) {
		while ((tok = spf_macro_next(value, vlen, &pos,
		    SPF_MACRO_EXPLANATION, &m)) != SPF_TOKEN_END)
			if (tok == SPF_TOKEN_ERROR) {
				spf_term_problem(problem, problemsz,
				    "invalid modifier", s, len);
				return -1;
			}
		return 0;
	}
	if (span->len > 0) {
		spf_term_problem(problem, problemsz, "modifier repeated", s,
		    len);
		return -1;
	}
	if (!spf_domain_spec_valid(value, vlen)) {
		spf_term_problem(problem, problemsz, "invalid modifier", s,
		    len);
		return -1;
	}
	span->off = (uint16_t)(off + name_len + 1);
	span->len = (uint16_t)vlen;
	return 0;
}

/*
 * Returns the length of a modifier name (ALPHA *( ALPHA / DIGIT / "-" /
 * "_" / "." )) followed by "=" at the start of s[0..len), else 0.
 */
static size_t
spf_modifier_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !spf_is_alpha(s[0]))
		return 0;
	for (i = 1; i < len; i++)
		if (!spf_is_alpha(s[i]) && !spf_is_digit(s[i]) &&
		    s[i] != '-' && s[i] != '_' && s[i] != '.')
			break;
	return i < len && s[i] == '=' ? i : 0;
}

/* Returns 1 if text starts with the version "v=spf1" and a space or end. */
static int
spf_is_version(const char *text, size_t len)
{
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 &&
	    (len == 6 || text[6] == ' ');
}

/* Count the space-separated terms after the version. */
static size_t
spf_count_terms(const char *text, size_t len)
{
	size_t i, n = 0;

	for (i = 6; i < len; i++)
		if (text[i] != ' ' && text[i - 1] == ' ')
			n++;
	return n;
}

static int
spf_record_check_bytes(const char *text, size_t len, char *problem,
    size_t problemsz)
{
	size_t i;

	if (len > SPF_RECORD_MAX) {
		snprintf(problem, problemsz, "record longer than %d bytes",
		    SPF_RECORD_MAX);
		return -1;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 ||
		    (unsigned char)text[i] > 0x7e) {
			snprintf(problem, problemsz,
			    "control or non-ASCII byte in the record");
			return -1;
		}
	if (!spf_is_version(text, len)) {
		snprintf(problem, problemsz, "record does not start with "
		    "v=spf1");
		return -1;
	}
	if (spf_count_terms(text, len) > SPF_MAX_TERMS) {
		snprintf(problem, problemsz, "more than %d terms in the record",
		    SPF_MAX_TERMS);
		return -1;
	}
	return 0;
}

struct spf_record *
spf_record_parse(const char *text, size_t len, char *problem,
    size_t problemsz)
{
	struct spf_record *rec;
	size_t pos = 6, start, name_len;
	int rc = 0;

	if (spf_record_check_bytes(text, len, problem, problemsz) == -1)
		return NULL;
	rec = xcalloc(1, sizeof(*rec));
	rec->text = xmalloc(len + 1);
	memcpy(rec->text, text, len);
	rec->text[len] = '\0';
	rec->len = len;
	rec->terms = xcalloc(spf_count_terms(text, len) + 1,
	    sizeof(*rec->terms));
	while (rc == 0) {
		while (pos < len && text[pos] == ' ')
			pos++;
		if (pos == len)
			break;
		for (start = pos; pos < len && text[pos] != ' '; pos++)
			;
		name_len = spf_modifier_name(text + start, pos - start);
		if (name_len > 0)
			rc = spf_modifier_parse(rec, start, name_len,
			    pos - start, problem, problemsz);
		else
			rc = spf_mech_parse(rec, start, pos - start, problem,
			    problemsz);
	}
	if (rc == -1) {
		spf_record_free(rec);
		return NULL;
	}
	return rec;
}

size_t
spf_record_mechanisms(const struct spf_record *rec)
{
	return rec->nterms;
}

void
spf_record_free(struct spf_record *rec)
{
	if (rec == NULL)
		return;
	free(rec->terms);
	free(rec->text);
	free(rec);
}

/*
 * Join the strings of a TXT record into buf (size bufsz, at least 1,
 * NUL-terminated).  Returns the joined length, which is bufsz or more
 * when the text did not fit, or -1 for malformed record data.
 */
static long
spf_txt_join(const ldns_rr *rr, char *buf, size_t bufsz)
{
	const ldns_rdf *rdf;
	const uint8_t *d;
	size_t i, n, total = 0, copy;

	for (i = 0; i < ldns_rr_rd_count(rr); i++) {
		rdf = ldns_rr_rdf(rr, i);
		if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_STR ||
		    ldns_rdf_size(rdf) < 1)
			return -1;
		d = ldns_rdf_data(rdf);
		n = d[0];
		if (n + 1 > ldns_rdf_size(rdf))
			return -1;
		if (total < bufsz - 1) {
			copy = n < bufsz - 1 - total ? n : bufsz - 1 - total;
			memcpy(buf + total, d + 1, copy);
		}
		total += n;
	}
	buf[total < bufsz - 1 ? total : bufsz - 1] = '\0';
	return (long)total;
}

/*
 * Select the SPF record among the TXT records rrs (RFC 7208 section
 * 4.5) and parse it.  Returns 1 with *out set, 0 when there is none, or
 * -1 with problem set (several records, too long, a syntax error).
 */
static int
spf_record_select(const ldns_rr_list *rrs, struct spf_record **out,
    char *problem, size_t problemsz)
{
	char text[SPF_RECORD_MAX + 1];
	const ldns_rr *rr;
	size_t i, found = 0;
	long len;

	*out = NULL;
	for (i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
		rr = ldns_rr_list_rr(rrs, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT ||
		    (len = spf_txt_join(rr, text, sizeof(text))) < 0 ||
		    !spf_is_version(text, (size_t)len < sizeof(text) ?
		    (size_t)len : sizeof(text) - 1))
			continue;
		if (++found > 1) {
			snprintf(problem, problemsz, "more than one SPF "
			    "record");
			spf_record_free(*out);
			*out = NULL;
			return -1;
		}
		*out = spf_record_parse(text, (size_t)len, problem, problemsz);
		if (*out == NULL)
			return -1;
	}
	return found > 0 ? 1 : 0;
}

/*
 * Addresses.
 */

/* Returns 1 if the first bits bits of a and b are equal. */
static int
spf_prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, bytes) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

/* Returns 1 if the client address is in the ip4 or ip6 network of t. */
static int
spf_ip_match(const struct spf_check *c, const struct spf_term *t)
{
	if (t->mech == SPF_MECH_IP4)
		return c->family == AF_INET &&
		    spf_prefix_match(c->ip, t->net, t->cidr4);
	return c->family == AF_INET6 &&
	    spf_prefix_match(c->ip, t->net, t->cidr6);
}

/*
 * Returns 1 if an A record (IPv4 client) or AAAA record (IPv6 client)
 * of rrs is within the given prefix lengths of the client address.
 */
static int
spf_rrs_match(const struct spf_check *c, const ldns_rr_list *rrs,
    unsigned cidr4, unsigned cidr6)
{
	ldns_rr_type type = c->family == AF_INET ? LDNS_RR_TYPE_A :
	    LDNS_RR_TYPE_AAAA;
	size_t size = c->family == AF_INET ? 4 : 16, i;
	unsigned bits = c->family == AF_INET ? cidr4 : cidr6;
	const ldns_rdf *rdf;
	const ldns_rr *rr;

	if (rrs == NULL)
		return 0;
	for (i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
		rr = ldns_rr_list_rr(rrs, i);
		if (ldns_rr_get_type(rr) != type || ldns_rr_rd_count(rr) < 1)
			continue;
		rdf = ldns_rr_rdf(rr, 0);
		if (rdf != NULL && ldns_rdf_size(rdf) == size &&
		    spf_prefix_match(ldns_rdf_data(rdf), c->ip, bits))
			return 1;
	}
	return 0;
}

static ldns_rr_type
spf_address_type(const struct spf_check *c)
{
	return c->family == AF_INET ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA;
}

/*
 * Parse the client address into c, an IPv4-mapped IPv6 address as IPv4
 * (RFC 7208 section 5), and make the %{i} and %{c} texts.
 */
static int
spf_client_parse(struct spf_check *c, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	struct in6_addr a6;
	size_t i, o = 0;

	if (text != NULL && inet_pton(AF_INET, text, c->ip) == 1)
		c->family = AF_INET;
	else if (text != NULL && inet_pton(AF_INET6, text, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			c->family = AF_INET;
			memcpy(c->ip, a6.s6_addr + 12, 4);
		} else {
			c->family = AF_INET6;
			memcpy(c->ip, a6.s6_addr, 16);
		}
	} else
		return -1;
	if (str_inet_ntop(c->family, c->ip, c->ip_text,
	    sizeof(c->ip_text)) == NULL)
		return -1;
	if (c->family == AF_INET) {
		str_copy(c->ip_dotted, c->ip_text, sizeof(c->ip_dotted));
		return 0;
	}
	/*
	 * NOTE: the nibbles are upper case because the RFC 7208 test suite
	 * expects that in explanations.  The RFC's own example is lower
	 * case, and DNS names compare without case either way.
	 */
	for (i = 0; i < 16; i++) {
		c->ip_dotted[o++] = hex[c->ip[i] >> 4];
		c->ip_dotted[o++] = '.';
		c->ip_dotted[o++] = hex[c->ip[i] & 0xf];
		c->ip_dotted[o++] = i < 15 ? '.' : '\0';
	}
	return 0;
}

/* Write the reverse-mapping name of the client address into out. */
static void
spf_reverse_name(const struct spf_check *c, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	int i;

	if (c->family == AF_INET) {
		snprintf(out, outsz, "%u.%u.%u.%u.in-addr.arpa", c->ip[3],
		    c->ip[2], c->ip[1], c->ip[0]);
		return;
	}
	for (i = 15; i >= 0 && o + 4 < outsz; i--) {
		out[o++] = hex[c->ip[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[c->ip[i] >> 4];
		out[o++] = '.';
	}
	snprintf(out + o, outsz - o, "ip6.arpa");
}

/*
 * The state machine.
 */

static const char *
spf_state_name(enum spf_state state)
{
	if ((size_t)state >= sizeof(spf_state_names) /
	    sizeof(spf_state_names[0]))
		fatal_invariant("SPF state without a name");
	return spf_state_names[state];
}

static void
spf_set_state(struct spf_check *c, enum spf_state state)
{
	log_debug("spf: state %s -> %s", spf_state_name(c->state),
	    spf_state_name(state));
	c->state = state;
}

static struct spf_frame *
spf_top(const struct spf_check *c)
{
	if (c->depth == 0)
		fatal_invariant("SPF check without a frame");
	return c->stack[c->depth - 1];
}

static const struct spf_term *
spf_current_term(const struct spf_check *c)
{
	const struct spf_frame *f = spf_top(c);

	if (f->record == NULL || f->next >= f->record->nterms)
		fatal_invariant("SPF mechanism lookup without a current term");
	return &f->record->terms[f->next];
}

static void
spf_cancel_lookups(struct spf_check *c)
{
	unsigned i;

	for (i = 0; i < SPF_MAX_NAMES; i++)
		if (c->slots[i].query != NULL) {
			dns_cancel(c->slots[i].query);
			c->slots[i].query = NULL;
		}
	c->pending = 0;
}

static void
spf_finish(struct spf_check *c, enum spf_result result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* End the check with result, and with the problem text fmt unless NULL. */
static void
spf_finish(struct spf_check *c, enum spf_result result, const char *fmt, ...)
{
	va_list ap;

	spf_cancel_lookups(c);
	c->outcome.result = result;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(c->outcome.problem, sizeof(c->outcome.problem), fmt,
		    ap);
		va_end(ap);
	}
	spf_set_state(c, SPF_ST_DONE);
}

/*
 * Start a lookup on slot i.  Returns 0, or -1 after ending the check
 * when it has made SPF_MAX_QUERIES queries.
 */
static int
spf_lookup(struct spf_check *c, unsigned i, const char *name,
    ldns_rr_type type)
{
	char text[2 * SPF_NAME_SIZE];
	struct spf_slot *s = &c->slots[i];

	if (s->query != NULL)
		fatal_invariant("SPF lookup slot busy");
	if (c->queries >= SPF_MAX_QUERIES) {
		spf_finish(c, SPF_PERMERROR, "more than %d DNS queries",
		    SPF_MAX_QUERIES);
		return -1;
	}
	c->queries++;
	spf_escape_name(name, text, sizeof(text));
	s->query = dns_lookup(c->dns, text, type, spf_dns_cb, s);
	c->pending++;
	return 0;
}

/* Count a term that causes DNS lookups; ends the check past the limit. */
static int
spf_count_dns_term(struct spf_check *c)
{
	if (++c->dns_terms <= SPF_MAX_DNS_TERMS)
		return 0;
	spf_finish(c, SPF_PERMERROR, "more than %d DNS lookups",
	    SPF_MAX_DNS_TERMS);
	return -1;
}

/* The current term's lookup found nothing: count it, no match. */
static void
spf_term_void(struct spf_check *c)
{
	if (++c->void_terms > SPF_MAX_VOID_LOOKUPS) {
		spf_finish(c, SPF_PERMERROR, "more than %d void lookups",
		    SPF_MAX_VOID_LOOKUPS);
		return;
	}
	spf_term_done(c, 0);
}

/*
 * Choose %{p} for domain from the validated PTR names: domain itself,
 * else a subdomain of it, else any (RFC 7208 section 7.3).  Returns
 * NULL when there is none.
 */
static const char *
spf_validated_name(const struct spf_check *c, const char *domain)
{
	const char *any = NULL, *sub = NULL;
	unsigned i;

	for (i = 0; i < c->nptr; i++) {
		if (!c->ptr_valid[i])
			continue;
		if (spf_name_within(domain, c->ptr_names[i]) &&
		    spf_name_within(c->ptr_names[i], domain))
			return c->ptr_names[i];
		if (sub == NULL && spf_name_within(c->ptr_names[i], domain))
			sub = c->ptr_names[i];
		if (any == NULL)
			any = c->ptr_names[i];
	}
	return sub != NULL ? sub : any;
}

static void
spf_macro_vars_fill(const struct spf_check *c, struct spf_macro_vars *v)
{
	const char *domain = spf_top(c)->domain;

	memset(v, 0, sizeof(*v));
	v->sender = c->sender;
	v->local = c->local;
	v->sender_domain = c->sender_domain;
	v->domain = domain;
	v->ip = c->ip_dotted;
	v->validated = spf_validated_name(c, domain);
	v->ip_version = c->family == AF_INET ? "in-addr" : "ip6";
	v->helo = c->helo;
	v->client = c->ip_text;
	v->receiver = c->receiver;
	v->timestamp = (long long)time(NULL);
}

/*
 * Expand the domain-spec span of the current record into name (size
 * SPF_NAME_SIZE).  Returns 0, or -1 when the result is no name that can
 * be looked up, which the caller treats as a name that does not exist.
 *
 * NOTE: an expansion longer than SPF_EXPAND_MAX bytes counts as such a
 * name instead of being truncated to its rightmost labels.
 */
static int
spf_expand_name(const struct spf_check *c, const struct spf_span *spec,
    char *name, size_t namesz)
{
	const struct spf_record *rec = spf_top(c)->record;
	struct spf_macro_vars vars;
	char buf[SPF_EXPAND_MAX];

	spf_macro_vars_fill(c, &vars);
	if (spf_macro_expand(&vars, SPF_MACRO_DOMAIN, rec->text + spec->off,
	    spec->len, buf, sizeof(buf)) < 0)
		return -1;
	spf_name_truncate(buf);
	if (!spf_name_valid(buf) || strlen(buf) >= namesz)
		return -1;
	memcpy(name, buf, strlen(buf) + 1);
	return 0;
}

/* Returns 1 if the span of the current record has a %{p} macro. */
static int
spf_span_uses_p(const struct spf_check *c, const struct spf_span *span)
{
	const struct spf_record *rec = spf_top(c)->record;

	return span->len > 0 && spf_macro_uses_p(rec->text + span->off,
	    span->len, SPF_MACRO_DOMAIN);
}

/*
 * Frames.
 */

/* Set the top frame's domain and look up its TXT records. */
static void
spf_frame_lookup(struct spf_check *c, const char *domain)
{
	struct spf_frame *f = spf_top(c);
	size_t len = strlen(domain);

	spf_record_free(f->record);
	f->record = NULL;
	f->next = 0;
	f->counted = 0;
	if (len > 0 && domain[len - 1] == '.')
		len--;		/* a final dot is no part of <domain> */
	if (len >= sizeof(f->domain))
		fatal_invariant("SPF domain not checked");
	memcpy(f->domain, domain, len);
	f->domain[len] = '\0';
	if (spf_lookup(c, 0, f->domain, LDNS_RR_TYPE_TXT) == 0)
		spf_set_state(c, SPF_ST_RECORD);
}

/* Push a frame for an include target, or the checked domain. */
static void
spf_frame_push(struct spf_check *c, const char *domain, int target)
{
	struct spf_frame *f;

	if (c->depth == SPF_MAX_DEPTH)
		fatal_invariant("SPF include depth past the lookup limit");
	f = xcalloc(1, sizeof(*f));
	f->target = target;
	c->stack[c->depth++] = f;
	spf_frame_lookup(c, domain);
}

static void
spf_frame_pop(struct spf_check *c)
{
	struct spf_frame *f = spf_top(c);

	spf_record_free(f->record);
	free(f);
	c->stack[--c->depth] = NULL;
}

/*
 * End the top frame with result: pass, fail, softfail, neutral or none.
 * An include frame hands it to the including term; the bottom frame
 * ends the check, through the exp= lookup for fail.
 */
static void
spf_frame_end(struct spf_check *c, enum spf_result result)
{
	struct spf_frame *f = spf_top(c);

	if (result == SPF_NONE && f->target) {
		spf_finish(c, SPF_PERMERROR, "no SPF record at %s", f->domain);
		return;
	}
	if (c->depth > 1) {
		spf_frame_pop(c);
		spf_term_done(c, result == SPF_PASS);
		return;
	}
	if (result == SPF_FAIL && f->record->exp.len > 0) {
		c->outcome.result = SPF_FAIL;
		spf_set_state(c, SPF_ST_EXP_BEGIN);
		return;
	}
	if (result == SPF_NONE)
		spf_finish(c, result, "no SPF record at %s", f->domain);
	else
		spf_finish(c, result, NULL);
}

/* The current term matched or not; go on with the next one. */
static void
spf_term_done(struct spf_check *c, int matched)
{
	struct spf_frame *f = spf_top(c);

	if (matched) {
		spf_frame_end(c, (enum spf_result)spf_current_term(c)->result);
		return;
	}
	f->next++;
	f->counted = 0;
	spf_set_state(c, SPF_ST_TERMS);
}

/*
 * PTR names, for the ptr mechanism and the %{p} macro.
 */

/*
 * Look up the PTR names of the client address.  A non-zero count makes
 * the lookup count as a DNS term, as it does for %{p} in a term.  The
 * state that started it is entered again once the names are validated.
 */
static void
spf_ptr_start(struct spf_check *c, int count)
{
	char name[80];

	if (count && spf_count_dns_term(c) == -1)
		return;
	c->ptr_resume = c->state;
	spf_reverse_name(c, name, sizeof(name));
	if (spf_lookup(c, 0, name, LDNS_RR_TYPE_PTR) == 0)
		spf_set_state(c, SPF_ST_PTR);
}

static void
spf_ptr_finish(struct spf_check *c)
{
	c->ptr_done = 1;
	spf_set_state(c, c->ptr_resume);
}

/*
 * Take the names of the first 10 PTR records (RFC 7208 section 4.6.4
 * ignores the rest) and look up their addresses to validate them.  A
 * failed PTR lookup leaves no validated name: no match, never an error.
 */
static void
spf_on_ptr(struct spf_check *c, const struct dns_answer *a)
{
	const ldns_rr *rr;
	size_t i, n;

	if (a->status != DNS_OK) {
		c->ptr_void = a->status == DNS_NXDOMAIN ||
		    a->status == DNS_NODATA;
		spf_ptr_finish(c);
		return;
	}
	if (c->ptr_names == NULL)
		c->ptr_names = xcalloc(SPF_MAX_NAMES, sizeof(*c->ptr_names));
	n = ldns_rr_list_rr_count(a->rrs);
	for (i = 0; i < n && i < SPF_MAX_NAMES; i++) {
		rr = ldns_rr_list_rr(a->rrs, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_PTR &&
		    ldns_rr_rd_count(rr) >= 1 &&
		    spf_dname_text(ldns_rr_rdf(rr, 0), c->ptr_names[c->nptr],
		    SPF_NAME_SIZE) == 0 &&
		    spf_name_valid(c->ptr_names[c->nptr]))
			c->nptr++;
	}
	if (c->nptr == 0) {
		spf_ptr_finish(c);
		return;
	}
	spf_set_state(c, SPF_ST_PTR_NAMES);
	for (i = 0; i < c->nptr; i++)
		if (spf_lookup(c, (unsigned)i, c->ptr_names[i],
		    spf_address_type(c)) == -1)
			return;
}

/* A PTR name is validated if one of its addresses is the client's. */
static void
spf_on_ptr_name(struct spf_check *c, unsigned i, const struct dns_answer *a)
{
	c->ptr_valid[i] = a->status == DNS_OK &&
	    spf_rrs_match(c, a->rrs, 32, 128);
	if (c->pending == 0)
		spf_ptr_finish(c);
}

/* The ptr mechanism: a validated name within the target matches. */
static void
spf_ptr_match(struct spf_check *c, const char *target)
{
	unsigned i;

	if (c->ptr_void) {
		spf_term_void(c);
		return;
	}
	for (i = 0; target != NULL && i < c->nptr; i++)
		if (c->ptr_valid[i] && spf_name_within(c->ptr_names[i], target)) {
			spf_term_done(c, 1);
			return;
		}
	spf_term_done(c, 0);
}

/*
 * Mechanisms with lookups.
 */

static void
spf_on_address(struct spf_check *c, const struct dns_answer *a)
{
	const struct spf_term *t = spf_current_term(c);

	switch (a->status) {
	case DNS_OK:
		if (t->mech == SPF_MECH_EXISTS)
			spf_term_done(c, 1);
		else
			spf_term_done(c, spf_rrs_match(c, a->rrs, t->cidr4,
			    t->cidr6));
		return;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		spf_term_void(c);
		return;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
		break;
	}
	spf_finish(c, SPF_TEMPERROR, "DNS failure looking up %s",
	    t->mech == SPF_MECH_EXISTS ? "exists" : "a");
}

/* Insertion sort of MX records by preference, stable. */
static void
spf_mx_sort(const ldns_rr **rrs, size_t n)
{
	const ldns_rr *rr;
	size_t i, j;

	for (i = 1; i < n; i++) {
		rr = rrs[i];
		for (j = i; j > 0 && ldns_rdf2native_int16(
		    ldns_rr_rdf(rrs[j - 1], 0)) >
		    ldns_rdf2native_int16(ldns_rr_rdf(rr, 0)); j--)
			rrs[j] = rrs[j - 1];
		rrs[j] = rr;
	}
}

/*
 * Collect the MX hosts into c->names in preference order, skipping the
 * null MX "." and names no SPF lookup can use.  Returns -1 for more
 * than 10 MX records (permerror, RFC 7208 section 4.6.4).
 */
static int
spf_mx_collect(struct spf_check *c, const ldns_rr_list *rrs)
{
	const ldns_rr *mx[SPF_MAX_NAMES];
	const ldns_rr *rr;
	size_t i, n = 0;

	for (i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
		rr = ldns_rr_list_rr(rrs, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_MX ||
		    ldns_rr_rd_count(rr) < 2 || ldns_rr_rdf(rr, 0) == NULL ||
		    ldns_rdf_size(ldns_rr_rdf(rr, 0)) != 2)
			continue;
		if (n == SPF_MAX_NAMES)
			return -1;
		mx[n++] = rr;
	}
	spf_mx_sort(mx, n);
	if (c->names == NULL)
		c->names = xcalloc(SPF_MAX_NAMES, sizeof(*c->names));
	c->nnames = 0;
	for (i = 0; i < n; i++)
		if (spf_dname_text(ldns_rr_rdf(mx[i], 1),
		    c->names[c->nnames], SPF_NAME_SIZE) == 0 &&
		    spf_name_valid(c->names[c->nnames]))
			c->nnames++;
	return 0;
}

static void
spf_on_mx(struct spf_check *c, const struct dns_answer *a)
{
	unsigned i;

	switch (a->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		spf_term_void(c);
		return;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
		spf_finish(c, SPF_TEMPERROR, "DNS failure looking up mx");
		return;
	}
	if (spf_mx_collect(c, a->rrs) == -1) {
		spf_finish(c, SPF_PERMERROR, "more than %d MX records",
		    SPF_MAX_NAMES);
		return;
	}
	if (c->nnames == 0) {
		spf_term_done(c, 0);
		return;
	}
	spf_set_state(c, SPF_ST_MX_HOSTS);
	for (i = 0; i < c->nnames; i++) {
		c->name_state[i] = SPF_NAME_WAITING;
		if (spf_lookup(c, i, c->names[i], spf_address_type(c)) == -1)
			return;
	}
}

/*
 * Decide the mx term once the MX hosts before the deciding one have
 * answered.  The hosts decide in preference order, as a sequential
 * evaluation would: the first host that matches or fails decides.
 */
static void
spf_mx_decide(struct spf_check *c)
{
	unsigned i;

	for (i = 0; i < c->nnames; i++) {
		switch (c->name_state[i]) {
		case SPF_NAME_WAITING:
			return;
		case SPF_NAME_ERROR:
			spf_finish(c, SPF_TEMPERROR, "DNS failure looking up "
			    "an MX host");
			return;
		case SPF_NAME_MATCH:
			spf_cancel_lookups(c);
			spf_term_done(c, 1);
			return;
		}
	}
	spf_term_done(c, 0);
}

static void
spf_on_mx_host(struct spf_check *c, unsigned i, const struct dns_answer *a)
{
	const struct spf_term *t = spf_current_term(c);

	if (a->status == DNS_SERVFAIL || a->status == DNS_TIMEOUT)
		c->name_state[i] = SPF_NAME_ERROR;
	else if (a->status == DNS_OK &&
	    spf_rrs_match(c, a->rrs, t->cidr4, t->cidr6))
		c->name_state[i] = SPF_NAME_MATCH;
	else
		c->name_state[i] = SPF_NAME_NO_MATCH;
	spf_mx_decide(c);
}

/*
 * Start the current term, a mechanism that causes lookups.  A %{p} in
 * its domain-spec, and the ptr mechanism itself, first need the PTR
 * names; the term is started again once they are validated, and counts
 * only once.
 */
static void
spf_term_start(struct spf_check *c, const struct spf_term *t)
{
	struct spf_frame *f = spf_top(c);
	char name[SPF_NAME_SIZE];
	int valid;

	if (!c->ptr_done && spf_span_uses_p(c, &t->spec)) {
		spf_ptr_start(c, 1);
		return;
	}
	if (!f->counted) {
		f->counted = 1;
		if (spf_count_dns_term(c) == -1)
			return;
	}
	if (t->mech == SPF_MECH_PTR && !c->ptr_done) {
		spf_ptr_start(c, 0);
		return;
	}
	if (t->spec.len > 0)
		valid = spf_expand_name(c, &t->spec, name, sizeof(name)) == 0;
	else {
		valid = 1;
		snprintf(name, sizeof(name), "%s", f->domain);
	}
	switch (t->mech) {
	case SPF_MECH_INCLUDE:
		if (!valid)
			spf_finish(c, SPF_PERMERROR, "invalid include target");
		else
			spf_frame_push(c, name, 1);
		return;
	case SPF_MECH_PTR:
		spf_ptr_match(c, valid ? name : NULL);
		return;
	case SPF_MECH_A:
	case SPF_MECH_EXISTS:
	case SPF_MECH_MX:
		break;
	default:
		fatal_invariant("SPF mechanism without lookups started");
	}
	if (!valid) {
		spf_term_void(c);
		return;
	}
	if (t->mech == SPF_MECH_MX) {
		if (spf_lookup(c, 0, name, LDNS_RR_TYPE_MX) == 0)
			spf_set_state(c, SPF_ST_MX);
		return;
	}
	if (spf_lookup(c, 0, name, t->mech == SPF_MECH_EXISTS ?
	    LDNS_RR_TYPE_A : spf_address_type(c)) == 0)
		spf_set_state(c, SPF_ST_ADDRESS);
}

/* No mechanism matched: follow redirect=, else the result is neutral. */
static void
spf_redirect(struct spf_check *c)
{
	struct spf_frame *f = spf_top(c);
	char name[SPF_NAME_SIZE];

	if (f->record->redirect.len == 0) {
		spf_frame_end(c, SPF_NEUTRAL);
		return;
	}
	if (!c->ptr_done && spf_span_uses_p(c, &f->record->redirect)) {
		spf_ptr_start(c, 1);
		return;
	}
	if (spf_count_dns_term(c) == -1)
		return;
	if (spf_expand_name(c, &f->record->redirect, name, sizeof(name)) ==
	    -1) {
		spf_finish(c, SPF_PERMERROR, "invalid redirect target");
		return;
	}
	f->target = 1;
	spf_frame_lookup(c, name);
}

/* Evaluate terms until one needs DNS or the frame has a result. */
static void
spf_terms_step(struct spf_check *c)
{
	struct spf_frame *f = spf_top(c);
	const struct spf_term *t;

	while (f->next < f->record->nterms) {
		t = &f->record->terms[f->next];
		switch (t->mech) {
		case SPF_MECH_ALL:
			spf_term_done(c, 1);
			return;
		case SPF_MECH_IP4:
		case SPF_MECH_IP6:
			if (spf_ip_match(c, t)) {
				spf_term_done(c, 1);
				return;
			}
			f->next++;
			break;
		default:
			spf_term_start(c, t);
			return;
		}
	}
	spf_redirect(c);
}

static void
spf_on_record(struct spf_check *c, const struct dns_answer *a)
{
	struct spf_frame *f = spf_top(c);
	char problem[sizeof(c->outcome.problem)];
	int rc;

	switch (a->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		spf_frame_end(c, SPF_NONE);
		return;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
		spf_finish(c, SPF_TEMPERROR, "DNS failure looking up the "
		    "SPF record of %s", f->domain);
		return;
	}
	rc = spf_record_select(a->rrs, &f->record, problem, sizeof(problem));
	if (rc == -1)
		spf_finish(c, SPF_PERMERROR, "%s at %s", problem, f->domain);
	else if (rc == 0)
		spf_frame_end(c, SPF_NONE);
	else
		spf_set_state(c, SPF_ST_TERMS);
}

/*
 * The explanation (RFC 7208 section 6.2).  Any problem with it leaves
 * the result fail without an explanation.
 */

static void
spf_exp_begin(struct spf_check *c)
{
	const struct spf_record *rec = spf_top(c)->record;
	char name[SPF_NAME_SIZE];

	if (!c->ptr_done && spf_span_uses_p(c, &rec->exp)) {
		spf_ptr_start(c, 0);
		return;
	}
	if (spf_expand_name(c, &rec->exp, name, sizeof(name)) == -1) {
		spf_finish(c, SPF_FAIL, NULL);
		return;
	}
	if (spf_lookup(c, 0, name, LDNS_RR_TYPE_TXT) == 0)
		spf_set_state(c, SPF_ST_EXP);
}

/* Keep the text of exactly one printable TXT record. */
static void
spf_on_exp(struct spf_check *c, const struct dns_answer *a)
{
	long len;
	size_t i;

	if (a->status != DNS_OK || ldns_rr_list_rr_count(a->rrs) != 1) {
		spf_finish(c, SPF_FAIL, NULL);
		return;
	}
	if (c->exp_text == NULL)
		c->exp_text = xmalloc(SPF_EXP_TEXT_MAX + 1);
	len = spf_txt_join(ldns_rr_list_rr(a->rrs, 0), c->exp_text,
	    SPF_EXP_TEXT_MAX + 1);
	if (len < 0 || (size_t)len >= SPF_EXP_TEXT_MAX + 1) {
		spf_finish(c, SPF_FAIL, NULL);
		return;
	}
	c->exp_len = (size_t)len;
	for (i = 0; i < c->exp_len; i++)
		if ((unsigned char)c->exp_text[i] < 0x20 ||
		    (unsigned char)c->exp_text[i] > 0x7e) {
			spf_finish(c, SPF_FAIL, NULL);
			return;
		}
	spf_set_state(c, SPF_ST_EXP_TEXT);
}

static void
spf_exp_text(struct spf_check *c)
{
	struct spf_macro_vars vars;
	char *out = c->outcome.explanation;
	int n;

	if (!c->ptr_done && spf_macro_uses_p(c->exp_text, c->exp_len,
	    SPF_MACRO_EXPLANATION)) {
		spf_ptr_start(c, 0);
		return;
	}
	spf_macro_vars_fill(c, &vars);
	n = spf_macro_expand(&vars, SPF_MACRO_EXPLANATION, c->exp_text,
	    c->exp_len, out, sizeof(c->outcome.explanation));
	if (n == SPF_MACRO_SYNTAX)
		out[0] = '\0';
	/* Macro values can hold any byte the sender sent. */
	spf_copy_printable(out, sizeof(c->outcome.explanation), out,
	    strlen(out));
	spf_finish(c, SPF_FAIL, NULL);
}

/*
 * Driving the machine.
 */

static void
spf_free(struct spf_check *c)
{
	spf_cancel_lookups(c);
	while (c->depth > 0)
		spf_frame_pop(c);
	free(c->names);
	free(c->ptr_names);
	free(c->exp_text);
	free(c);
}

static void
spf_deliver(struct spf_check *c)
{
	char domain[80];

	spf_cancel_lookups(c);
	spf_copy_printable(c->outcome.problem, sizeof(c->outcome.problem),
	    c->outcome.problem, strlen(c->outcome.problem));
	if (log_enabled(LOG_LVL_DEBUG))
		log_debug("spf: result=%s domain=%s lookups=%u queries=%u "
		    "problem=\"%s\"", spf_result_str(c->outcome.result),
		    log_printable(domain, sizeof(domain), c->outcome.domain,
		    strlen(c->outcome.domain)), c->dns_terms, c->queries,
		    c->outcome.problem);
	c->delivering = 1;
	c->cb(c->cb_arg, &c->outcome);
	spf_free(c);
}

/* Run the states that need no DNS answer until one waits or the end. */
static void
spf_run(struct spf_check *c)
{
	for (;;) {
		switch (c->state) {
		case SPF_ST_TERMS:
			spf_terms_step(c);
			break;
		case SPF_ST_EXP_BEGIN:
			spf_exp_begin(c);
			break;
		case SPF_ST_EXP_TEXT:
			spf_exp_text(c);
			break;
		case SPF_ST_DONE:
			spf_deliver(c);
			return;
		case SPF_ST_DEFER:
		case SPF_ST_RECORD:
		case SPF_ST_ADDRESS:
		case SPF_ST_MX:
		case SPF_ST_MX_HOSTS:
		case SPF_ST_PTR:
		case SPF_ST_PTR_NAMES:
		case SPF_ST_EXP:
			return;		/* waiting for DNS */
		default:
			fatal_invariant("SPF check run in an unknown state");
		}
	}
}

static void
spf_dns_cb(void *arg, const struct dns_answer *a)
{
	struct spf_slot *s = arg;
	struct spf_check *c = s->check;

	s->query = NULL;
	if (c->pending == 0)
		fatal_invariant("SPF DNS callback without a pending lookup");
	c->pending--;
	switch (c->state) {
	case SPF_ST_DEFER:
		spf_set_state(c, SPF_ST_DONE);
		break;
	case SPF_ST_RECORD:
		spf_on_record(c, a);
		break;
	case SPF_ST_ADDRESS:
		spf_on_address(c, a);
		break;
	case SPF_ST_MX:
		spf_on_mx(c, a);
		break;
	case SPF_ST_MX_HOSTS:
		spf_on_mx_host(c, s->index, a);
		break;
	case SPF_ST_PTR:
		spf_on_ptr(c, a);
		break;
	case SPF_ST_PTR_NAMES:
		spf_on_ptr_name(c, s->index, a);
		break;
	case SPF_ST_EXP:
		spf_on_exp(c, a);
		break;
	default:
		fatal_invariant("SPF DNS callback in a state without lookups");
	}
	spf_run(c);
}

/*
 * Starting a check.
 */

static int
spf_copy_input(char *dst, size_t dstsz, const char *src, size_t len)
{
	if (len >= dstsz)
		return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/*
 * Split the sender into local part and domain, with "postmaster" for a
 * missing local part and postmaster@helo for the null sender (RFC 7208
 * sections 2.4 and 4.3).  Returns NULL, or what is wrong.
 */
static const char *
spf_sender_parse(struct spf_check *c, const char *helo, const char *sender)
{
	const char *at = NULL, *domain, *local = "postmaster";
	size_t local_len = strlen(local), len;

	if (helo == NULL)
		helo = "";
	if (spf_copy_input(c->helo, sizeof(c->helo), helo, strlen(helo)) == -1)
		return "HELO name too long";
	domain = c->helo;
	if (sender != NULL && sender[0] != '\0') {
		at = strrchr(sender, '@');
		domain = at != NULL ? at + 1 : sender;
	}
	if (at != NULL && at > sender) {
		local = sender;
		local_len = (size_t)(at - sender);
	}
	len = strlen(domain);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (spf_copy_input(c->local, sizeof(c->local), local, local_len) ==
	    -1 || spf_copy_input(c->sender_domain, sizeof(c->sender_domain),
	    domain, len) == -1)
		return "sender address too long";
	snprintf(c->sender, sizeof(c->sender), "%s@%s", c->local,
	    c->sender_domain);
	return NULL;
}

/*
 * Returns NULL if domain can be checked, else why not: check_host()
 * returns none for a malformed domain or one with a single label (RFC
 * 7208 section 4.3).
 */
static const char *
spf_domain_problem(const char *domain)
{
	size_t i;

	if (domain[0] == '[')
		return "domain literal";
	for (i = 0; domain[i] != '\0'; i++)
		if ((unsigned char)domain[i] <= 0x20 ||
		    (unsigned char)domain[i] > 0x7e)
			return "invalid domain name";
	if (!spf_name_valid(domain))
		return "invalid domain name";
	if (strchr(domain, '.') == NULL)
		return "domain name with a single label";
	return NULL;
}

/* Copy the inputs into c.  Returns NULL, or what is wrong. */
static const char *
spf_inputs(struct spf_check *c, const char *client_ip, const char *helo,
    const char *sender, const char *receiver)
{
	const char *problem;

	if (spf_client_parse(c, client_ip) == -1)
		return "invalid client address";
	if ((problem = spf_sender_parse(c, helo, sender)) != NULL)
		return problem;
	if (receiver == NULL || receiver[0] == '\0')
		receiver = "unknown";
	if (spf_copy_input(c->receiver, sizeof(c->receiver), receiver,
	    strlen(receiver)) == -1)
		return "receiver name too long";
	spf_copy_printable(c->outcome.domain, sizeof(c->outcome.domain),
	    c->sender_domain, strlen(c->sender_domain));
	return spf_domain_problem(c->sender_domain);
}

struct spf_check *
spf_check_start(struct dns_ctx *dns, const char *client_ip, const char *helo,
    const char *sender, const char *receiver, spf_cb *cb, void *arg)
{
	struct spf_check *c = xcalloc(1, sizeof(*c));
	const char *problem;
	unsigned i;

	c->dns = dns;
	c->cb = cb;
	c->cb_arg = arg;
	for (i = 0; i < SPF_MAX_NAMES; i++) {
		c->slots[i].check = c;
		c->slots[i].index = i;
	}
	c->outcome.result = SPF_NONE;
	problem = spf_inputs(c, client_ip, helo, sender, receiver);
	if (problem != NULL) {
		snprintf(c->outcome.problem, sizeof(c->outcome.problem), "%s",
		    problem);
		spf_set_state(c, SPF_ST_DEFER);
		spf_lookup(c, 0, SPF_DEFER_NAME, LDNS_RR_TYPE_A);
		return c;
	}
	spf_frame_push(c, c->sender_domain, 0);
	return c;
}

void
spf_check_cancel(struct spf_check *c)
{
	if (c == NULL || c->delivering)
		return;
	spf_free(c);
}

const char *
spf_result_str(enum spf_result result)
{
	switch (result) {
	case SPF_NONE:
		return "none";
	case SPF_NEUTRAL:
		return "neutral";
	case SPF_PASS:
		return "pass";
	case SPF_FAIL:
		return "fail";
	case SPF_SOFTFAIL:
		return "softfail";
	case SPF_TEMPERROR:
		return "temperror";
	case SPF_PERMERROR:
		return "permerror";
	}
	return "unknown";
}
