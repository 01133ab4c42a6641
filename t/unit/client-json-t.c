/*
 * What the client reads and writes: the tracker's JSON answers, request
 * strings and timestamps, the spool file, the run's figures and the summary.
 */
#include "client.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isotime.h"

/* Member key of js as a string (allocated), or NULL. */
static char *
get_str(const char *js, const char *key)
{
	struct json_value v;
	return jsonscan_get(js, strlen(js), key, &v) ? NULL
						     : jsonscan_string(&v);
}

/* Member key of js as a number, or NAN. */
static double
get_num(const char *js, const char *key)
{
	struct json_value v;
	double d;
	if (jsonscan_get(js, strlen(js), key, &v) || jsonscan_number(&v, &d))
		return NAN;
	return d;
}

static void
test_read(void)
{
	const char *test =
	    " {\"id\": 42, \"name\": \"make \\\"all\\\"\", \"description\":"
	    " \"caf\\u00e9 \\ud83d\\ude00\", \"threshold\": 0.5, \"active\":"
	    " false, \"start_time\": \"2024-05-01T12:00:00Z\", \"end_time\":"
	    " null, \"nested\": {\"id\": 7, \"a\": [1, {\"b\": []}]},"
	    " \"duration\": 1.5e1, \"samples\": 30,"
	    " \"max_cpu_usage\": -0.0, \"mean_cpu_usage\": null}\n";
	struct json_value v;
	int64_t n;
	is_int(jsonscan_get(test, strlen(test), "id", &v), 0, "finds id");
	is_int(jsonscan_int64(&v, &n), 0, "an integer");
	is_int(n, 42, "the top-level id, not the nested one");
	ok(get_num(test, "duration") == 15.0, "an exponent number");
	ok(get_num(test, "max_cpu_usage") == 0.0, "-0.0");
	char *s = get_str(test, "name");
	is_str(s, "make \"all\"", "escaped quotes unescape");
	free(s);
	s = get_str(test, "description");
	is_str(s, "caf\xc3\xa9 \xf0\x9f\x98\x80",
	       "\\u00e9 and a surrogate pair become UTF-8");
	free(s);
	is_int(jsonscan_get(test, strlen(test), "mean_cpu_usage", &v), 0,
	       "finds a null");
	is_int(v.type, JSON_NULL, "typed null");
	ok(jsonscan_number(&v, &(double){0}) < 0, "null is not a number");
	is_int(jsonscan_get(test, strlen(test), "active", &v), 0,
	       "finds a bool");
	is_int(v.type, JSON_BOOL, "typed bool");
	is_int(jsonscan_get(test, strlen(test), "nested", &v), 0, "an object");
	is_int(v.type, JSON_OBJECT, "typed object");
	is_int(jsonscan_get(test, strlen(test), "b", &v), -1,
	       "nested members are not top-level ones");
	is_int(jsonscan_get(test, strlen(test), "missing", &v), -1,
	       "a missing member");
	is_int(jsonscan_get(test, strlen(test), "samples", &v), 0, "samples");
	ok(jsonscan_string(&v) == NULL, "a number is not a string");

	const char *bad[] = {
	    "",
	    "[1, 2]",
	    "{\"id\": 1,}",
	    "{\"id\": 1",
	    "{\"id\" 1}",
	    "{id: 1}",
	    "{\"id\": 01}",
	    "{\"id\": 1.}",
	    "{\"id\": tru}",
	    "{\"id\": \"a\nb\"}",
	    "{\"id\": 1} x",
	    "{\"id\": [1, 2,]}",
	    "{\"x\": \"unterminated}",
	    "<html>502 Bad Gateway</html>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		is_int(jsonscan_get(bad[i], strlen(bad[i]), "id", &v), -1,
		       "malformed text %zu is refused", i);

	char deep[200];
	strcpy(deep, "{\"id\": 1, \"d\": ");
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	for (int i = 0; i < 40; i++)
		strcat(deep, "]");
	strcat(deep, "}");
	is_int(jsonscan_get(deep, strlen(deep), "id", &v), -1,
	       "nesting deeper than 32 is refused");

	const char *dup = "{\"id\": 1, \"id\": 2}";
	jsonscan_get(dup, strlen(dup), "id", &v);
	jsonscan_int64(&v, &n);
	is_int(n, 1, "a repeated member: the first one counts");

	const char *bads[] = {"{\"s\": \"\\u0000\"}", "{\"s\": \"\\ud83d\"}",
			      "{\"s\": \"\\ude00\"}", "{\"s\": \"\\x\"}",
			      "{\"s\": \"\\u12\"}"};
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		s = get_str(bads[i], "s");
		ok(s == NULL, "refused escape: %s", bads[i]);
		free(s);
	}
	const char *list =
	    "{\"tests\": [ {\"id\": 3, \"x\": [1]} ,{\"id\": 2}],"
	    " \"next\": null}";
	struct json_value arr, el;
	size_t pos = 0;
	int64_t ids[3] = {0};
	int k = 0;
	is_int(jsonscan_get(list, strlen(list), "tests", &arr), 0, "an array");
	while (k < 3 && jsonscan_next(&arr, &pos, &el) == 0)
		if (jsonscan_get(el.p, el.len, "id", &v) ||
		    jsonscan_int64(&v, &ids[k++]))
			break;
	ok(k == 2 && ids[0] == 3 && ids[1] == 2,
	   "jsonscan_next walks the elements in order (%d)", k);
	const char *none = "{\"tests\": [ ]}";
	jsonscan_get(none, strlen(none), "tests", &arr);
	pos = 0;
	is_int(jsonscan_next(&arr, &pos, &el), -1, "an empty array");
	jsonscan_get(list, strlen(list), "next", &arr);
	pos = 0;
	is_int(jsonscan_next(&arr, &pos, &el), -1, "null is not an array");

	const char *big = "{\"n\": 1e999, \"i\": 99999999999999999999}";
	ok(isnan(get_num(big, "n")), "1e999 is not a finite number");
	jsonscan_get(big, strlen(big), "i", &v);
	ok(jsonscan_int64(&v, &n) < 0, "an integer beyond int64 is refused");
}

