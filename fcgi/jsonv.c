/*
 * Strict JSON in (json-c 0.16, with the care LIBRARY-NOTES asks for) and the
 * numbers of our responses out.
 */
#include "tracker.h"
#include "isotime.h"
#include "utf8.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define jerr_set(e, ...) snprintf((e)->msg, sizeof(e)->msg, __VA_ARGS__)

/*
 * json-c's STRICT mode still takes single quotes, NaN, Infinity, raw control
 * characters and overlong UTF-8, so the body is first checked against
 * RFC 8259 here; json-c then only builds the tree.
 *
 * The scan also bounds what json-c would build: every value (a member's
 * value, an array's element, a container itself) counts against
 * max_values, so a 1 MiB body of 349 000 empty objects (json-c spends
 * about 700 bytes on each) is refused before a byte of the tree is
 * allocated. And it finds what json-c would silently change: a \u escape
 * of a lone surrogate, which json-c stores as U+FFFD.
 */
struct scan {
	const unsigned char *s;
	size_t len, i;
	int depth;
	bool too_deep;
	size_t values, max_values;
	bool too_many;
	/* The innermost member's key (raw JSON text), for the message. */
	const unsigned char *key;
	size_t key_len;
	bool lone_surrogate; /* in the last string scanned (the scan ends) */
	bool in_key;	     /* ... which is a key */
};

static void
scan_ws(struct scan *sc)
{
	while (sc->i < sc->len &&
	       (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' ||
		sc->s[sc->i] == '\n' || sc->s[sc->i] == '\r'))
		sc->i++;
}

