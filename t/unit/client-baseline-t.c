/*
 * Unit tests of the client's side of SPEC 6.4: the tracker's baseline
 * read, the comparison line (percent math, figures either side lacks, a
 * zero median, baselines too small), the gate of --fail-if-slower (exactly
 * at PCT and just past it, a failing command, no baseline), the step
 * summary's paragraph and the two options' limits.
 */
#include "client.h"

#include <stdlib.h>
#include <string.h>

#include "tap.h"

/* A baseline answer of count runs with these medians (NULL: null). */
static char *
answer(long count, const char *duration, const char *above, const char *mem,
       const char *user, const char *system, const char *rss)
{
	struct buf b = {0};
	buf_printf(&b,
		   "{\"id\":99,\"runs\":[],\"count\":%ld,\"duration\":%s,"
		   "\"time_above_threshold\":%s,\"max_cpu_usage\":0.9,"
		   "\"mean_cpu_usage\":0.4,\"max_mem_usage\":%s,"
		   "\"user_cpu\":%s,\"system_cpu\":%s,\"max_rss\":%s}",
		   count, duration ? duration : "null", above ? above : "null",
		   mem ? mem : "null", user ? user : "null",
		   system ? system : "null", rss ? rss : "null");
	return b.p;
}

/* A run of duration d and above seconds above 50%, with memory and the
 * command's figures. */
static struct run_stats
run_of(double d, double above)
{
	struct run_stats st;
	stats_init(&st, 0, 0.5);
	st.duration = d;
	st.above = above;
	st.mem_known = true;
	st.max_mem = 0.71;
	st.command = (struct command_usage){.known = true,
					    .user_cpu = 100,
					    .system_cpu = 26,
					    .max_rss_kib = 51200};
	return st;
}

/* comparison_make of st against js, branch "main", gate pct, status 0. */
static struct comparison
compare_js(const struct run_stats *st, const char *js, double pct)
{
	struct comparison c;
	comparison_make(&c, st, 0, js, js ? strlen(js) : 0, "no answer", "main",
			pct);
	return c;
}

/* The line of st against js, no gate, checked against want. */
static void
line_is(const struct run_stats *st, const char *js, const char *want,
	const char *name)
{
	struct comparison c = compare_js(st, js, 0);
	is_str(c.line.p, want, "%s", name);
	comparison_free(&c);
}

static void
test_parse(void)
{
	struct baseline bl;
	char *js = answer(10, "62", "40.5", "0.5", "100", "20", "49152");
	is_int(baseline_parse(&bl, js, strlen(js)), 0, "a full baseline");
	ok(bl.count == 10 && bl.duration.known && bl.duration.value == 62 &&
	       bl.above.value == 40.5 && bl.max_mem.value == 0.5 &&
	       bl.user_cpu.value == 100 && bl.system_cpu.value == 20 &&
	       bl.max_rss.value == 49152,
	   "... every median read");
	free(js);

	js = answer(0, NULL, NULL, NULL, NULL, NULL, NULL);
	is_int(baseline_parse(&bl, js, strlen(js)), 0, "no earlier runs");
	ok(bl.count == 0 && !bl.duration.known && !bl.above.known &&
	       !bl.max_mem.known && !bl.max_rss.known,
	   "... nulls are not known");
	free(js);

	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"count\":\"3\"}",
	    "{\"count\":-1}",
	    "{\"count\":101}",
	    "{\"count\":2.5}",
	    "{\"count\":3,\"duration\":\"62\"}",
	    "{\"count\":3,\"duration\":-1}",
	    "{\"count\":3,\"duration\":[1]}",
	    "{\"count\":3,\"max_mem_usage\":1.5}",
	    "{\"count\":3,\"duration\":1e999}",
	    "{\"count\":3,",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		is_int(baseline_parse(&bl, bad[i], strlen(bad[i])), -1,
		       "refused: %s", bad[i]);
	/* Members the client does not know of are the tracker's business. */
	const char *more = "{\"count\":3,\"duration\":1,\"new\":{\"a\":[]}}";
	is_int(baseline_parse(&bl, more, strlen(more)), 0,
	       "an unknown member is fine");

	/* As much as the client takes of an answer (1 MiB), from a hostile
	 * tracker: 349 000 empty arrays, then too deep. */
	struct buf big = {0};
	buf_puts(&big, "{\"x\":[");
	for (int i = 0; i < 349000; i++)
		buf_puts(&big, i ? ",[]" : "[]");
	buf_puts(&big, "],\"count\":4,\"duration\":2}");
	is_int(baseline_parse(&bl, big.p, big.len), 0,
	       "1 MiB of empty arrays before it: read");
	ok(bl.count == 4 && bl.duration.value == 2, "... the figures after");
	buf_reset(&big);
	buf_puts(&big, "{\"count\":3,\"x\":");
	for (int i = 0; i < 1000; i++)
		buf_puts(&big, "[");
	for (int i = 0; i < 1000; i++)
		buf_puts(&big, "]");
	buf_puts(&big, "}");
	is_int(baseline_parse(&bl, big.p, big.len), -1,
	       "1000 arrays deep: refused");
	buf_free(&big);
}

