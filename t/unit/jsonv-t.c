/* fcgi/jsonv.c: strict parsing (every case of LIBRARY-NOTES) and fields. */
#include "tracker.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Does body parse (with len = strlen unless given)? */
static int
parses_n(const char *body, size_t len)
{
	struct jerr e;
	struct json_object *v = jsonv_parse(body, len, SIZE_MAX, &e);
	json_object_put(v);
	return v != NULL;
}

static int
parses(const char *body)
{
	return parses_n(body, strlen(body));
}

static char *
nested(int depth)
{
	char *s = malloc((size_t)depth * 2 + 1);
	for (int i = 0; i < depth; i++) {
		s[i] = '[';
		s[depth * 2 - 1 - i] = ']';
	}
	s[depth * 2] = '\0';
	return s;
}

/* Run a getter on the JSON text doc; return its result, e for message. */
static struct json_object *
doc(const char *text)
{
	struct jerr e;
	return jsonv_parse(text, strlen(text), SIZE_MAX, &e);
}

static void
test_parse(void)
{
	ok(parses("{}"), "empty object");
	ok(parses("[]"), "empty array");
	ok(parses(" {\"a\": [1, 2.5, \"x\", true, null]} \n"),
	   "object with whitespace around");
	ok(!parses(""), "empty body");
	ok(!parses("   "), "only whitespace");
	ok(!parses("{\"a\":1,}"), "trailing comma in object");
	ok(!parses("[1,2,]"), "trailing comma in array");
	ok(!parses("{\"a\":1} // c"), "line comment");
	ok(!parses("/* c */ {}"), "block comment");
	ok(!parses("{'a':1}"), "single-quoted key");
	ok(!parses("{\"a\":'x'}"), "single-quoted string");
	ok(!parses("{\"a\":NaN}"), "NaN");
	ok(!parses("{\"a\":-Infinity}"), "-Infinity");
	ok(!parses("{\"a\":Infinity}"), "Infinity");
	ok(!parses("{\"a\":1} {}"), "two values");
	ok(!parses("{\"a\":1} x"), "garbage after the value");
	ok(!parses("{\"a\":"), "truncated");
	ok(!parses("{\"a\":01}"), "leading zero");
	ok(!parses("{\"a\":.5}"), "bare fraction");
	ok(!parses("{\"a\":\"\xff\"}"), "invalid UTF-8");
	ok(!parses("{\"a\":\"\xc0\xaf\"}"), "overlong UTF-8");
	ok(!parses_n("{\"a\":1}\0{", 9), "NUL byte after the value");
	ok(!parses_n("{\"a\":\"x\0y\"}", 11), "NUL byte inside a string");
	ok(!parses("{\"a\":\"tab\there\"}"), "raw control character");
	ok(parses("{\"a\":\"\\u00e9\\ud83d\\ude00\"}"), "escapes");

	char *s = nested(JSON_MAX_DEPTH);
	ok(parses(s), "%d levels deep", JSON_MAX_DEPTH);
	free(s);
	s = nested(JSON_MAX_DEPTH + 1);
	ok(!parses(s), "%d levels deep", JSON_MAX_DEPTH + 1);
	free(s);
	s = nested(100000);
	ok(!parses(s), "100000 levels deep");
	free(s);
}

/* Parse body with a budget of max values; 1 if it parsed, else e set. */
static int
within(const char *body, size_t max, struct jerr *e)
{
	struct json_object *v = jsonv_parse(body, strlen(body), max, e);
	json_object_put(v);
	return v != NULL;
}

/* "[{},{},...]" of n empty objects (caller frees). */
static char *
empty_objects(size_t n)
{
	char *s = malloc(n * 3 + 2), *p = s;
	*p++ = '[';
	for (size_t i = 0; i < n; i++) {
		memcpy(p, i ? ",{}" : "{}", i ? 3 : 2);
		p += i ? 3 : 2;
	}
	*p++ = ']';
	*p = '\0';
	return s;
}