static void
test_write(void)
{
	struct buf b = {0};
	json_put_string(&b, "a\"b\\c\n\t\x01 caf\xc3\xa9");
	is_str(b.p, "\"a\\\"b\\\\c\\u000a\\u0009\\u0001 caf\xc3\xa9\"",
	       "quotes, backslashes and controls escaped, UTF-8 kept");
	buf_reset(&b);
	json_put_string(&b, "x\xff"
			    "y\xc3(\xed\xa0\x80");
	is_str(b.p, "\"x\\ufffdy\\ufffd(\\ufffd\\ufffd\\ufffd\"",
	       "invalid UTF-8 (stray, cut, surrogate) becomes U+FFFD");
	buf_reset(&b);
	json_put_string(&b, "");
	is_str(b.p, "\"\"", "the empty string");

	/* Timestamps as the API takes them (SPEC 2), written via isotime. */
	buf_reset(&b);
	json_put_time(&b, 1714564800000000LL);
	is_str(b.p, "\"2024-05-01T12:00:00Z\"", "a whole second");
	buf_reset(&b);
	json_put_time(&b, 1714564800500000LL);
	is_str(b.p, "\"2024-05-01T12:00:00.500000Z\"", "microseconds");
	buf_reset(&b);
	json_put_time(&b, 1714564800000001LL);
	is_str(b.p, "\"2024-05-01T12:00:00.000001Z\"", "one microsecond");
	int64_t back;
	is_int(isotime_parse(b.p + 1, b.len - 2, &back), 0, "parses back");
	is_int(back, 1714564800000001LL, "to the same instant");

	is_int(utf8_chars("caf\xc3\xa9", 5), 4, "4 characters in 'café'");
	is_int(utf8_chars("\xff\xfe", 2), 2, "an invalid byte counts as one");
	char cut[] = "ab\xc3\xa9\xc3\xa9";
	utf8_truncate(cut, 3);
	is_str(cut, "ab\xc3\xa9", "cut after 3 characters, not 3 bytes");
	char same[] = "abc";
	utf8_truncate(same, 10);
	is_str(same, "abc", "shorter strings stay");

	buf_reset(&b);
	buf_printf(&b, "%d-%s", 7, "x");
	buf_puts(&b, "!");
	is_str(b.p, "7-x!", "buf_printf and buf_puts append");
	buf_free(&b);
}

