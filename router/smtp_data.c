/*
 * DATA stream scanner.  Transitions (emit = copy to the output):
 *
 *   LINE_START  "."  -> DOT (hold)      CR -> CR (emit)
 *               LF   -> bare LF         other -> MID (emit)
 *   MID         CR   -> CR (emit)       LF -> bare LF   other -> MID
 *   CR          LF   -> LINE_START      other -> bare CR, rescan
 *   DOT         CR   -> DOT_CR (hold)   other -> emit ".", rescan in MID
 *   DOT_CR      LF   -> end of data     other -> bare CR, emit ".\r",
 *                                                rescan
 *
 * A bare LF never leads to LINE_START, so only CRLF "." CRLF ends the
 * data.  When refusing (the default), bare CR and LF pass through and
 * are flagged, and the caller aborts the destinations.  When normalising,
 * each becomes CRLF and the line after it goes through NL_START, which
 * stuffs a leading dot, so the output holds no bare CR or LF and no end
 * marker.
 */
#include <string.h>
#include <strings.h>

#include "smtp_data.h"

static void data_scan_nl_start(struct data_scan *, char, char *, size_t *);

void
data_scan_init(struct data_scan *ds)
{
	memset(ds, 0, sizeof(*ds));
	ds->state = DATA_LINE_START;
	ds->in_header = 1;
}

/*
 * Count "Received:" fields in the header section (for loop detection,
 * RFC 5321 section 6.3) and notice the empty line that ends it.
 */
static void
data_scan_header(struct data_scan *ds, char c)
{
	if ((unsigned char)c >= 0x80)
		ds->header_8bit = 1;
	if (c == '\n') {
		if (ds->line_pos == 1 && ds->line_start[0] == '\r')
			ds->in_header = 0;
		ds->line_pos = 0;
		return;
	}
	if (ds->line_pos < sizeof(ds->line_start)) {
		ds->line_start[ds->line_pos] = c;
		if (ds->line_pos == sizeof(ds->line_start) - 1 &&
		    strncasecmp(ds->line_start, "received:", 9) == 0)
			ds->received++;
	}
	ds->line_pos++;
}

/* Emit one byte of a line, keeping the line length and header state. */
static void
data_emit(struct data_scan *ds, char c, char *out, size_t *o)
{
	if (ds->in_header)
		data_scan_header(ds, c);
	if (++ds->line_len > DATA_LINE_MAX)
		ds->long_line = 1;
	if (c == '\n')
		ds->line_len = 0;
	out[(*o)++] = c;
}

/*
 * A bare CR or LF ended a line.  Refusing mode passes it on as it is and
 * flags it; normalising mode writes CRLF instead, and the next line gets
 * stuffed if it starts with a dot, so no end marker can appear.
 */
static void
data_bare(struct data_scan *ds, char c, char *out, size_t *o)
{
	if (c == '\n')
		ds->bare_lf = 1;
	else
		ds->bare_cr = 1;
	if (!ds->normalize) {
		data_emit(ds, c, out, o);
		ds->state = c == '\r' ? DATA_CR : DATA_MID;
		return;
	}
	ds->normalized++;
	if (c == '\r') {
		/* Wait: CR LF is a line end, a lone CR becomes CRLF. */
		ds->state = DATA_CR;
		data_emit(ds, '\r', out, o);
		return;
	}
	data_emit(ds, '\r', out, o);
	data_emit(ds, '\n', out, o);
	ds->state = DATA_NL_START;
}

/* Handle one byte inside a line (state MID or the start of a line). */
static void
data_scan_mid(struct data_scan *ds, char c, char *out, size_t *o)
{
	if (c == '\n') {
		/*
		 * A bare LF does not start a line: "\n.\r\n" must not end the
		 * data, or input after it would run as commands.
		 */
		data_bare(ds, c, out, o);
		return;
	}
	data_emit(ds, c, out, o);
	ds->state = c == '\r' ? DATA_CR : DATA_MID;
}

/*
 * Do for a run of header bytes without CR or LF what data_scan_header()
 * does byte by byte.
 */