static void
test_line(void)
{
	struct run_stats st = run_of(67.084, 41.76);
	char *js = answer(10, "62", "40.5", "0.725", "100", "20", "40960");
	struct comparison c = compare_js(&st, js, 0);
	is_str(c.line.p,
	       "against 10 earlier runs (branch main): duration 67.08 s "
	       "(+8.2%), above 50% 41.76 s (+3.1%), peak memory 71.0% "
	       "(-2.1%), command CPU 126.00 s (+5.0%), max RSS 50.0 MiB "
	       "(+25.0%)",
	       "the line: each figure and its change against the median");
	ok(c.compared, "compared");
	is_int(c.verdict, GATE_OFF, "no gate asked for");
	is_str(c.why.p, "", "nothing for the gate to say");
	comparison_free(&c);
	free(js);

	/* What either side lacks is left out. */
	st.mem_known = false;
	js = answer(3, "62", "40.5", "0.725", "100", NULL, NULL);
	line_is(&st, js,
		"against 3 earlier runs (branch main): duration 67.08 s "
		"(+8.2%), above 50% 41.76 s (+3.1%)",
		"no memory in the run, no system CPU or RSS in the baseline");

	st.command.known = false;
	st.mem_known = true;
	c = compare_js(&st, js, 0);
	ok(strstr(c.line.p, "peak memory") && !strstr(c.line.p, "command"),
	   "--no-command: no command CPU");
	comparison_free(&c);
	free(js);

	/* A median of 0 has no percentage. */
	st = run_of(2, 0.5);
	js = answer(4, "2", "0", NULL, NULL, NULL, NULL);
	line_is(&st, js,
		"against 4 earlier runs (branch main): duration 2.00 s "
		"(+0.0%), above 50% 0.50 s (median 0)",
		"a zero median: the value, and no percentage");
	free(js);

	/* Not on a branch; a branch that would drive a terminal. */
	js = answer(3, "2", "1", NULL, NULL, NULL, NULL);
	comparison_make(&c, &st, 0, js, strlen(js), NULL, NULL, 0);
	ok(!strncmp(c.line.p, "against 3 earlier runs (no branch tag): ", 40),
	   "no branch: said so");
	comparison_free(&c);
	comparison_make(&c, &st, 0, js, strlen(js), NULL, "x\033[2Jy\n", 0);
	ok(!strncmp(c.line.p, "against 3 earlier runs (branch x\\x1b[2Jy\\x0a)",
		    45),
	   "a branch's control characters are escaped: %s", c.line.p);
	comparison_free(&c);
	free(js);
}