static void
test_spool(void)
{
	struct sample xs[] = {{.stamp = 1714564800500000LL, .cpu = 0.25},
			      {.stamp = 1714564801000000LL, .cpu = 1.0}};
	struct spool sp = {.server = "http://127.0.0.1:5000",
			   .test_id = 0,
			   .name = "make \"x\"",
			   .description = "caf\xc3\xa9\n-j2",
			   .threshold = 0.8,
			   .start_us = 1714564800000000LL,
			   .end_us = 1714564801000000LL,
			   .stopped = false,
			   .exit_status = 3,
			   .samples = xs,
			   .n = 2};
	struct buf b = {0};
	spool_format(&b, &sp);
	ok(strstr(b.p, "\"test_id\":null") != NULL, "no test id yet: null");
	ok(strstr(b.p, "token") == NULL && strstr(b.p, "jwt") == NULL,
	   "no token field in the spool");
	char *nl = strchr(b.p, '\n');
	ok(nl && nl[1] == '{' && strchr(nl + 1, '\n'),
	   "one header line, then a line per sample");

	struct spool back;
	char err[128];
	is_int(spool_parse(&back, b.p, b.len, err, sizeof err), 0,
	       "the spool parses back");
	is_str(back.server, sp.server, "server");
	is_int(back.test_id, 0, "test id");
	is_str(back.name, sp.name, "name with quotes");
	is_str(back.description, sp.description, "description with UTF-8");
	ok(back.threshold == 0.8, "threshold");
	is_int(back.start_us, sp.start_us, "start time");
	is_int(back.end_us, sp.end_us, "end time");
	ok(!back.stopped, "not stopped");
	is_int(back.exit_status, 3, "the command's exit status");
	is_int(back.n, 2, "two samples");
	ok(back.n == 2 && back.samples[0].stamp == xs[0].stamp &&
	       back.samples[0].cpu == 0.25 &&
	       back.samples[1].stamp == xs[1].stamp &&
	       back.samples[1].cpu == 1.0,
	   "the samples, exactly");
	spool_free(&back);

	sp.test_id = 42;
	sp.stopped = true;
	sp.exit_status = -1;
	sp.n = 0;
	buf_reset(&b);
	spool_format(&b, &sp);
	is_int(spool_parse(&back, b.p, b.len, err, sizeof err), 0,
	       "a spool with no samples left");
	ok(back.test_id == 42 && back.stopped && back.exit_status == -1 &&
	       back.n == 0,
	   "test id, stopped, no exit status, no samples");
	spool_free(&back);

	const char *bad[] = {
	    "",
	    "hello\n",
	    "{\"grasshopper_spool\":2,\"server\":\"x\"}\n",
	    "{\"grasshopper_spool\":1}\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ok(spool_parse(&back, bad[i], strlen(bad[i]), err, sizeof err) <
		       0,
		   "not a spool: text %zu", i);
		spool_free(&back);
	}
	buf_reset(&b);
	sp.n = 2;
	spool_format(&b, &sp);
	buf_puts(&b,
		 "{\"timestamp\":\"2024-05-01T12:00:02Z\",\"cpu_usage\":2}\n");
	int rc = spool_parse(&back, b.p, b.len, err, sizeof err);
	ok(rc < 0 && strstr(err, "line 4"),
	   "a sample out of range is refused, naming its line (%s)", err);
	spool_free(&back);
	buf_free(&b);
}

