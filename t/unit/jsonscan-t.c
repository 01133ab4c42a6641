/*
 * lib/jsonscan.c, the strict scanner the client and the service share: its
 * edges (depth, value budget, surrogates, escapes, numbers, cut texts, NUL
 * bytes) and the in-place reading the client does with it.
 */
#include "jsonscan.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* Scan text (len bytes) with a budget of max values; return sc.error. */
static enum jsonscan_error
scan_n(const char *text, size_t len, size_t max, struct jsonscan *sc)
{
	struct jsonscan mine;
	if (!sc)
		sc = &mine;
	int rc = jsonscan(sc, text, len, max);
	if ((rc == 0) != (sc->error == JSONSCAN_OK))
		return (enum jsonscan_error) - 1; /* rc and error disagree */
	return sc->error;
}

static enum jsonscan_error
scan(const char *text)
{
	return scan_n(text, strlen(text), SIZE_MAX, NULL);
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Each of the n texts (NUL-terminated) scans to want; what names them. */
static void
each_is(const char *const texts[], size_t n, enum jsonscan_error want,
	const char *what)
{
	for (size_t i = 0; i < n; i++)
		is_int(scan(texts[i]), want, "%s: %s", what, texts[i]);
}

/* depth containers one in another, "[[[...]]]" or "{"a":{"a":...}}",
 * with inner at the bottom (caller frees). */
static char *
nested(int depth, bool objects, const char *inner)
{
	size_t n = (size_t)depth * 6 + strlen(inner) + 1;
	char *s = malloc(n), *p = s;
	for (int i = 0; i < depth; i++)
		p += sprintf(p, "%s", objects ? "{\"a\":" : "[");
	p += sprintf(p, "%s", inner);
	for (int i = 0; i < depth; i++)
		*p++ = objects ? '}' : ']';
	*p = '\0';
	return s;
}

static void
test_depth(void)
{
	char *s = nested(JSON_MAX_DEPTH, false, "");
	is_int(scan(s), JSONSCAN_OK, "%d arrays, one in another",
	       JSON_MAX_DEPTH);
	free(s);
	s = nested(JSON_MAX_DEPTH, false, "1");
	is_int(scan(s), JSONSCAN_OK, "%d arrays around a number",
	       JSON_MAX_DEPTH);
	free(s);
	s = nested(JSON_MAX_DEPTH + 1, false, "");
	is_int(scan(s), JSONSCAN_TOO_DEEP, "%d arrays: too deep",
	       JSON_MAX_DEPTH + 1);
	free(s);
	s = nested(JSON_MAX_DEPTH, true, "1");
	is_int(scan(s), JSONSCAN_OK, "%d objects", JSON_MAX_DEPTH);
	free(s);
	s = nested(JSON_MAX_DEPTH + 1, true, "1");
	is_int(scan(s), JSONSCAN_TOO_DEEP, "%d objects: too deep",
	       JSON_MAX_DEPTH + 1);
	free(s);
	s = nested(JSON_MAX_DEPTH + 1, false, "");
	s[JSON_MAX_DEPTH + 1] = '\0'; /* cut: only the openers */
	is_int(scan(s), JSONSCAN_TOO_DEEP,
	       "too deep is told even in a text cut short");
	free(s);
	s = nested(200000, false, "");
	is_int(scan(s), JSONSCAN_TOO_DEEP, "200000 levels: refused, no crash");
	free(s);
	/* Depth counts containers one in another, not in a row. */
	struct jsonscan sc;
	char wide[4096] = "[";
	for (int i = 0; i < 500; i++)
		strcat(wide, i ? ",[]" : "[]");
	strcat(wide, "]");
	is_int(scan_n(wide, strlen(wide), SIZE_MAX, &sc), JSONSCAN_OK,
	       "500 arrays side by side are 2 levels");
	is_int(sc.depth, 0, "... and the depth is back to 0 after");
}

static void
test_budget(void)
{
	const char *five = "{\"a\":1,\"b\":[2,3]}";
	is_int(scan_n(five, strlen(five), 5, NULL), JSONSCAN_OK,
	       "5 values in a budget of 5");
	is_int(scan_n(five, strlen(five), 4, NULL), JSONSCAN_TOO_MANY,
	       "5 values in a budget of 4");
	is_int(scan_n(five, strlen(five), 6, NULL), JSONSCAN_OK,
	       "5 values in a budget of 6");
	is_int(scan_n("[]", 2, 1, NULL), JSONSCAN_OK, "[] is one value");
	is_int(scan_n("[[]]", 4, 1, NULL), JSONSCAN_TOO_MANY, "[[]] is two");
	is_int(scan_n("{\"k\":{}}", 8, 2, NULL), JSONSCAN_OK,
	       "a key is not a value of its own");
	is_int(scan_n("1", 1, 0, NULL), JSONSCAN_TOO_MANY,
	       "a budget of 0 takes nothing");
	/* The budget is met before the syntax error that follows. */
	is_int(scan_n("[1,2,3,x", 8, 2, NULL), JSONSCAN_TOO_MANY,
	       "the first limit met is the one told");
}

static void
test_surrogates(void)
{
	struct jsonscan sc;
	is_int(scan("\"\\ud83d\\ude00\\uD83D\\uDE00\""), JSONSCAN_OK,
	       "a surrogate pair, either case");
	struct {
		const char *text, *key;
		bool in_key;
		const char *name;
	} lone[] = {
	    {"{\"name\":\"\\ud800\"}", "name", false, "a high one alone"},
	    {"{\"name\":\"\\udc00\"}", "name", false, "a low one alone"},
	    {"{\"name\":\"a\\ud83dz\"}", "name", false, "a high one, a letter"},
	    {"{\"name\":\"\\ud83d\\n\"}", "name", false, "a high one, \\n"},
	    {"{\"name\":\"\\ud83d\\ud83d\"}", "name", false, "two high ones"},
	    {"{\"name\":\"\\ude00\\ud83d\"}", "name", false, "the wrong order"},
	    {"{\"a\":{\"b\":1},\"c\":\"\\ud800\"}", "c", false,
	     "after an object: its own key"},
	    {"{\"a\":[\"ok\",\"\\ud800\"]}", "a", false, "in a member's array"},
	    {"[{\"b\":1},\"\\ud800\"]", NULL, false, "in a top-level array"},
	    {"\"\\ud800\"", NULL, false, "the whole text"},
	    {"{\"x\":1,\"\\ud800\":1}", "x", true, "in a key"},
	};
	for (size_t i = 0; i < COUNT(lone); i++) {
		is_int(
		    scan_n(lone[i].text, strlen(lone[i].text), SIZE_MAX, &sc),
		    JSONSCAN_LONE_SURROGATE, "lone surrogate: %s",
		    lone[i].name);
		if (lone[i].in_key)
			ok(sc.in_key, "... in a key");
		else
			ok(!sc.in_key &&
			       (lone[i].key
				    ? sc.key &&
					  sc.key_len == strlen(lone[i].key) &&
					  !memcmp(sc.key, lone[i].key,
						  sc.key_len)
				    : sc.key == NULL),
			   "... the key it is under: %s",
			   lone[i].key ? lone[i].key : "none");
	}
	is_int(scan("{\"name\":\"\\ud800\\u12\"}"), JSONSCAN_SYNTAX,
	       "a cut escape after a high one is not JSON");
	is_int(scan("{\"name\":\"\\ud800"), JSONSCAN_SYNTAX,
	       "an unterminated string is not JSON, surrogate or not");
	is_int(scan("\"\\ud800\\uzzzz\""), JSONSCAN_SYNTAX,
	       "a high one before a bad escape is not JSON");
}

static void
test_escapes(void)
{
	is_int(scan("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\u0000\""),
	       JSONSCAN_OK, "every escape RFC 8259 has (\\u0000 too)");
	const char *bad[] = {"\"\\x\"",	    "\"\\u12\"", "\"\\u12g4\"",
			     "\"\\U00e9\"", "\"\\\"",	 "\"\\'\"",
			     "\"\\a\"",	    "\"\\"};
	each_is(bad, COUNT(bad), JSONSCAN_SYNTAX, "bad escape");
	is_int(scan_n("\"\\\0\"", 4, SIZE_MAX, NULL), JSONSCAN_SYNTAX,
	       "a backslash before a NUL byte");
	is_int(scan("\"tab\there\""), JSONSCAN_SYNTAX, "a raw tab");
	is_int(scan("\"\x7f\""), JSONSCAN_OK, "DEL is no control in JSON");
	is_int(scan("\"caf\xc3\xa9 \xf0\x9f\x98\x80\""), JSONSCAN_OK,
	       "UTF-8 of 2 and 4 bytes");
	const char *bad_utf8[] = {"\"\xff\"", "\"\xc0\xaf\"",
				  "\"\xed\xa0\x80\"", "\"\xc3\"",
				  "\"\xf4\x90\x80\x80\""};
	each_is(bad_utf8, COUNT(bad_utf8), JSONSCAN_SYNTAX,
		"not UTF-8 in a string");
	is_int(scan("\xc3\xa9"), JSONSCAN_SYNTAX, "UTF-8 outside a string");
}

static void
test_numbers(void)
{
	const char *good[] = {"0",
			      "-0",
			      "1",
			      "-1",
			      "10",
			      "0.5",
			      "-0.5e3",
			      "1E+2",
			      "1e-400",
			      "1e999",
			      "99999999999999999999"};
	each_is(good, COUNT(good), JSONSCAN_OK, "number");
	const char *bad[] = {"01",	  "-",	      "+1",  ".5",    "1.",
			     "1e",	  "1e+",      "--1", "0x1",   "NaN",
			     "-Infinity", "Infinity", "1 2", "1.5.2", "-.5"};
	each_is(bad, COUNT(bad), JSONSCAN_SYNTAX, "not a number");
}

static void
test_texts(void)
{
	is_int(scan(""), JSONSCAN_EMPTY, "nothing");
	is_int(scan(" \t\r\n"), JSONSCAN_EMPTY, "only blanks");
	is_int(scan(" {\"a\": [1, 2.5, \"x\", true, false, null]} \n"),
	       JSONSCAN_OK, "every kind of value, blanks around");
	const char *bad[] = {"{\"a\":1,}",
			     "[1,2,]",
			     "{\"a\":1} // c",
			     "/* c */ {}",
			     "{'a':1}",
			     "{\"a\":'x'}",
			     "{\"a\":1} {}",
			     "{\"a\" 1}",
			     "{a:1}",
			     "tru",
			     "nul",
			     "[1 2]",
			     "{\"a\":1 \"b\":2}",
			     "\f{}",
			     "{,}",
			     "[,1]"};
	each_is(bad, COUNT(bad), JSONSCAN_SYNTAX, "not JSON");

	/* Every proper prefix of a valid text is refused. */
	const char *whole = "{\"a\":[1,-2.5e3,\"x\\u00e9\\ud83d\\ude00\",true,"
			    "null,{}],\"b\":false}";
	size_t n = strlen(whole), refused = 0;
	for (size_t k = 0; k < n; k++)
		refused += scan_n(whole, k, SIZE_MAX, NULL) != JSONSCAN_OK;
	is_int(refused, n, "every one of its %zu truncations is refused", n);
	is_int(scan(whole), JSONSCAN_OK, "... and the whole is taken");

	struct jsonscan sc;
	is_int(scan_n("{\"a\":1}\0{", 9, SIZE_MAX, &sc), JSONSCAN_SYNTAX,
	       "a NUL byte after the value");
	is_int(sc.i, 7, "... found at its byte");
	is_int(scan_n("{\"a\":\"x\0y\"}", 11, SIZE_MAX, NULL), JSONSCAN_SYNTAX,
	       "a NUL byte inside a string");
	is_int(scan_n("\0", 1, SIZE_MAX, NULL), JSONSCAN_SYNTAX,
	       "a NUL byte alone");
	is_int(scan_n("[1,\0 2]", 7, SIZE_MAX, NULL), JSONSCAN_SYNTAX,
	       "a NUL byte among blanks");
	is_int(scan_n("[1, 2] x", 8, SIZE_MAX, &sc), JSONSCAN_SYNTAX,
	       "garbage after the value");
	is_int(sc.i, 7, "... the error at its byte");
}

/* What the client reads in place; client-json-t tests the rest. */
static void
test_reading(void)
{
	const char *js =
	    "{\"id\":42,\"o\":{\"id\":7},\"l\":[1,{\"x\":[]},\"y\"],"
	    "\"id\":9}";
	struct json_value v, el;
	int64_t n = 0;
	is_int(jsonscan_get(js, strlen(js), "id", &v), 0,
	       "jsonscan_get finds id");
	ok(!jsonscan_int64(&v, &n) && n == 42,
	   "the first of two, not the nested one (%lld)", (long long)n);
	is_int(jsonscan_get(js, strlen(js), "x", &v), -1,
	       "members of inner objects are not found");
	is_int(jsonscan_get(js, strlen(js), "l", &v), 0, "an array member");
	size_t pos = 0;
	enum json_kind types[4];
	int k = 0;
	while (k < 4 && jsonscan_next(&v, &pos, &el) == 0)
		types[k++] = el.type;
	ok(k == 3 && types[0] == JSON_NUMBER && types[1] == JSON_OBJECT &&
	       types[2] == JSON_STRING,
	   "jsonscan_next walks its 3 elements (%d)", k);
	is_int(jsonscan_get("[{\"id\":1}]", 10, "id", &v), -1,
	       "an array is not an object");
	is_int(jsonscan_get("{\"id\":1", 7, "id", &v), -1, "a cut object");
	const char *lone = "{\"id\":1,\"s\":\"\\ud800\"}";
	is_int(jsonscan_get(lone, strlen(lone), "id", &v), -1,
	       "a lone surrogate anywhere refuses the text");
	const char *nul = "{\"s\":\"a\\u0000b\"}";
	char *s = jsonscan_get(nul, strlen(nul), "s", &v) == 0
		      ? jsonscan_string(&v)
		      : NULL;
	ok(v.type == JSON_STRING && s == NULL,
	   "\\u0000 scans, but is no string the client takes");
	free(s);
}

int
main(void)
{
	test_depth();
	test_budget();
	test_surrogates();
	test_escapes();
	test_numbers();
	test_texts();
	test_reading();
	return done_testing();
}
