/*
 * The little JSON the client needs: members of the tracker's flat answers
 * and of spool lines, read in place; strings and timestamps written out.
 * Reading is strict about structure (RFC 8259) but only as deep as needed.
 */
#include "client.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isotime.h"

#define JSON_DEPTH_MAX 32

static const char *skip_value(const char *p, const char *end, int depth,
			      enum json_type *type);

/* Skip blanks as RFC 8259 defines them. */
static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at '"': return just past the closing quote, or NULL. */
static const char *
skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\' && ++p == end)
			return NULL;
	}
	return NULL;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *
skip_number(const char *p, const char *end)
{
	const char *q;
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (p < end && *p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (p < end && *p == '.') {
		for (q = ++p; p < end && *p >= '0' && *p <= '9'; p++)
			;
		if (p == q)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		for (q = p; p < end && *p >= '0' && *p <= '9'; p++)
			;
		if (p == q)
			return NULL;
	}
	return p;
}

/* The elements of an array or members of an object, p at the opener. */
static const char *
skip_container(const char *p, const char *end, int depth, char close)
{
	enum json_type t;
	p = skip_ws(p + 1, end);
	if (p < end && *p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			if (p == end || *p != '"' || !(p = skip_string(p, end)))
				return NULL;
			p = skip_ws(p, end);
			if (p == end || *p != ':')
				return NULL;
			p = skip_ws(p + 1, end);
		}
		if (!(p = skip_value(p, end, depth + 1, &t)))
			return NULL;
		p = skip_ws(p, end);
		if (p < end && *p == close)
			return p + 1;
		if (p == end || *p != ',')
			return NULL;
		p = skip_ws(p + 1, end);
	}
}

/* Return the end of the value at p and its type, or NULL if malformed. */
static const char *
skip_value(const char *p, const char *end, int depth, enum json_type *type)
{
	if (p == end || depth > JSON_DEPTH_MAX)
		return NULL;
	size_t left = (size_t)(end - p);
	switch (*p) {
	case '"':
		*type = JSON_STRING;
		return skip_string(p, end);
	case '{':
		*type = JSON_OBJECT;
		return skip_container(p, end, depth, '}');
	case '[':
		*type = JSON_ARRAY;
		return skip_container(p, end, depth, ']');
	case 't':
		*type = JSON_BOOL;
		return left >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
	case 'f':
		*type = JSON_BOOL;
		return left >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
	case 'n':
		*type = JSON_NULL;
		return left >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
	default:
		*type = JSON_NUMBER;
		return skip_number(p, end);
	}
}

int
json_get(const char *js, size_t len, const char *key, struct json_value *v)
{
	const char *end = js + len, *p = skip_ws(js, end);
	size_t klen = strlen(key);
	int found = -1;
	if (p == end || *p != '{')
		return -1;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		return -1;
	for (;;) {
		const char *k = p;
		if (p == end || *p != '"' || !(p = skip_string(p, end)))
			return -1;
		/* Keys are compared as written: ours never need escapes. */
		bool match = (size_t)(p - k) == klen + 2 &&
			     !memcmp(k + 1, key, klen) && found < 0;
		p = skip_ws(p, end);
		if (p == end || *p != ':')
			return -1;
		p = skip_ws(p + 1, end);
		const char *start = p;
		enum json_type t;
		if (!(p = skip_value(p, end, 1, &t)))
			return -1;
		if (match) {
			*v = (struct json_value){t, start, (size_t)(p - start)};
			found = 0;
		}
		p = skip_ws(p, end);
		if (p < end && *p == '}')
			break;
		if (p == end || *p != ',')
			return -1;
		p = skip_ws(p + 1, end);
	}
	/* The whole text must be this one object. */
	return skip_ws(p + 1, end) == end ? found : -1;
}

int
json_array_next(const struct json_value *arr, size_t *pos,
		struct json_value *elem)
{
	const char *end = arr->p + arr->len, *p = arr->p + *pos;
	enum json_type t;
	if (arr->type != JSON_ARRAY || *pos >= arr->len)
		return -1;
	/* At the '[' or at the ',' after the previous element. */
	p = skip_ws(p + 1, end);
	if (p == end || *p == ']')
		return -1;
	const char *start = p;
	if (!(p = skip_value(p, end, 2, &t)))
		return -1;
	*elem = (struct json_value){t, start, (size_t)(p - start)};
	*pos = (size_t)(skip_ws(p, end) - arr->p);
	return 0;
}

int
json_number(const struct json_value *v, double *out)
{
	char tmp[64];
	if (v->type != JSON_NUMBER || v->len >= sizeof tmp)
		return -1;
	memcpy(tmp, v->p, v->len);
	tmp[v->len] = '\0';
	char *e;
	double d = strtod(tmp, &e);
	if (*e || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

int
json_int64(const struct json_value *v, int64_t *out)
{
	char tmp[32];
	if (v->type != JSON_NUMBER || v->len >= sizeof tmp)
		return -1;
	memcpy(tmp, v->p, v->len);
	tmp[v->len] = '\0';
	char *e;
	errno = 0;
	long long n = strtoll(tmp, &e, 10);
	if (*e || errno)
		return -1;
	*out = n;
	return 0;
}

/* Four hex digits at p; return the value or -1. */
static long
hex4(const char *p, const char *end)
{
	long v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Append code point cp as UTF-8. */
static void
put_utf8(struct buf *b, unsigned long cp)
{
	static const unsigned char lead[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};
	char u[4];
	size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		u[i] = (char)(0x80 | (cp & 0x3F));
	u[0] = (char)(lead[n] | cp);
	buf_add(b, u, n);
}

/* The escape after a backslash at p; return the end of it or NULL. */
static const char *
unescape(const char *p, const char *end, struct buf *b)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e = memchr(from, *p, sizeof from - 1);
	if (*p && e) {
		buf_add(b, &to[e - from], 1);
		return p + 1;
	}
	if (*p != 'u')
		return NULL;
	long cp = hex4(p + 1, end);
	p += 5;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		/* A high surrogate needs its low half: \uD83D\uDE00. */
		long lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u'
			      ? hex4(p + 2, end)
			      : -1;
		if (lo < 0xDC00 || lo > 0xDFFF)
			return NULL;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		p += 6;
	} else if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) {
		return NULL; /* malformed, a lone low half, or \u0000 */
	}
	put_utf8(b, (unsigned long)cp);
	return p;
}

char *
json_string(const struct json_value *v)
{
	if (v->type != JSON_STRING || v->len < 2)
		return NULL;
	struct buf b = {0};
	const char *p = v->p + 1, *end = v->p + v->len - 1;
	buf_add(&b, "", 0);
	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		if (!bs) {
			buf_add(&b, p, (size_t)(end - p));
			break;
		}
		buf_add(&b, p, (size_t)(bs - p));
		if (!(p = unescape(bs + 1, end, &b))) {
			buf_free(&b);
			return NULL;
		}
	}
	return b.p;
}

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
