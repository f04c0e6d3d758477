/*
 * The DATA stream scanner: finds the end of a message in dot-stuffed SMTP
 * data and flags bare CR and bare LF.  Only CRLF "." CRLF ends the data
 * (RFC 5321 section 4.1.1.4); any other line ending is an error, because
 * a destination might read it as the end of data (SMTP smuggling).
 *
 * The bytes are passed on still dot-stuffed: the relay copies lines from
 * one SMTP session to another, so it never needs to remove the stuffing.
 */
#ifndef ROUTER_SMTP_DATA_H
#define ROUTER_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

/* Longest text line, CRLF included (RFC 5321 section 4.5.3.1.6). */
#define DATA_LINE_MAX	1000

enum data_scan_state {
	DATA_LINE_START,	/* at the start of a line */
	DATA_MID,		/* inside a line */
	DATA_CR,		/* after a CR inside a line */
	DATA_DOT,		/* after "." at a line start (held back) */
	DATA_DOT_CR,		/* after "." CR at a line start (held back) */
	DATA_NL_START,		/* after a normalised bare CR or LF */
};

struct data_scan {
	enum data_scan_state	 state;
	int			 bare_cr;	/* a CR not followed by LF */
	int			 bare_lf;	/* an LF not preceded by CR */
	int			 normalize;	/* rewrite bare CR and LF as CRLF */
	unsigned long		 normalized;	/* bare CR and LF rewritten */
	/*
	 * Message bytes passed on, without the dots of dot-stuffing: RFC
	 * 1870 defines the message size without "doubled quoting dots".
	 */
	uint64_t		 bytes;
	size_t			 line_len;	/* octets of the current line */
	int			 long_line;	/* a line over DATA_LINE_MAX */
	/* The header section, up to the first empty line. */
	int			 in_header;
	size_t			 line_pos;	/* bytes so far in this line */
	char			 line_start[9];	/* first bytes of a header line */
	unsigned		 received;	/* "Received:" header fields */
	int			 header_8bit;	/* a header byte outside ASCII */
};

/* Output room for len input bytes: normalising can double a byte. */
#define DATA_SCAN_OUT(len)	(2 * (len) + 4)

void	data_scan_init(struct data_scan *);

/*
 * Scan len bytes of in.  Bytes of the message are copied to out, which
 * must have room for DATA_SCAN_OUT(len) bytes; *outlen is set to their
 * count.  The
 * end marker is never copied.  Returns the number of bytes of in consumed;
 * *done is set when the end marker was found, and then the bytes after it
 * belong to the next command.
 */
size_t	data_scan(struct data_scan *, const char *in, size_t len, char *out,
	    size_t *outlen, int *done);

#endif