static void
test_too_few(void)
{
	struct run_stats st = run_of(10, 5);
	const long counts[] = {0, 1, 2};
	const char *want[] = {
	    "no earlier runs (branch main); 3 are needed to compare",
	    "only 1 earlier run (branch main); 3 are needed to compare",
	    "only 2 earlier runs (branch main); 3 are needed to compare"};
	for (int i = 0; i < 3; i++) {
		char *js = answer(counts[i], i ? "10" : NULL, i ? "5" : NULL,
				  NULL, NULL, NULL, NULL);
		struct comparison c = compare_js(&st, js, 20);
		is_str(c.line.p, want[i], "%ld earlier runs: said so",
		       counts[i]);
		ok(!c.compared, "... not compared");
		is_int(c.verdict, GATE_UNJUDGED, "... the gate cannot judge");
		ok(strstr(c.why.p, "could not judge") &&
		       strstr(c.why.p, "exit status is the command's"),
		   "... and says so: %s", c.why.p);
		comparison_free(&c);
		free(js);
	}
}

/* The gate's verdict for a run of d seconds (above: a) against medians
 * of 10 s and 5 s at pct, the command ending with status. */
static enum gate_verdict
verdict(double d, double a, double pct, int status)
{
	struct run_stats st = run_of(d, a);
	char *js = answer(5, "10", "5", NULL, NULL, NULL, NULL);
	struct comparison c;
	comparison_make(&c, &st, status, js, strlen(js), NULL, "main", pct);
	enum gate_verdict v = c.verdict;
	comparison_free(&c);
	free(js);
	return v;
}

static void
test_gate(void)
{
	is_int(verdict(12, 5, 20, 0), GATE_PASSED,
	       "duration exactly 20%% over, at 20: passes");
	is_int(verdict(12.001, 5, 20, 0), GATE_SLOWER,
	       "just past 20%%: slower");
	is_int(verdict(10, 6, 20, 0), GATE_PASSED,
	       "above the threshold exactly 20%% over: passes");
	is_int(verdict(10, 6.001, 20, 0), GATE_SLOWER, "just past it: slower");
	is_int(verdict(11.5, 5.9, 12.5, 0), GATE_SLOWER,
	       "a fraction of a percent: 15%% over at 12.5");
	is_int(verdict(8, 2, 1, 0), GATE_PASSED, "faster: passes");
	is_int(verdict(30, 30, 20, 1), GATE_OFF,
	       "a failing command: no verdict (it keeps its status)");
	is_int(verdict(30, 30, 20, 137), GATE_OFF, "killed: the same");
	is_int(verdict(30, 30, 0, 0), GATE_OFF, "no --fail-if-slower: none");

	struct run_stats st = run_of(13, 7.5);
	char *js = answer(5, "10", "5", NULL, NULL, NULL, NULL);
	struct comparison c = compare_js(&st, js, 20);
	is_str(c.why.p,
	       "--fail-if-slower 20%: slower than the median of 5 earlier "
	       "runs: duration 13.00 s is 30.0% over the median 10.00 s, "
	       "above 50% 7.50 s is 50.0% over the median 5.00 s; exit 122",
	       "why it is slower: both figures");
	comparison_free(&c);
	st = run_of(10, 5);
	c = compare_js(&st, js, 7.5);
	is_str(c.why.p,
	       "--fail-if-slower 7.5%: within 7.5% of the median of 5 "
	       "earlier runs",
	       "within: said so");
	comparison_free(&c);
	free(js);

	/* A zero median is not judged; the other figure still is. */
	js = answer(5, "10", "0", NULL, NULL, NULL, NULL);
	st = run_of(10, 3);
	c = compare_js(&st, js, 20);
	is_int(c.verdict, GATE_PASSED,
	       "time above 0 s of a median 0: not judged, the duration is");
	comparison_free(&c);
	free(js);
	js = answer(5, "0", "0", NULL, NULL, NULL, NULL);
	c = compare_js(&st, js, 20);
	is_int(c.verdict, GATE_UNJUDGED, "both medians 0: cannot judge");
	comparison_free(&c);
	free(js);

	/* No baseline at all. */
	c = compare_js(&st, NULL, 20);
	is_int(c.verdict, GATE_UNJUDGED, "no answer: cannot judge");
	is_str(c.line.p, "", "... and no line");
	is_str(c.why.p,
	       "--fail-if-slower 20%: could not judge the run: no answer; the "
	       "exit status is the command's",
	       "... saying why");
	comparison_free(&c);
	c = compare_js(&st, "{\"count\":\"x\"}", 20);
	ok(c.verdict == GATE_UNJUDGED && strstr(c.why.p, "unreadable"),
	   "an unreadable answer: cannot judge, said so");
	comparison_free(&c);
}

