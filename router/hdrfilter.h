/*
 * Removal of Authentication-Results fields that claim the relay's own
 * authserv-id.  Receivers trust the field with the authserv-id of the
 * relay they received the mail from, so RFC 8601 section 5 requires an
 * MTA that adds the field to delete any copy of it that a message
 * arrives with.  Every other byte passes unchanged.
 *
 * The filter runs on the header section of the message data as it goes
 * out (dot-stuffed, CRLF lines).  A field whose name is
 * Authentication-Results is held back until it ends, up to
 * HDRFILTER_HOLD_MAX bytes, and then written or dropped together with its
 * continuation lines.  After the empty line that ends the header section
 * everything passes.
 */
#ifndef ROUTER_HDRFILTER_H
#define ROUTER_HDRFILTER_H

#include <stddef.h>

/* Bytes of one Authentication-Results field held back at most. */
#define HDRFILTER_HOLD_MAX	4096
/* Output room hdrfilter_run() needs for len input bytes. */
#define HDRFILTER_OUT(len)	((len) + HDRFILTER_HOLD_MAX)

enum hdrfilter_mode {
	HDRFILTER_PASS,		/* copy the current field */
	HDRFILTER_NAME,		/* reading a name that may be the field's */
	HDRFILTER_HOLD,		/* an Authentication-Results field, held */
	HDRFILTER_DROP,		/* a field claiming the relay's id */
};

struct hdrfilter {
	char			 id[256];	/* the relay's authserv-id */
	int			 done;		/* the header section ended */
	int			 line_start;	/* the next byte starts a line */
	enum hdrfilter_mode	 mode;
	size_t			 nheld;
	char			 held[HDRFILTER_HOLD_MAX];
	unsigned		 removed;	/* fields dropped */
};

void	 hdrfilter_init(struct hdrfilter *, const char *authserv_id);
/*
 * Filter len bytes of message data into out, which has room for
 * HDRFILTER_OUT(len) bytes.  Returns the bytes written.
 */
size_t	 hdrfilter_run(struct hdrfilter *, const char *in, size_t len,
	    char *out);
/*
 * End of the data: write or drop what is held back into out (room for
 * HDRFILTER_HOLD_MAX bytes).  Returns the bytes written.
 */
size_t	 hdrfilter_finish(struct hdrfilter *, char *out);

/*
 * Non-zero when the raw field (name, colon and value, folding kept)
 * carries authserv_id as its authserv-id, compared case-insensitively;
 * comments and a quoted-string form are understood.
 */
int	 hdrfilter_claims(const char *field, size_t len,
	    const char *authserv_id);

#endif
