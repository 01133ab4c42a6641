/*
 * Strict JSON (RFC 8259) scanned in place, without building anything: the
 * one scanner of the client (the tracker's answers, the spool file) and of
 * the service (a request body, before json-c builds it).
 */
#ifndef GH_JSONSCAN_H
#define GH_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Containers one inside another, the outermost counting (SPEC 3). */
#define JSON_MAX_DEPTH 32

/* What a JSON value is (json-c has its own enum json_type). */
enum json_kind {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/* A value inside a JSON text: its type and raw span. */
struct json_value {
	enum json_kind type;
	const char *p;
	size_t len;
};

/* Why a scan stopped. */
enum jsonscan_error {
	JSONSCAN_OK,
	JSONSCAN_EMPTY,		 /* nothing but blanks */
	JSONSCAN_SYNTAX,	 /* not JSON, at byte i */
	JSONSCAN_TOO_DEEP,	 /* containers deeper than JSON_MAX_DEPTH */
	JSONSCAN_TOO_MANY,	 /* more values than max_values */
	JSONSCAN_LONE_SURROGATE, /* a \u escape of half a surrogate pair:
				    JSON, but not Unicode text */
};

/* A scan's state; after one, what stopped it. */
struct jsonscan {
	const unsigned char *s;
	size_t len, i; /* the text, and how far the scan got */
	int depth;
	size_t values, max_values;
	enum jsonscan_error error;
	/* The innermost member's key (raw, without its quotes) where the scan
	 * stopped, NULL outside every object; in_key: the lone surrogate is
	 * in a key itself. */
	const unsigned char *key;
	size_t key_len;
	bool in_key;
	/* jsonscan_get: the outermost object's member wanted, and its value. */
	const char *want;
	size_t want_len;
	struct json_value found;
};

/* Scan text[0..len): one JSON value, blanks around it, at most max_values
 * values (each member's value, element and container counts one). Return
 * 0, or -1 with sc->error (and sc->i, sc->key) telling why. */
int jsonscan(struct jsonscan *sc, const char *text, size_t len,
	     size_t max_values);

/* ---- reading values in place (the client) ------------------------------ */

/* Every name here starts with jsonscan: the tracker also links jansson
 * (libjwt's), and a json_string of ours would replace jansson's in it. */

/* Find member key (compared as written) of the object that is the whole of
 * js[0..len), itself strict JSON. Return 0 and set *v to the first such
 * member's value, or -1. */
int jsonscan_get(const char *js, size_t len, const char *key,
		 struct json_value *v);
/* The elements of array arr in turn: start with *pos = 0; return 0 and set
 * *elem, or -1 after the last one. */
int jsonscan_next(const struct json_value *arr, size_t *pos,
		  struct json_value *elem);
/* The value as a finite number; return 0 or -1. */
int jsonscan_number(const struct json_value *v, double *out);
/* The value as an integer; return 0 or -1. */
int jsonscan_int64(const struct json_value *v, int64_t *out);
/* The value as a newly allocated, unescaped UTF-8 string, or NULL if it is
 * not a string, holds \u0000 or is not Unicode (a lone surrogate). */
char *jsonscan_string(const struct json_value *v);

#endif
