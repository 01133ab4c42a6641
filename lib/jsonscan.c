/*
 * Strict JSON in place. The readers we use are not strict: json-c's STRICT
 * mode still takes single quotes, NaN, Infinity, raw control characters
 * and overlong UTF-8, so a body is first checked here against RFC 8259
 * (and its text against RFC 3629); json-c then only builds the tree. The
 * client reads the tracker's answers and its spool file with nothing else.
 *
 * The scan also bounds what a reader would build: every value (a member's
 * value, an array's element, a container itself) counts against
 * max_values, so a 1 MiB body of 349 000 empty objects (json-c spends
 * about 700 bytes on each) is refused before a byte of the tree is
 * allocated. And it stops at what a reader would silently change: a \u
 * escape of a lone surrogate, which json-c stores as U+FFFD.
 */
#include "jsonscan.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "utf8.h"

/* Stop the scan for why (a syntax error needs no call: -1 is enough). */
static int
scan_fail(struct jsonscan *sc, enum jsonscan_error why)
{
	sc->error = why;
	return -1;
}

/* Skip blanks as RFC 8259 defines them. */
static void
scan_blanks(struct jsonscan *sc)
{
	while (sc->i < sc->len &&
	       (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' ||
		sc->s[sc->i] == '\n' || sc->s[sc->i] == '\r'))
		sc->i++;
}

static bool
is_digit(unsigned c)
{
	return c >= '0' && c <= '9';
}

/* Four hex digits at sc->i into *cp. Return 0, or -1 when they are not. */
static int
scan_hex4(struct jsonscan *sc, unsigned long *cp)
{
	*cp = 0;
	for (int k = 0; k < 4; k++, sc->i++) {
		if (sc->i >= sc->len)
			return -1;
		unsigned c = sc->s[sc->i] | 0x20; /* 'A' -> 'a'; digits stay */
		if (is_digit(c))
			*cp = *cp * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			*cp = *cp * 16 + (c - 'a' + 10);
		else
			return -1;
	}
	return 0;
}

/* Append code point cp to out as UTF-8. */
static void
put_utf8(struct buf *out, unsigned long cp)
{
	static const unsigned char lead[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};
	char u[4];
	size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		u[i] = (char)(0x80 | (cp & 0x3F));
	u[0] = (char)(lead[n] | cp);
	buf_add(out, u, n);
}

/* The escape at sc->i, just past its backslash; what it stands for
 * appended to out unless out is NULL. Return 0, or -1 when it is not JSON.
 * Half a surrogate pair is JSON but not Unicode: *lone set, nothing
 * appended. */
static int
scan_escape(struct jsonscan *sc, struct buf *out, bool *lone)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	if (sc->i >= sc->len)
		return -1;
	unsigned char c = sc->s[sc->i++];
	const char *e = c ? memchr(from, c, sizeof from - 1) : NULL;
	if (e) {
		if (out)
			buf_add(out, &to[e - from], 1);
		return 0;
	}
	unsigned long cp, low;
	if (c != 'u' || scan_hex4(sc, &cp))
		return -1;
	if (cp >= 0xD800 && cp <= 0xDBFF && sc->len - sc->i >= 6 &&
	    sc->s[sc->i] == '\\' && sc->s[sc->i + 1] == 'u') {
		/* A high surrogate wants its low half: \ud83d\ude00. */
		sc->i += 2;
		if (scan_hex4(sc, &low))
			return -1;
		if (low < 0xDC00 || low > 0xDFFF) {
			*lone = true;
			return 0;
		}
		cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
	} else if (cp >= 0xD800 && cp <= 0xDFFF) {
		*lone = true;
		return 0;
	}
	if (out)
		put_utf8(out, cp);
	return 0;
}

/* The string at sc->i (its opening quote), closing quote included; its
 * text, unescaped, appended to out unless out is NULL. Return 0, or -1
 * when it is not JSON or (sc->error) holds a lone surrogate. */