static void
test_budget(void)
{
	struct jerr e;
	ok(within("{\"a\":1,\"b\":[2,3]}", 5, &e), "5 values in a budget of 5");
	ok(!within("{\"a\":1,\"b\":[2,3]}", 4, &e), "5 values over 4");
	ok(!e.field, "too many values is invalid_json");
	is_str(e.msg,
	       "the body holds more than the 4 JSON values any valid request "
	       "here needs",
	       "the message names the limit");
	ok(within("[]", 1, &e), "an empty array is one value");
	ok(!within("[[]]", 1, &e), "a container in a container is two");
	ok(within("{\"k\":{}}", 2, &e), "a key is not a value of its own");
	ok(within("\"x\"", 1, &e), "a lone string is one value");
	ok(!within("\"x\"", 0, &e), "a budget of 0 takes nothing");
	char *bomb = empty_objects(300000);
	ok(!within(bomb, 4001, &e), "300000 empty objects over a budget of "
				    "4001");
	ok(strstr(e.msg, "4001") != NULL, "... refused, naming the budget");
	free(bomb);
	bomb = empty_objects(4000);
	ok(within(bomb, 4001, &e), "4000 empty objects in an array: 4001");
	free(bomb);
	/* Whichever limit the scan meets first is the one told. */
	char *deep = nested(JSON_MAX_DEPTH + 1);
	ok(!within(deep, 100, &e) && strstr(e.msg, "deeper"),
	   "too deep within the budget is told as too deep");
	free(deep);
}

