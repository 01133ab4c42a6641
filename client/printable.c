/*
 * Text from the tracker, made safe for a terminal (SPEC 6.2): an error
 * sentence may carry anything a request put in it, and an escape
 * sequence printed as it is could retitle the window, hide what follows
 * or worse. Every place the client prints the tracker's words goes
 * through printable_add.
 */
#include "client.h"

#include <stdlib.h>
#include <string.h>

/* Append byte c as \xNN. */
static void
escape_byte(struct buf *b, unsigned char c)
{
	buf_printf(b, "\\x%02x", c);
}

/* Whether the well-formed sequence p[0..k) is a control character: C0,
 * DEL, or C1 (U+0080-U+009F, which is C2 80 to C2 9F in UTF-8). */
static bool
is_control(const unsigned char *p, size_t k)
{
	return (k == 1 && (p[0] < 0x20 || p[0] == 0x7f)) ||
	       (k == 2 && p[0] == 0xc2 && p[1] < 0xa0);
}

void
printable_add(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t shown = len > PRINTABLE_MAX ? PRINTABLE_MAX : len;
	buf_add(b, "", 0); /* an empty text still makes a string */
	for (size_t i = 0; i < shown;) {
		size_t k = utf8_seq(p + i, len - i);
		if (k == 0) { /* not UTF-8: a lone byte 0x9b is CSI too */
			escape_byte(b, p[i++]);
			continue;
		}
		if (i + k > shown) /* cut on a character's boundary */
			break;
		if (is_control(p + i, k))
			for (size_t j = 0; j < k; j++)
				escape_byte(b, p[i + j]);
		else
			buf_add(b, p + i, k);
		i += k;
	}
	if (len > shown)
		buf_puts(b, "...");
}

/* Member key of the object js as a string, made printable, after sep;
 * return whether there was one. */
static bool
member_add(struct buf *b, const char *js, size_t len, const char *key,
	   const char *sep)
{
	struct json_value v;
	char *text;
	if (!js || jsonscan_get(js, len, key, &v) ||
	    !(text = jsonscan_string(&v)))
		return false;
	buf_puts(b, sep);
	printable_add(b, text, strlen(text));
	free(text);
	return true;
}

void
tracker_error_add(struct buf *b, const char *js, size_t len)
{
	buf_add(b, "", 0);
	member_add(b, js, len, "error", " ");
	member_add(b, js, len, "message", ": ");
}
