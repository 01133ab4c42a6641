/*
 * Strict JSON in (json-c 0.16, with the care LIBRARY-NOTES asks for) and the
 * numbers of our responses out.
 */
#include "tracker.h"
#include "isotime.h"
#include "utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define jerr_set(e, ...) snprintf((e)->msg, sizeof(e)->msg, __VA_ARGS__)

/* The message for a scan stopped by a lone surrogate, naming the key of
 * the member it is in. SPEC 6.1: stored text is exactly what was sent,
 * and json-c would store U+FFFD instead. */
static void
lone_surrogate(const struct jsonscan *sc, struct jerr *e)
{
	e->field = true;
	if (sc->key && !sc->in_key)
		jerr_set(e,
			 "%.*s is not valid Unicode text (a \\u escape of a "
			 "lone surrogate)",
			 (int)(sc->key_len < 64 ? sc->key_len : 64),
			 (const char *)sc->key);
	else
		jerr_set(e,
			 "a %s is not valid Unicode text (a \\u escape of a "
			 "lone surrogate)",
			 sc->in_key ? "field name" : "string");
}

struct json_object *
jsonv_parse(const char *body, size_t len, size_t max_values, struct jerr *e)
{
	/* The strict scan first (lib/jsonscan.c says why): json-c then only
	 * builds what it passed. */
	struct jsonscan sc;
	e->field = false;
	if (jsonscan(&sc, body, len, max_values)) {
		switch (sc.error) {
		case JSONSCAN_EMPTY:
			jerr_set(e, "the request body is empty; expected JSON");
			break;
		case JSONSCAN_TOO_DEEP:
			jerr_set(e, "JSON nested deeper than %d levels",
				 JSON_MAX_DEPTH);
			break;
		case JSONSCAN_TOO_MANY:
			jerr_set(e,
				 "the body holds more than the %zu JSON values "
				 "any valid request here needs",
				 max_values);
			break;
		case JSONSCAN_LONE_SURROGATE:
			lone_surrogate(&sc, e);
			break;
		default:
			jerr_set(e,
				 "the body is not valid JSON (RFC 8259): error "
				 "at byte %zu",
				 sc.i);
		}
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