static void
test_surrogates(void)
{
	struct jerr e;
	struct json_object *o = doc("{\"s\":\"\\ud83d\\ude00\\uD83D\\uDE00\"}");
	ok(o, "a surrogate pair (either case) is Unicode");
	is_str(json_object_get_string(json_object_object_get(o, "s")),
	       "\xf0\x9f\x98\x80\xf0\x9f\x98\x80",
	       "... stored as the very code point, U+1F600");
	json_object_put(o);
	struct {
		const char *body, *name, *msg;
	} bad[] = {
	    {"{\"name\":\"\\ud800\"}", "a high surrogate alone", "name"},
	    {"{\"name\":\"\\udc00\"}", "a low surrogate alone", "name"},
	    {"{\"name\":\"a\\ud83dz\"}", "a high one before a letter", "name"},
	    {"{\"name\":\"\\ud83d\\n\"}", "a high one before \\n", "name"},
	    {"{\"name\":\"\\ud83d\\ud83d\"}", "two high ones", "name"},
	    {"{\"name\":\"\\ud83d\"}", "a high one at the end", "name"},
	    {"{\"name\":\"\\ude00\\ud83d\"}", "a pair the wrong way round",
	     "name"},
	    {"[{\"cpu_usage\":0.5,\"timestamp\":\"\\udfff\"}]",
	     "in a batch's element", "timestamp"},
	    {"{\"a\":[\"ok\",\"\\ud800\"]}", "in an array of a member", "a"},
	    {"{\"a\":{\"b\":1},\"c\":\"\\ud800\"}", "after an object", "c"},
	    {"[{\"b\":1},\"\\ud800\"]", "in a top-level array", NULL},
	    {"\"\\ud800\"", "the whole body", NULL},
	    {"{\"\\ud800\":1}", "in a key", "field name"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ok(!within(bad[i].body, SIZE_MAX, &e) && e.field,
		   "%s: invalid_field", bad[i].name);
		if (bad[i].msg)
			ok(strncmp(e.msg, bad[i].msg, strlen(bad[i].msg)) ==
				   0 ||
			       strstr(e.msg, bad[i].msg),
			   "... named: %s", e.msg);
		else
			ok(strstr(e.msg, "a string is not valid Unicode"),
			   "... told: %s", e.msg);
	}
	ok(!within("{\"name\":\"\\ud800\\u12\"}", SIZE_MAX, &e) && !e.field,
	   "a cut escape after a high surrogate is not JSON");
	ok(!within("{\"name\":\"\\ud800", SIZE_MAX, &e) && !e.field,
	   "an unterminated string is not JSON, surrogate or not");
}

static void
test_numbers(void)
{
	struct jerr e;
	double d = -1;
	struct json_object *o = doc("{\"i\":1,\"f\":0.25,\"s\":\"0.5\","
				    "\"big\":99999999999999999999,"
				    "\"neg\":-99999999999999999999,"
				    "\"huge\":1e400,\"n\":null,\"b\":true,"
				    "\"tiny\":1e-400}");
	ok(o, "numbers document parses");
	is_int(jv_number(o, "", "i", 0, 1, &d, &e), 1, "integer 1 in [0,1]");
	ok(d == 1.0, "reads 1");
	is_int(jv_number(o, "", "f", 0, 1, &d, &e), 1, "0.25 in [0,1]");
	ok(d == 0.25, "reads 0.25");
	is_int(jv_number(o, "", "s", 0, 1, &d, &e), -1,
	       "a string is no number");
	is_str(e.msg, "s must be a number", "message names the field");
	is_int(jv_number(o, "", "big", 0, 1e30, &d, &e), -1,
	       "beyond int64 (clamped by json-c) is out of range");
	is_int(jv_number(o, "", "neg", -1e30, 1, &d, &e), -1,
	       "below int64 is out of range");
	is_int(jv_number(o, "", "huge", 0, 1, &d, &e), -1, "1e400 (inf)");
	is_str(e.msg, "huge must be a number from 0 to 1", "range message");
	is_int(jv_number(o, "", "n", 0, 1, &d, &e), -1, "null is a wrong type");
	is_int(jv_number(o, "", "b", 0, 1, &d, &e), -1, "true is no number");
	is_int(jv_number(o, "", "tiny", 0, 1, &d, &e), 1, "1e-400 is 0");
	is_int(jv_number(o, "", "absent", 0, 1, &d, &e), 0, "absent");
	is_int(jv_number(o, "[2].", "f", 0, 0.1, &d, &e), -1, "prefix");
	is_str(e.msg, "[2].f must be a number from 0 to 0.1",
	       "message has the element's prefix");
	json_object_put(o);
}

static void
test_strings(void)
{
	struct jerr e;
	const char *s;
	size_t n;
	struct json_object *o =
	    doc("{\"ascii\":\"abc\",\"utf\":\"\xc3\xa9t\xc3\xa9\","
		"\"nul\":\"a\\u0000b\",\"num\":5,\"nul2\":null,"
		"\"emoji\":\"\\ud83d\\ude00\"}");
	is_int(jv_string(o, "", "ascii", 1, 3, &s, &n, &e), 1, "3 of max 3");
	is_int(n, 3, "length");
	is_int(jv_string(o, "", "ascii", 1, 2, &s, &n, &e), -1, "3 of max 2");
	is_str(e.msg, "ascii must be 1 to 2 characters long (got 3)",
	       "length message");
	is_int(jv_string(o, "", "utf", 0, 3, &s, &n, &e), 1,
	       "3 code points in 5 bytes fit max 3");
	is_int(n, 5, "byte length");
	is_int(jv_string(o, "", "emoji", 0, 1, &s, &n, &e), 1,
	       "a 4-byte character counts once");
	is_int(jv_string(o, "", "nul", 0, 10, &s, &n, &e), -1,
	       "\\u0000 refused");
	is_int(jv_string(o, "", "num", 0, 10, &s, &n, &e), -1, "5 no string");
	is_str(e.msg, "num must be a string", "type message");
	is_int(jv_string(o, "", "nul2", 0, 10, &s, &n, &e), -1,
	       "null is a wrong type");
	is_int(jv_string(o, "", "nope", 0, 10, &s, &n, &e), 0, "absent");
	is_int(utf8_chars("\xe2\x82\xac\xf0\x9f\x98\x80x", 8), 3,
	       "utf8_chars counts code points");
	struct {
		const char *s;
		size_t len, want;
		const char *name;
	} seq[] = {{"a", 1, 1, "ASCII"},
		   {"\xc3\xa9", 2, 2, "2 bytes"},
		   {"\xe2\x82\xac", 3, 3, "3 bytes"},
		   {"\xf0\x9f\x98\x80", 4, 4, "4 bytes"},
		   {"\xe2\x82\xac", 2, 0, "cut short by len"},
		   {"\xc3", 1, 0, "lead byte alone"},
		   {"\x80", 1, 0, "continuation byte alone"},
		   {"\xc0\xaf", 2, 0, "overlong"},
		   {"\xed\xa0\x80", 3, 0, "surrogate"},
		   {"\xf4\x90\x80\x80", 4, 0, "beyond U+10FFFF"},
		   {"\xff", 1, 0, "0xff"},
		   {"", 0, 0, "nothing"}};
	for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++)
		is_int(utf8_seq((const unsigned char *)seq[i].s, seq[i].len),
		       seq[i].want, "utf8_seq: %s", seq[i].name);
	json_object_put(o);
}