/* Four hex digits at sc->i into *cp. Return 0, or -1 when they are not. */
static int
scan_hex4(struct scan *sc, unsigned *cp)
{
	*cp = 0;
	for (int k = 0; k < 4; k++, sc->i++) {
		if (sc->i >= sc->len || !isxdigit(sc->s[sc->i]))
			return -1;
		unsigned c = sc->s[sc->i];
		*cp = *cp * 16 + (isdigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return 0;
}

/* The XXXX of a \uXXXX at sc->i (just after the 'u'), and the low half
 * that must follow a high surrogate. Return -1 when it is not JSON; a
 * lone surrogate is JSON but not Unicode: noted, scanning goes on. */
static int
scan_unicode_escape(struct scan *sc)
{
	unsigned cp, low;
	if (scan_hex4(sc, &cp))
		return -1;
	if (cp < 0xD800 || cp > 0xDFFF)
		return 0;
	if (cp >= 0xDC00 || sc->len - sc->i < 6 || sc->s[sc->i] != '\\' ||
	    sc->s[sc->i + 1] != 'u') {
		sc->lone_surrogate = true;
		return 0;
	}
	sc->i += 2;
	if (scan_hex4(sc, &low))
		return -1;
	if (low < 0xDC00 || low > 0xDFFF)
		sc->lone_surrogate = true;
	return 0;
}

/* The string at sc->i, its closing quote included. Return 0 or -1. */
static int
scan_string_text(struct scan *sc)
{
	sc->i++; /* the opening quote */
	while (sc->i < sc->len) {
		unsigned c = sc->s[sc->i];
		if (c == '"') {
			sc->i++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c >= 0x80) {
			size_t n = utf8_seq(sc->s + sc->i, sc->len - sc->i);
			if (n == 0)
				return -1;
			sc->i += n;
			continue;
		}
		sc->i++;
		if (c != '\\')
			continue;
		if (sc->i >= sc->len)
			return -1;
		c = sc->s[sc->i++];
		if (c == 'u') {
			if (scan_unicode_escape(sc))
				return -1;
		} else if (!strchr("\"\\/bfnrt", (int)c) || c == 0) {
			return -1;
		}
	}
	return -1;
}

/* Digits at sc->i: at least one. */
static int
scan_digits(struct scan *sc)
{
	size_t start = sc->i;
	while (sc->i < sc->len && isdigit(sc->s[sc->i]))
		sc->i++;
	return sc->i > start ? 0 : -1;
}

/* A string; a lone surrogate counts only in one that is JSON. */
static int
scan_string(struct scan *sc)
{
	if (scan_string_text(sc)) {
		sc->lone_surrogate = false;
		return -1;
	}
	return 0;
}

static int
scan_number(struct scan *sc)
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

static int
scan_word(struct scan *sc, const char *w)
{
	size_t n = strlen(w);
	if (sc->len - sc->i < n || memcmp(sc->s + sc->i, w, n) != 0)
		return -1;
	sc->i += n;
	return 0;
}

static int scan_value(struct scan *sc);

/* An object or array; close is '}' or ']'. */
static int
scan_container(struct scan *sc, unsigned char close)
{
	if (++sc->depth > JSON_MAX_DEPTH) {
		sc->too_deep = true;
		return -1;
	}
	const unsigned char *outer_key = sc->key;
	size_t outer_key_len = sc->key_len;
	sc->i++;
	scan_ws(sc);
	if (sc->i < sc->len && sc->s[sc->i] == close) {
		sc->i++;
		sc->depth--;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			size_t start = sc->i + 1;
			if (sc->i >= sc->len || sc->s[sc->i] != '"' ||
			    scan_string(sc))
				return -1;
			if (sc->lone_surrogate) {
				sc->in_key = true;
				return -1;
			}
			sc->key = sc->s + start;
			sc->key_len = sc->i - 1 - start;
			scan_ws(sc);
			if (sc->i >= sc->len || sc->s[sc->i++] != ':')
				return -1;
			scan_ws(sc);
		}
		if (scan_value(sc))
			return -1;
		scan_ws(sc);
		if (sc->i >= sc->len)
			return -1;
		unsigned char c = sc->s[sc->i++];
		if (c == close)
			break;
		if (c != ',')
			return -1;
		scan_ws(sc);
	}
	sc->depth--;
	sc->key = outer_key;
	sc->key_len = outer_key_len;
	return 0;
}

static int
scan_value(struct scan *sc)
{
	if (sc->i >= sc->len)
		return -1;
	if (++sc->values > sc->max_values) {
		sc->too_many = true;
		return -1;
	}
	switch (sc->s[sc->i]) {
	case '{':
		return scan_container(sc, '}');
	case '[':
		return scan_container(sc, ']');
	case '"':
		/* A string that is not Unicode ends the scan: the error names
		 * its key, which sc->key holds right now. */
		return scan_string(sc) || sc->lone_surrogate ? -1 : 0;
	case 't':
		return scan_word(sc, "true");
	case 'f':
		return scan_word(sc, "false");
	case 'n':
		return scan_word(sc, "null");
	default:
		if (sc->s[sc->i] == '-' || isdigit(sc->s[sc->i]))
			return scan_number(sc);
		return -1;
	}
}

struct json_object *
jsonv_parse(const char *body, size_t len, size_t max_values, struct jerr *e)
{
	struct scan sc = {.s = (const unsigned char *)body,
			  .len = len,
			  .max_values = max_values};
	e->field = false;
	scan_ws(&sc);
	if (sc.i == len) {
		jerr_set(e, "the request body is empty; expected JSON");
		return NULL;
	}
	int bad = scan_value(&sc);
	if (!bad) {
		scan_ws(&sc);
		bad = sc.i != len;
	}
	if (sc.too_deep) {
		jerr_set(e, "JSON nested deeper than %d levels",
			 JSON_MAX_DEPTH);
		return NULL;
	}
	if (sc.too_many) {
		jerr_set(e,
			 "the body holds more than the %zu JSON values any "
			 "valid request here needs",
			 max_values);
		return NULL;
	}
	if (sc.lone_surrogate) {
		/* SPEC 6.1: stored text is exactly what was sent, and json-c
		 * would store U+FFFD instead. */
		e->field = true;
		if (sc.key && !sc.in_key)
			jerr_set(e,
				 "%.*s is not valid Unicode text (a \\u "
				 "escape of a lone surrogate)",
				 (int)(sc.key_len < 64 ? sc.key_len : 64),
				 (const char *)sc.key);
		else
			jerr_set(e,
				 "a %s is not valid Unicode text (a \\u "
				 "escape of a lone surrogate)",
				 sc.in_key ? "field name" : "string");
		return NULL;
	}
	if (bad) {
		jerr_set(e,
			 "the body is not valid JSON (RFC 8259): error at "
			 "byte %zu",
			 sc.i);
		return NULL;
	}

	/* json-c counts the outermost value as a level too. */
	struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH + 1);
	if (!tok)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
					JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *v = json_tokener_parse_ex(tok, body, (int)len);
	bool fine = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	if (!fine) {
		json_object_put(v);
		jerr_set(e, "the body is not valid JSON");
		return NULL;
	}
	return v;
}