static int
scan_string(struct jsonscan *sc, struct buf *out)
{
	bool lone = false;
	size_t run = ++sc->i; /* bytes from here on are copied as they are */
	while (sc->i < sc->len) {
		unsigned char c = sc->s[sc->i];
		if (c == '"' || c == '\\') {
			if (out)
				buf_add(out, sc->s + run, sc->i - run);
			sc->i++;
			if (c == '"')
				return lone ? scan_fail(sc,
							JSONSCAN_LONE_SURROGATE)
					    : 0;
			if (scan_escape(sc, out, &lone))
				return -1;
			run = sc->i;
		} else if (c < 0x20) {
			return -1;
		} else {
			size_t n =
			    c < 0x80 ? 1
				     : utf8_seq(sc->s + sc->i, sc->len - sc->i);
			if (n == 0)
				return -1;
			sc->i += n;
		}
	}
	return -1; /* unterminated: not JSON, surrogate or not */
}

/* One or more digits at sc->i. */
static int
scan_digits(struct jsonscan *sc)
{
	size_t start = sc->i;
	while (sc->i < sc->len && is_digit(sc->s[sc->i]))
		sc->i++;
	return sc->i > start ? 0 : -1;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at sc->i. */
static int
scan_number(struct jsonscan *sc)
{
	if (sc->s[sc->i] == '-')
		sc->i++;
	if (sc->i < sc->len && sc->s[sc->i] == '0')
		sc->i++;
	else if (scan_digits(sc))
		return -1;
	if (sc->i < sc->len && sc->s[sc->i] == '.') {
		sc->i++;
		if (scan_digits(sc))
			return -1;
	}
	if (sc->i < sc->len && (sc->s[sc->i] == 'e' || sc->s[sc->i] == 'E')) {
		sc->i++;
		if (sc->i < sc->len &&
		    (sc->s[sc->i] == '+' || sc->s[sc->i] == '-'))
			sc->i++;
		if (scan_digits(sc))
			return -1;
	}
	return 0;
}

/* The literal w at sc->i. */
static int
scan_word(struct jsonscan *sc, const char *w)
{
	size_t n = strlen(w);
	if (sc->len - sc->i < n || memcmp(sc->s + sc->i, w, n) != 0)
		return -1;
	sc->i += n;
	return 0;
}

/* A member's key at sc->i and the colon after it; sc->key becomes it. */
static int
scan_key(struct jsonscan *sc)
{
	size_t start = sc->i + 1;
	if (sc->i >= sc->len || sc->s[sc->i] != '"')
		return -1;
	if (scan_string(sc, NULL)) {
		sc->in_key = sc->error == JSONSCAN_LONE_SURROGATE;
		return -1;
	}
	sc->key = sc->s + start;
	sc->key_len = sc->i - 1 - start;
	scan_blanks(sc);
	if (sc->i >= sc->len || sc->s[sc->i++] != ':')
		return -1;
	scan_blanks(sc);
	return 0;
}

/* Is the member just scanned the one jsonscan_get wants, and the first? */
static bool
wanted(const struct jsonscan *sc)
{
	return sc->want && sc->depth == 1 && !sc->found.p &&
	       sc->key_len == sc->want_len &&
	       memcmp(sc->key, sc->want, sc->want_len) == 0;
}

static int scan_value(struct jsonscan *sc, struct json_value *v);

/* The object or array at sc->i; close is '}' or ']'. */
static int
scan_container(struct jsonscan *sc, unsigned char close)
{
	if (++sc->depth > JSON_MAX_DEPTH)
		return scan_fail(sc, JSONSCAN_TOO_DEEP);
	const unsigned char *outer_key = sc->key;
	size_t outer_key_len = sc->key_len;
	sc->i++;
	scan_blanks(sc);
	if (sc->i < sc->len && sc->s[sc->i] == close) {
		sc->i++;
		sc->depth--;
		return 0;
	}
	for (;;) {
		struct json_value v;
		if (close == '}' && scan_key(sc))
			return -1;
		if (scan_value(sc, &v))
			return -1;
		if (close == '}' && wanted(sc))
			sc->found = v;
		scan_blanks(sc);
		if (sc->i >= sc->len)
			return -1;
		unsigned char c = sc->s[sc->i++];
		if (c == close)
			break;
		if (c != ',')
			return -1;
		scan_blanks(sc);
	}
	sc->depth--;
	sc->key = outer_key;
	sc->key_len = outer_key_len;
	return 0;
}

/* The value at sc->i; *v its type and span. */
static int
scan_value(struct jsonscan *sc, struct json_value *v)
{
	if (sc->i >= sc->len)
		return -1;
	if (++sc->values > sc->max_values)
		return scan_fail(sc, JSONSCAN_TOO_MANY);
	size_t start = sc->i;
	int rc;
	switch (sc->s[sc->i]) {
	case '{':
		v->type = JSON_OBJECT;
		rc = scan_container(sc, '}');
		break;
	case '[':
		v->type = JSON_ARRAY;
		rc = scan_container(sc, ']');
		break;
	case '"':
		v->type = JSON_STRING;
		rc = scan_string(sc, NULL);
		break;
	case 't':
		v->type = JSON_BOOL;
		rc = scan_word(sc, "true");
		break;
	case 'f':
		v->type = JSON_BOOL;
		rc = scan_word(sc, "false");
		break;
	case 'n':
		v->type = JSON_NULL;
		rc = scan_word(sc, "null");
		break;
	default:
		v->type = JSON_NUMBER;
		rc = scan_number(sc);
		break;
	}
	v->p = (const char *)sc->s + start;
	v->len = sc->i - start;
	return rc;
}

/* The whole text as one value (*top) with blanks around it. */
static int
scan_text(struct jsonscan *sc, struct json_value *top)
{
	scan_blanks(sc);
	if (sc->i == sc->len)
		return scan_fail(sc, JSONSCAN_EMPTY);
	if (scan_value(sc, top) == 0) {
		scan_blanks(sc);
		if (sc->i == sc->len)
			return 0;
	}
	return scan_fail(sc, sc->error ? sc->error : JSONSCAN_SYNTAX);
}

int
jsonscan(struct jsonscan *sc, const char *text, size_t len, size_t max_values)
{
	struct json_value top;
	*sc = (struct jsonscan){.s = (const unsigned char *)text,
				.len = len,
				.max_values = max_values};
	return scan_text(sc, &top);
}

int
jsonscan_get(const char *js, size_t len, const char *key, struct json_value *v)
{
	struct json_value top;
	struct jsonscan sc = {.s = (const unsigned char *)js,
			      .len = len,
			      .max_values = SIZE_MAX,
			      .want = key,
			      .want_len = strlen(key)};
	if (scan_text(&sc, &top) || top.type != JSON_OBJECT || !sc.found.p)
		return -1;
	*v = sc.found;
	return 0;
}

int
jsonscan_next(const struct json_value *arr, size_t *pos,
	      struct json_value *elem)
{
	if (arr->type != JSON_ARRAY || *pos >= arr->len)
		return -1;
	/* *pos is at the '[' or at the ',' after the previous element; the
	 * array was scanned whole before, its elements one level in. */
	struct jsonscan sc = {.s = (const unsigned char *)arr->p,
			      .len = arr->len,
			      .i = *pos + 1,
			      .depth = 1,
			      .max_values = SIZE_MAX};
	scan_blanks(&sc);
	if (sc.i >= sc.len || sc.s[sc.i] == ']' || scan_value(&sc, elem))
		return -1;
	scan_blanks(&sc);
	*pos = sc.i;
	return 0;
}

/* v's text in tmp[0..size), NUL-terminated; NULL when v is not a number
 * or too long for tmp. */
static const char *
number_text(const struct json_value *v, char *tmp, size_t size)
{
	if (v->type != JSON_NUMBER || v->len >= size)
		return NULL;
	memcpy(tmp, v->p, v->len);
	tmp[v->len] = '\0';
	return tmp;
}

int
jsonscan_number(const struct json_value *v, double *out)
{
	char tmp[64], *end;
	if (!number_text(v, tmp, sizeof tmp))
		return -1;
	double d = strtod(tmp, &end);
	if (*end || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

int
jsonscan_int64(const struct json_value *v, int64_t *out)
{
	char tmp[32], *end;
	if (!number_text(v, tmp, sizeof tmp))
		return -1;
	errno = 0;
	long long n = strtoll(tmp, &end, 10);
	if (*end || errno)
		return -1;
	*out = n;
	return 0;
}

char *
jsonscan_string(const struct json_value *v)
{
	if (v->type != JSON_STRING || v->len < 2 || v->p[0] != '"')
		return NULL;
	struct jsonscan sc = {.s = (const unsigned char *)v->p,
			      .len = v->len,
			      .max_values = SIZE_MAX};
	struct buf b = {0};
	buf_add(&b, "", 0);
	if (scan_string(&sc, &b) || sc.i != sc.len ||
	    memchr(b.p, '\0', b.len)) {
		buf_free(&b);
		return NULL;
	}
	return b.p;
}