static void
test_time_and_only(void)
{
	struct jerr e;
	int64_t us = 0;
	struct json_object *o = doc("{\"t\":\"1970-01-01T00:00:01.5+00:00\","
				    "\"bad\":\"yesterday\",\"n\":17}");
	is_int(jv_time(o, "", "t", &us, &e), 1, "timestamp");
	is_int(us, 1500000, "timestamp value");
	is_int(jv_time(o, "", "bad", &us, &e), -1, "bad timestamp");
	ok(strstr(e.msg, "bad must be a timestamp") != NULL,
	   "timestamp message names the field");
	is_int(jv_time(o, "", "n", &us, &e), -1, "number is no timestamp");
	is_int(jv_time(o, "", "none", &us, &e), 0, "absent timestamp");

	const char *const allowed[] = {"t", "bad", "n", NULL};
	const char *const fewer[] = {"t", "n", NULL};
	is_int(jv_only(o, "", allowed, &e), 0, "only allowed keys");
	is_int(jv_only(o, "", fewer, &e), -1, "unknown key");
	is_str(e.msg, "unknown field \"bad\"", "unknown key message");
	json_object_put(o);

	/* Duplicate keys: json-c keeps the last; we see one value. */
	o = doc("{\"t\":\"x\",\"t\":\"1970-01-01T00:00:00Z\"}");
	is_int(jv_time(o, "", "t", &us, &e), 1, "duplicate key: last wins");
	json_object_put(o);
}

static void
test_output_numbers(void)
{
	struct {
		double d;
		const char *want;
	} dbl[] = {{0.5, "0.5"},
		   {0.1, "0.1"},
		   {1, "1"},
		   {0, "0"},
		   {0.30000000000000004, "0.30000000000000004"},
		   {1.0 / 3, "0.3333333333333333"}};
	for (size_t i = 0; i < sizeof dbl / sizeof dbl[0]; i++) {
		struct json_object *j = json_double(dbl[i].d);
		is_str(json_object_to_json_string(j), dbl[i].want,
		       "json_double %.17g", dbl[i].d);
		json_object_put(j);
	}
	struct {
		int64_t us;
		const char *want;
	} sec[] = {{0, "0"},	     {1500000, "1.5"},
		   {1, "0.000001"},  {123456789, "123.456789"},
		   {60000000, "60"}, {-500000, "-0.5"}};
	for (size_t i = 0; i < sizeof sec / sizeof sec[0]; i++) {
		struct json_object *j = json_seconds(sec[i].us);
		is_str(json_object_to_json_string(j), sec[i].want,
		       "json_seconds %lld", (long long)sec[i].us);
		json_object_put(j);
	}
	ok(json_time(INT64_MIN) == NULL, "json_time of no time is null");
}

int
main(void)
{
	test_parse();
	test_budget();
	test_surrogates();
	test_numbers();
	test_strings();
	test_time_and_only();
	test_output_numbers();
	return done_testing();
}
