/*
 * Text from the tracker made safe for a terminal (SPEC 6.2): controls of
 * every kind shown as \xNN, printable UTF-8 kept, long text cut.
 */
#include "client.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* printable_add of s[0..len) alone, as a new string (static storage). */
static const char *
shown(const char *s, size_t len)
{
	static struct buf b;
	buf_free(&b);
	b = (struct buf){0};
	printable_add(&b, s, len);
	return b.p;
}

#define SHOWN(lit) shown(lit, sizeof lit - 1)

/* Whether s is all printable UTF-8: no C0, DEL, C1 or stray byte. */
static bool
inert(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq(p + i, len - i);
		if (k == 0 || (k == 1 && (p[i] < 0x20 || p[i] == 0x7f)) ||
		    (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0))
			return false;
		i += k;
	}
	return true;
}

static void
test_kept(void)
{
	is_str(SHOWN("invalid token"), "invalid token", "plain ASCII as it is");
	is_str(SHOWN(""), "", "empty text: an empty string");
	is_str(SHOWN("a\\b \"q\" ~"), "a\\b \"q\" ~",
	       "punctuation, quotes, backslash as they are");
	is_str(SHOWN("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\xa6\x97"),
	       "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\xa6\x97",
	       "printable UTF-8 (2, 3 and 4 bytes) kept");
	is_str(SHOWN("\xc2\xa0nbsp"), "\xc2\xa0nbsp",
	       "U+00A0, just past the C1 range, kept");
}

static void
test_controls(void)
{
	is_str(SHOWN("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m",
	       "ESC sequences: the ESC shown as \\x1b");
	is_str(SHOWN("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07",
	       "a window-title OSC and its BEL");
	is_str(SHOWN("a\nb\rc\td"), "a\\x0ab\\x0dc\\x09d",
	       "newline, carriage return, tab");
	is_str(SHOWN("nul\0x"), "nul\\x00x", "NUL");
	is_str(SHOWN("del\x7f"), "del\\x7f", "DEL");
	is_str(SHOWN("\xc2\x9b"
		     "31m"),
	       "\\xc2\\x9b31m", "C1 CSI (U+009B) in UTF-8");
	is_str(SHOWN("\xc2\x80\xc2\x9f"), "\\xc2\\x80\\xc2\\x9f",
	       "both ends of the C1 range");
	is_str(SHOWN("\x9b"
		     "31m"),
	       "\\x9b31m", "a lone 0x9b (CSI to an 8-bit terminal)");
	is_str(SHOWN("\xff\xfe"), "\\xff\\xfe", "bytes that are not UTF-8");
	is_str(SHOWN("\xed\xa0\x80"), "\\xed\\xa0\\x80",
	       "a surrogate's encoding");
	is_str(SHOWN("\xe2\x82"), "\\xe2\\x82", "a sequence cut short");
	is_str(SHOWN("\xc0\x9b"), "\\xc0\\x9b", "an overlong encoding");

	char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	ok(inert(shown(all, sizeof all)), "every byte value: none left raw");
}

static void
test_cut(void)
{
	char big[PRINTABLE_MAX * 3];
	memset(big, 'a', sizeof big);
	const char *s = shown(big, sizeof big);
	is_int(strlen(s), PRINTABLE_MAX + 3, "a long text is cut to %d bytes",
	       PRINTABLE_MAX);
	ok(!strcmp(s + PRINTABLE_MAX, "..."), "and ends with ...");
	/* A character across the cut is left out whole. */
	memset(big, 'a', sizeof big);
	memcpy(big + PRINTABLE_MAX - 1, "\xe2\x82\xac", 3);
	s = shown(big, sizeof big);
	is_int(strlen(s), PRINTABLE_MAX - 1 + 3,
	       "cut before a character that does not fit");
	/* Escapes make it longer, not the cut later. */
	memset(big, 0x1b, sizeof big);
	is_int(strlen(shown(big, sizeof big)), PRINTABLE_MAX * 4 + 3,
	       "ESCs: each shown as 4 bytes, %d of them", PRINTABLE_MAX);
	is_int(strlen(shown(big, PRINTABLE_MAX)), PRINTABLE_MAX * 4,
	       "exactly the limit: nothing cut");
}

static void
test_error_body(void)
{
	struct buf b = {0};
	const char *js = "{\"error\":\"unauthorized\",\"message\":\"bad "
			 "\\u001b[2Jtoken\\u009b\"}";
	tracker_error_add(&b, js, strlen(js));
	is_str(b.p, " unauthorized: bad \\x1b[2Jtoken\\xc2\\x9b",
	       "an error body: code and message, escapes decoded then shown");
	buf_free(&b);
	b = (struct buf){0};
	js = "{\"message\":\"only\"}";
	tracker_error_add(&b, js, strlen(js));
	is_str(b.p, ": only", "only a message");
	buf_free(&b);
	b = (struct buf){0};
	js = "<html>\x1b[31m</html>";
	tracker_error_add(&b, js, strlen(js));
	is_str(b.p, "", "not JSON: nothing of it printed");
	buf_free(&b);
	b = (struct buf){0};
	tracker_error_add(&b, NULL, 0);
	is_str(b.p, "", "no body at all");
	buf_free(&b);
	b = (struct buf){0};
	js = "{\"error\":7,\"message\":\"\\u001b\"}";
	tracker_error_add(&b, js, strlen(js));
	is_str(b.p, ": \\x1b", "an error that is not a string is left out");
	buf_free(&b);
}

int
main(void)
{
	test_kept();
	test_controls();
	test_cut();
	test_error_body();
	return done_testing();
}
