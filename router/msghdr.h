/*
 * Header section collection for the inbound authentication checks.  The
 * relay streams each message through without storing it, so DKIM, ARC
 * and DMARC keep only the header section.  msghdr_update() is fed the
 * message bytes as they arrive, with dot-stuffing already removed and
 * CRLF line ends.  It stores each header field byte for byte and reports
 * where the body starts.  The body itself is never stored.
 *
 * Storage is bounded by MSGHDR_FIELDS_MAX fields and MSGHDR_BYTES_MAX
 * bytes.  Past either limit the collector sets the overflow flag, keeps
 * the fields already stored and stores no more, but still finds the end
 * of the header section.  Every stored field is complete.
 *
 * A line ends at LF, and the CR before it is part of the line end when
 * present.  A header line without a colon (not a valid field) is stored
 * as a field with an empty name, so that it can never match a lookup.
 */
#ifndef ROUTER_MSGHDR_H
#define ROUTER_MSGHDR_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MSGHDR_FIELDS_MAX	1000
#define MSGHDR_BYTES_MAX	(256 * 1024)
/* Returned by msghdr_find() when no further field has the name. */
#define MSGHDR_NONE		SIZE_MAX

struct msghdr_field {
	size_t	 off;		/* start of the field in the stored bytes */
	size_t	 len;		/* raw length, the final line end included */
	size_t	 name_len;	/* 0 for a line that is not a valid field */
	size_t	 value_off;	/* value start (after the colon), from off */
};

struct msghdr_section {
	struct buf		 data;		/* raw bytes of stored fields */
	struct msghdr_field	*fields;
	size_t			 nfields;
	size_t			 fields_size;	/* allocated entries */
	int			 open;		/* the last field may go on */
	/* The line being read, also when it is not stored. */
	size_t			 line_len;
	unsigned char		 line_first;	/* first byte of the line */
	int			 line_stored;	/* its bytes are in data */
	uint64_t		 header_bytes;	/* header section so far */
	int			 done;		/* the header section ended */
	int			 overflow;	/* a limit was reached */
};

void	 msghdr_init(struct msghdr_section *);
/* Free the stored fields; the struct may be initialised again. */
void	 msghdr_free(struct msghdr_section *);

/*
 * Feed the next len message bytes.  Returns how many of them belong to
 * the header section, the empty line that ends it included.  When that
 * is less than len, or when msghdr_done() turns true, the header section
 * is complete and the remaining bytes are the start of the body.  Once
 * done, every call returns 0.
 */
size_t	 msghdr_update(struct msghdr_section *, const char *bytes,
	    size_t len);
/*
 * End of the message.  A header section with no empty line after it (a
 * message without a body) is complete from here on.  An unterminated last
 * line is stored as it is.
 */
void	 msghdr_finish(struct msghdr_section *);

int	 msghdr_done(const struct msghdr_section *);
int	 msghdr_overflow(const struct msghdr_section *);
/* Bytes of the header section, the empty line included: the body offset. */
uint64_t msghdr_body_offset(const struct msghdr_section *);

size_t	 msghdr_count(const struct msghdr_section *);
/*
 * The raw bytes of field i (i < msghdr_count()), its final line end
 * included, and their count in *len.  Pointers into the stored fields
 * stay valid until the next msghdr_update(), msghdr_finish() or
 * msghdr_free().
 */
const char *msghdr_raw(const struct msghdr_section *, size_t i,
	    size_t *len);
/* The name of field i, not NUL-terminated, length in *len (0: no name). */
const char *msghdr_name(const struct msghdr_section *, size_t i,
	    size_t *len);
/*
 * The raw value of field i: the bytes after the colon up to, not
 * including, the final line end, folding kept.
 */
const char *msghdr_raw_value(const struct msghdr_section *, size_t i,
	    size_t *len);
/* Non-zero when field i is named name, compared case-insensitively. */
int	 msghdr_name_is(const struct msghdr_section *, size_t i,
	    const char *name);
/*
 * The index of the first field at or after from that is named name
 * (case-insensitive), or MSGHDR_NONE.
 */
size_t	 msghdr_find(const struct msghdr_section *, const char *name,
	    size_t from);
/*
 * Copy the unfolded value of field i into out (size outsz, always
 * NUL-terminated when outsz > 0): line ends of the folding removed and
 * leading and trailing white space trimmed.  Returns the length of the
 * whole unfolded value, which is outsz or more when it was truncated.  A
 * NUL byte in the value ends the copy early for C string users, so
 * compare the return value with strlen(out) where that matters.
 */
size_t	 msghdr_value(const struct msghdr_section *, size_t i, char *out,
	    size_t outsz);

#endif