/* Look key up in o; return its value or NULL when absent. */
static struct json_object *
field(struct json_object *o, const char *key, bool *present)
{
	struct json_object *v = NULL;
	*present = json_object_object_get_ex(o, key, &v);
	return v;
}

int
jv_string(struct json_object *o, const char *where, const char *key,
	  size_t min_chars, size_t max_chars, const char **out, size_t *out_len,
	  struct jerr *e)
{
	bool present;
	struct json_object *v = field(o, key, &present);
	if (!present)
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		jerr_set(e, "%s%s must be a string", where, key);
		return -1;
	}
	const char *s = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v);
	if (memchr(s, '\0', len)) {
		jerr_set(e, "%s%s must not contain \\u0000", where, key);
		return -1;
	}
	size_t n = utf8_chars(s, len);
	if (n < min_chars || n > max_chars) {
		if (min_chars > 0)
			jerr_set(e,
				 "%s%s must be %zu to %zu characters long "
				 "(got %zu)",
				 where, key, min_chars, max_chars, n);
		else
			jerr_set(e,
				 "%s%s must be at most %zu characters long "
				 "(got %zu)",
				 where, key, max_chars, n);
		return -1;
	}
	*out = s;
	if (out_len)
		*out_len = len;
	return 1;
}

int
jv_number(struct json_object *o, const char *where, const char *key, double min,
	  double max, double *out, struct jerr *e)
{
	bool present;
	struct json_object *v = field(o, key, &present);
	if (!present)
		return 0;
	double d;
	/* Read the type before the value: get_double("0.5") would be 0.5. */
	switch (json_object_get_type(v)) {
	case json_type_double:
		d = json_object_get_double(v);
		break;
	case json_type_int:
		/* Beyond int64 json-c clamps silently to the limits. */
		if (json_object_get_int64(v) == INT64_MAX ||
		    json_object_get_int64(v) == INT64_MIN)
			d = NAN;
		else
			d = (double)json_object_get_int64(v);
		break;
	default:
		jerr_set(e, "%s%s must be a number", where, key);
		return -1;
	}
	if (!isfinite(d) || d < min || d > max) {
		jerr_set(e, "%s%s must be a number from %g to %g", where, key,
			 min, max);
		return -1;
	}
	*out = d;
	return 1;
}

int
jv_time(struct json_object *o, const char *where, const char *key,
	int64_t *out_us, struct jerr *e)
{
	bool present;
	struct json_object *v = field(o, key, &present);
	if (!present)
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    isotime_parse(json_object_get_string(v),
			  (size_t)json_object_get_string_len(v), out_us)) {
		jerr_set(e,
			 "%s%s must be a timestamp string like "
			 "2026-01-31T13:45:00.250Z (RFC 3339)",
			 where, key);
		return -1;
	}
	return 1;
}

int
jv_only(struct json_object *o, const char *where, const char *const allowed[],
	struct jerr *e)
{
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (!allowed[i]) {
			jerr_set(e, "%sunknown field \"%.64s\"", where, key);
			return -1;
		}
	}
	return 0;
}

void
format_double(double d, char out[DOUBLE_MAX])
{
	/* The shortest %g that reads back as the same double. */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, DOUBLE_MAX, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
}

struct json_object *
json_double(double d)
{
	char s[DOUBLE_MAX];
	format_double(d, s);
	return json_object_new_double_s(d, s);
}

struct json_object *
json_seconds(int64_t us)
{
	char s[40];
	int64_t whole = us / 1000000, frac = llabs(us % 1000000);
	int n = snprintf(s, sizeof s, "%s%lld", us < 0 && whole == 0 ? "-" : "",
			 (long long)whole);
	if (frac) {
		n += snprintf(s + n, sizeof s - (size_t)n, ".%06lld",
			      (long long)frac);
		while (s[n - 1] == '0')
			s[--n] = '\0';
	}
	return json_object_new_double_s((double)us / 1e6, s);
}

struct json_object *
json_time(int64_t us)
{
	char s[ISOTIME_MAX];
	if (us == INT64_MIN || !isotime_format(us, s))
		return NULL;
	return json_object_new_string(s);
}