static void
test_summary(void)
{
	struct run_stats st;
	int64_t t0 = 1714564800000000LL;
	stats_init(&st, t0, 0.5);
	stats_add(&st, t0 + 500000, 0.9);  /* 0.5 s above */
	stats_add(&st, t0 + 1000000, 0.5); /* equal is not above */
	stats_add(&st, t0 + 1500000, 0.6); /* 0.5 s above */
	stats_add(&st, t0 + 1600000, 0.1);
	stats_end(&st, t0 + 1600000);
	ok(fabs(st.above - 1.0) < 1e-9, "1 s above threshold (got %g)",
	   st.above);
	ok(fabs(st.duration - 1.6) < 1e-9, "1.6 s long");
	is_int(st.samples, 4, "four samples");
	ok(st.max_cpu == 0.9, "peak 0.9");

	struct buf b = {0};
	summary_format(&b, &st, 3, "http://h:5000");
	is_str(b.p,
	       "test not recorded: 1.60 s, 1.00 s above 50% (62.5%), peak "
	       "90.0%, mean 52.5%, 4 samples, exit 3",
	       "the summary of a run the tracker never saw");

	const char *test =
	    "{\"id\":42,\"name\":\"x\",\"threshold\":0.8,\"active\":false,"
	    "\"duration\":12.5,\"time_above_threshold\":2.5,"
	    "\"samples\":25,\"max_cpu_usage\":0.973,"
	    "\"mean_cpu_usage\":0.412}";
	is_int(stats_from_test(&st, test, strlen(test)), 0,
	       "the tracker's test object is read");
	st.taken = 25; /* as many as the tracker counted */
	buf_reset(&b);
	summary_format(&b, &st, 0, "http://h:5000");
	is_str(b.p,
	       "test 42: 12.50 s, 2.50 s above 80% (20.0%), peak 97.3%, mean "
	       "41.2%, 25 samples, exit 0, http://h:5000/#/test/42",
	       "the summary: id, duration, above (and percent), peak, mean, "
	       "samples, exit status, the page's URL");
	buf_reset(&b);
	summary_format(&b, &st, -1, "http://h:5000");
	ok(strstr(b.p, "exit") == NULL, "no exit status for --no-command");
	st.taken = 24;
	buf_reset(&b);
	summary_format(&b, &st, 0, NULL);
	ok(strstr(b.p, "25 samples (the client took 24), exit 0") != NULL,
	   "a tracker count unlike the client's is shown (%s)", b.p);
	st.taken = 25;

	const char *empty = "{\"id\":7,\"threshold\":0.5,\"duration\":0,"
			    "\"time_above_threshold\":0,\"samples\":0,"
			    "\"max_cpu_usage\":null,\"mean_cpu_usage\":null}";
	is_int(stats_from_test(&st, empty, strlen(empty)), 0,
	       "a test with no samples (nulls) is read");
	st.taken = 0;
	buf_reset(&b);
	summary_format(&b, &st, 0, NULL);
	is_str(b.p,
	       "test 7: 0.00 s, 0.00 s above 50% (0.0%), peak -, mean -, 0 "
	       "samples, exit 0",
	       "no samples: no peak or mean");
	is_int(stats_from_test(&st, "{\"id\":1}", 8), -1,
	       "an object without the figures is refused");

	stats_init(&st, t0, 0.0);
	stats_add(&st, t0 - 100, 0.5);
	ok(st.above == 0.0, "a sample stamped before the start counts 0 s");
	buf_free(&b);
}

int
main(void)
{
	test_read();
	test_write();
	test_spool();
	test_summary();
	return done_testing();
}