static void
test_step_summary(void)
{
	struct run_stats st = run_of(13, 7.5);
	st.test_id = 7;
	char *js = answer(5, "10", "5", NULL, NULL, NULL, NULL);
	struct comparison c = compare_js(&st, js, 20);
	struct buf b = {0};
	step_summary_format(&b, &st, "bench", 0, "http://h", &c);
	const char *row = strstr(b.p, "| 0 |\n");
	ok(row != NULL, "the table's row");
	is_str(row ? row + 6 : NULL,
	       "\nThis run against 5 earlier runs (branch main)\\: "
	       "duration 13.00 s (+30.0%), above 50% 7.50 s (+50.0%)\n"
	       "\n**--fail-if-slower 20%\\: slower than the median "
	       "of 5 earlier runs\\: duration 13.00 s is 30.0% over "
	       "the median 10.00 s, above 50% 7.50 s is 50.0% "
	       "over the median 5.00 s; exit 122**\n",
	       "then the comparison and the verdict, paragraphs of their own");
	comparison_free(&c);
	free(js);

	js = answer(2, "10", "5", NULL, NULL, NULL, NULL);
	comparison_make(&c, &st, 0, js, strlen(js), NULL, "main", 0);
	buf_reset(&b);
	step_summary_format(&b, &st, "bench", 0, "http://h", &c);
	ok(strlen(b.p) > 6 && !strcmp(b.p + strlen(b.p) - 6, "| 0 |\n"),
	   "too few runs and no gate: the table alone");
	comparison_free(&c);
	free(js);
	buf_free(&b);
}

static void
test_options(void)
{
	double d = 0;
	int n = 0;
	is_int(parse_fail_if_slower("20", &d), 0, "20");
	ok(d == 20, "... is 20");
	is_int(parse_fail_if_slower("12.5%", &d), 0, "12.5%%");
	ok(d == 12.5, "... is 12.5");
	is_int(parse_fail_if_slower("10000", &d), 0, "the largest");
	static const char *const bad_pct[] = {
	    "0", "-5", "0%",   "10000.5", "1e999",  "nan", "inf",
	    "",	 "%",  "20 %", " 20",	  "twenty", "20%%"};
	for (size_t i = 0; i < sizeof bad_pct / sizeof bad_pct[0]; i++)
		is_int(parse_fail_if_slower(bad_pct[i], &d), -1,
		       "--fail-if-slower '%s' refused", bad_pct[i]);
	char huge[100];
	memset(huge, '9', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	is_int(parse_fail_if_slower(huge, &d), -1, "99 digits refused");

	is_int(parse_baseline_runs("3", &n), 0, "3 runs");
	is_int(parse_baseline_runs("100", &n), 0, "100 runs");
	ok(n == 100, "... is 100");
	static const char *const bad_runs[] = {
	    "2", "101", "0", "-3", "10.5", "1e9", "1e999", "", "ten"};
	for (size_t i = 0; i < sizeof bad_runs / sizeof bad_runs[0]; i++)
		is_int(parse_baseline_runs(bad_runs[i], &n), -1,
		       "--baseline-runs '%s' refused", bad_runs[i]);
}

int
main(void)
{
	test_parse();
	test_line();
	test_too_few();
	test_gate();
	test_step_summary();
	test_options();
	return done_testing();
}
