/*
 * The JSON the client writes: strings and timestamps of its requests and
 * of the spool file. It reads the tracker's answers and the spool file
 * with the scanner it shares with the tracker (lib/jsonscan.c).
 */
#include "client.h"

#include <string.h>

#include "isotime.h"

void
utf8_truncate(char *s, size_t max)
{
	size_t len = strlen(s);
	for (size_t i = 0, n = 0; i < len; n++) {
		if (n == max) {
			s[i] = '\0';
			return;
		}
		size_t k = utf8_seq((const unsigned char *)s + i, len - i);
		i += k ? k : 1;
	}
}

void
json_put_string(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + strlen(s);
	buf_add(b, "\"", 1);
	while (*p) {
		size_t k = utf8_seq(p, (size_t)(end - p));
		if (k == 0) {
			buf_puts(b, "\\ufffd"); /* the tracker wants UTF-8 */
			p++;
		} else if (*p == '"' || *p == '\\') {
			buf_add(b, "\\", 1);
			buf_add(b, p++, 1);
		} else if (*p < 0x20) {
			buf_printf(b, "\\u%04x", *p++);
		} else {
			buf_add(b, p, k);
			p += k;
		}
	}
	buf_add(b, "\"", 1);
}

void
json_put_time(struct buf *b, int64_t us)
{
	char t[ISOTIME_MAX];
	isotime_format(us, t);
	buf_printf(b, "\"%s\"", t);
}