static void
data_scan_header_run(struct data_scan *ds, const char *p, size_t n)
{
	size_t i, take;

	for (i = 0; i < n && !ds->header_8bit; i++)
		if ((unsigned char)p[i] >= 0x80)
			ds->header_8bit = 1;
	if (ds->line_pos < sizeof(ds->line_start)) {
		take = sizeof(ds->line_start) - ds->line_pos;
		if (take > n)
			take = n;
		memcpy(ds->line_start + ds->line_pos, p, take);
		if (ds->line_pos + take == sizeof(ds->line_start) &&
		    strncasecmp(ds->line_start, "received:", 9) == 0)
			ds->received++;
	}
	ds->line_pos += n;
}

/*
 * Copy the run of bytes up to the next CR or LF in one go: a message is
 * mostly such runs, and a call per byte would dominate the relay's time
 * on large messages.  Returns the run length (at least 1: the caller saw
 * a byte that is neither CR nor LF).
 */
static size_t
data_scan_run(struct data_scan *ds, const char *in, size_t len, char *out,
    size_t *o)
{
	const char *lf = memchr(in, '\n', len);
	size_t n = lf != NULL ? (size_t)(lf - in) : len;
	const char *cr = memchr(in, '\r', n);

	if (cr != NULL)
		n = (size_t)(cr - in);
	if (ds->in_header)
		data_scan_header_run(ds, in, n);
	memcpy(out + *o, in, n);
	*o += n;
	ds->line_len += n;
	if (ds->line_len > DATA_LINE_MAX)
		ds->long_line = 1;
	return n;
}

/* After a CR inside a line. */
static void
data_scan_cr(struct data_scan *ds, char c, char *out, size_t *o)
{
	if (c == '\n') {
		data_emit(ds, c, out, o);
		ds->state = DATA_LINE_START;
		return;
	}
	/* The CR before c was bare. */
	ds->bare_cr = 1;
	if (ds->normalize) {
		ds->normalized++;
		data_emit(ds, '\n', out, o);
		ds->state = DATA_NL_START;
		data_scan_nl_start(ds, c, out, o);
		return;
	}
	data_scan_mid(ds, c, out, o);
}

/*
 * The first byte of a line that a normalised bare CR or LF started: it
 * is never part of an end marker, and a leading dot is stuffed.
 */
static void
data_scan_nl_start(struct data_scan *ds, char c, char *out, size_t *o)
{
	if (c == '.') {
		data_emit(ds, '.', out, o);
		data_emit(ds, '.', out, o);
		ds->state = DATA_MID;
		return;
	}
	data_scan_mid(ds, c, out, o);
}

size_t
data_scan(struct data_scan *ds, const char *in, size_t len, char *out,
    size_t *outlen, int *done)
{
	size_t i, o = 0, stuffing = 0;

	*done = 0;
	for (i = 0; i < len; i++) {
		char c = in[i];

		switch (ds->state) {
		case DATA_LINE_START:
			if (c == '.') {
				ds->state = DATA_DOT;
				break;
			}
			data_scan_mid(ds, c, out, &o);
			break;
		case DATA_NL_START:
			data_scan_nl_start(ds, c, out, &o);
			break;
		case DATA_MID:
			if (c != '\r' && c != '\n') {
				i += data_scan_run(ds, in + i, len - i, out, &o) - 1;
				break;
			}
			data_scan_mid(ds, c, out, &o);
			break;
		case DATA_CR:
			data_scan_cr(ds, c, out, &o);
			break;
		case DATA_DOT:
			if (c == '\r') {
				ds->state = DATA_DOT_CR;
				break;
			}
			data_emit(ds, '.', out, &o);
			stuffing++;
			if (c == '\n' && ds->normalize) {
				/* ".\n" alone on a line: keep it as a stuffed dot. */
				data_emit(ds, '.', out, &o);
			}
			data_scan_mid(ds, c, out, &o);
			break;
		case DATA_DOT_CR:
			if (c == '\n') {
				ds->state = DATA_LINE_START;
				ds->bytes += o - stuffing;
				*outlen = o;
				*done = 1;
				return i + 1;
			}
			/* ".\r" then something else: the CR was bare. */
			data_emit(ds, '.', out, &o);
			stuffing++;
			if (ds->normalize)
				data_emit(ds, '.', out, &o);
			data_emit(ds, '\r', out, &o);
			data_scan_cr(ds, c, out, &o);
			break;
		}
	}
	ds->bytes += o - stuffing;
	*outlen = o;
	return len;
}
