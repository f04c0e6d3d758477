/*
 * DATA stream scanner.  Transitions (emit = copy to the output):
 *
 *   LINE_START  "."  -> DOT (hold)      CR -> CR (emit)
 *               LF   -> bare LF, MID    other -> MID (emit)
 *   MID         CR   -> CR (emit)       LF -> bare LF, MID   other -> MID
 *   CR          LF   -> LINE_START      other -> bare CR, rescan in MID
 *   DOT         CR   -> DOT_CR (hold)   other -> emit ".", rescan in MID
 *   DOT_CR      LF   -> end of data     other -> bare CR, emit ".\r",
 *                                                rescan in MID
 */
#include <string.h>
#include <strings.h>

#include "smtp_data.h"

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

/* Handle one byte inside a line (state MID or the start of a line). */
static void
data_scan_mid(struct data_scan *ds, char c, char *out, size_t *o)
{
	if (ds->in_header)
		data_scan_header(ds, c);
	if (++ds->line_len > DATA_LINE_MAX)
		ds->long_line = 1;
	out[(*o)++] = c;
	if (c == '\r')
		ds->state = DATA_CR;
	else if (c == '\n') {
		/*
		 * A bare LF does not start a line: "\n.\r\n" must not end the
		 * data, or input after it would run as commands.
		 */
		ds->bare_lf = 1;
		ds->line_len = 0;
		ds->state = DATA_MID;
	} else
		ds->state = DATA_MID;
}

size_t
data_scan(struct data_scan *ds, const char *in, size_t len, char *out,
    size_t *outlen, int *done)
{
	size_t i, o = 0;

	*done = 0;
	for (i = 0; i < len; i++) {
		char c = in[i];

		switch (ds->state) {
		case DATA_LINE_START:
			if (c == '.') {
				ds->line_len = 1;
				ds->state = DATA_DOT;
			}
			else
				data_scan_mid(ds, c, out, &o);
			break;
		case DATA_MID:
			data_scan_mid(ds, c, out, &o);
			break;
		case DATA_CR:
			if (c == '\n') {
				if (ds->in_header)
					data_scan_header(ds, c);
				if (++ds->line_len > DATA_LINE_MAX)
					ds->long_line = 1;
				ds->line_len = 0;
				out[o++] = c;
				ds->state = DATA_LINE_START;
			} else {
				ds->bare_cr = 1;
				data_scan_mid(ds, c, out, &o);
			}
			break;
		case DATA_DOT:
			if (c == '\r')
				ds->state = DATA_DOT_CR;
			else {
				out[o++] = '.';
				data_scan_mid(ds, c, out, &o);
			}
			break;
		case DATA_DOT_CR:
			if (c == '\n') {
				ds->state = DATA_LINE_START;
				ds->bytes += o;
				*outlen = o;
				*done = 1;
				return i + 1;
			}
			ds->bare_cr = 1;
			out[o++] = '.';
			out[o++] = '\r';
			data_scan_mid(ds, c, out, &o);
			break;
		}
	}
	ds->bytes += o;
	*outlen = o;
	return len;
}
