/*
 * The run against its baseline (SPEC 6.4): the tracker's medians of the
 * caller's earlier runs of the same name and branch, asked for after the
 * stop; the one comparison line, and the gate of --fail-if-slower. Pure:
 * loop.c prints what comparison_make makes and step_summary.c writes it.
 */
#include "client.h"

#include <string.h>

/* A member of the baseline as a figure: absent or null is not known, a
 * number from 0 up is. Return 0, or -1 for anything else. */
static int
figure_get(const char *js, size_t len, const char *key,
	   struct baseline_figure *f)
{
	struct json_value v;
	*f = (struct baseline_figure){0};
	if (jsonscan_get(js, len, key, &v) < 0 || v.type == JSON_NULL)
		return 0;
	if (jsonscan_number(&v, &f->value) < 0 || f->value < 0)
		return -1;
	f->known = true;
	return 0;
}

int
baseline_parse(struct baseline *bl, const char *js, size_t len)
{
	struct json_value v;
	int64_t count;
	*bl = (struct baseline){0};
	if (jsonscan_get(js, len, "count", &v) || jsonscan_int64(&v, &count) ||
	    count < 0 || count > BASELINE_RUNS_MAX)
		return -1;
	bl->count = (long)count;
	if (figure_get(js, len, "duration", &bl->duration) ||
	    figure_get(js, len, "time_above_threshold", &bl->above) ||
	    figure_get(js, len, "max_mem_usage", &bl->max_mem) ||
	    figure_get(js, len, "user_cpu", &bl->user_cpu) ||
	    figure_get(js, len, "system_cpu", &bl->system_cpu) ||
	    figure_get(js, len, "max_rss", &bl->max_rss) ||
	    (bl->max_mem.known && bl->max_mem.value > 1))
		return -1;
	return 0;
}

/* How a figure is shown, as the summary line shows it. */
enum unit {
	SECONDS, /* "12.50 s" */
	PERCENT, /* "63.0%", of a value already times 100 */
	MIB,	 /* "48.4 MiB" */
};

/* One figure as the line shows it: the run's value and the baseline's
 * median, both already in unit. */
struct shown {
	char label[32];
	bool run_known;
	double run;
	struct baseline_figure median;
	enum unit unit;
};

/* The figures the line compares, in its order; return how many. */
static size_t
shown_figures(struct shown *f, const struct run_stats *st,
	      const struct baseline *bl)
{
	const struct command_usage *c = &st->command;
	struct baseline_figure cpu = {
	    bl->user_cpu.known && bl->system_cpu.known,
	    bl->user_cpu.value + bl->system_cpu.value};
	struct baseline_figure mem = {bl->max_mem.known,
				      100.0 * bl->max_mem.value};
	struct baseline_figure rss = {bl->max_rss.known,
				      bl->max_rss.value / 1024.0};
	size_t n = 0;
	f[n++] = (struct shown){"duration", true, st->duration, bl->duration,
				SECONDS};
	f[n] = (struct shown){"", true, st->above, bl->above, SECONDS};
	snprintf(f[n++].label, sizeof f->label, "above %.4g%%",
		 100.0 * st->threshold);
	f[n++] = (struct shown){"peak memory", st->mem_known,
				100.0 * st->max_mem, mem, PERCENT};
	f[n++] = (struct shown){"command CPU", c->known,
				c->user_cpu + c->system_cpu, cpu, SECONDS};
	f[n++] = (struct shown){"max RSS", c->known,
				(double)c->max_rss_kib / 1024.0, rss, MIB};
	return n;
}

/* Append value in unit. */
static void
value_add(struct buf *b, enum unit unit, double value)
{
	switch (unit) {
	case SECONDS:
		buf_printf(b, "%.2f s", value);
		break;
	case PERCENT:
		buf_printf(b, "%.1f%%", value);
		break;
	case MIB:
		buf_printf(b, "%.1f MiB", value);
		break;
	}
}

/* Append how run compares with median: " (+8.2%)", or " (median 0)"
 * when there is no percentage of it. */
static void
change_add(struct buf *b, double run, double median)
{
	if (median > 0)
		buf_printf(b, " (%+.1f%%)", 100.0 * (run - median) / median);
	else
		buf_puts(b, " (median 0)");
}

/* The plural ending for n of something. */
static const char *
plural(long n)
{
	return n == 1 ? "" : "s";
}

/* Append " (branch NAME)" or " (no branch tag)", NAME made printable. */
static void
branch_add(struct buf *b, const char *branch)
{
	if (!branch) {
		buf_puts(b, " (no branch tag)");
		return;
	}
	buf_puts(b, " (branch ");
	printable_add(b, branch, strlen(branch));
	buf_puts(b, ")");
}

/* The line of a baseline of enough runs: each figure both have. */
static void
line_compare(struct buf *b, const struct run_stats *st,
	     const struct baseline *bl, const char *branch)
{
	struct shown f[8];
	size_t n = shown_figures(f, st, bl);
	buf_printf(b, "against %ld earlier run%s", bl->count,
		   plural(bl->count));
	branch_add(b, branch);
	buf_puts(b, ":");
	const char *sep = " ";
	for (size_t i = 0; i < n; i++) {
		if (!f[i].run_known || !f[i].median.known)
			continue;
		buf_printf(b, "%s%s ", sep, f[i].label);
		value_add(b, f[i].unit, f[i].run);
		change_add(b, f[i].run, f[i].median.value);
		sep = ", ";
	}
}

/* The line of a baseline of too few runs. */
static void
line_too_few(struct buf *b, const struct baseline *bl, const char *branch)
{
	if (bl->count == 0)
		buf_puts(b, "no earlier runs");
	else
		buf_printf(b, "only %ld earlier run%s", bl->count,
			   plural(bl->count));
	branch_add(b, branch);
	buf_printf(b, "; %d are needed to compare", BASELINE_MIN_RUNS);
}

/* Whether run exceeds median by more than pct percent; only a median
 * above 0 can be (no percentage of 0 means anything). */
static bool
exceeds(double run, double median, double pct)
{
	return median > 0 && run * 100.0 > median * (100.0 + pct);
}

/* Judge the run on its duration and time above the threshold (the two
 * figures of SPEC 6.4's gate), saying why in c->why after its start. */
static void
gate_judge(struct comparison *c, const struct run_stats *st,
	   const struct baseline *bl, double pct)
{
	struct shown f[8];
	shown_figures(f, st, bl);
	struct buf over = {0};
	bool judged = false;
	for (size_t i = 0; i < 2; i++) { /* duration, above */
		if (!f[i].median.known || f[i].median.value <= 0)
			continue;
		judged = true;
		if (!exceeds(f[i].run, f[i].median.value, pct))
			continue;
		buf_printf(&over, "%s%s ", over.len ? ", " : "", f[i].label);
		value_add(&over, f[i].unit, f[i].run);
		buf_printf(&over, " is %.1f%% over the median ",
			   100.0 * (f[i].run - f[i].median.value) /
			       f[i].median.value);
		value_add(&over, f[i].unit, f[i].median.value);
	}
	if (!judged) {
		c->verdict = GATE_UNJUDGED;
		buf_puts(&c->why,
			 "could not judge the run: the baseline has no "
			 "duration or time above the threshold above "
			 "0; the exit status is the command's");
	} else if (over.len) {
		c->verdict = GATE_SLOWER;
		buf_printf(&c->why,
			   "slower than the median of %ld earlier run%s: %s; "
			   "exit %d",
			   bl->count, plural(bl->count), over.p, EXIT_SLOWER);
	} else {
		c->verdict = GATE_PASSED;
		buf_printf(&c->why,
			   "within %g%% of the median of %ld earlier run%s",
			   pct, bl->count, plural(bl->count));
	}
	buf_free(&over);
}

void
comparison_make(struct comparison *c, const struct run_stats *st,
		int exit_status, const char *js, size_t len,
		const char *no_baseline, const char *branch, double pct)
{
	struct baseline bl;
	bool have = js && baseline_parse(&bl, js, len) == 0;
	*c = (struct comparison){.verdict = GATE_OFF};
	buf_add(&c->line, "", 0);
	buf_add(&c->why, "", 0);
	if (have && bl.count >= BASELINE_MIN_RUNS) {
		c->compared = true;
		line_compare(&c->line, st, &bl, branch);
	} else if (have) {
		line_too_few(&c->line, &bl, branch);
	}
	/* A failing command keeps its own status: nothing to judge. */
	if (pct <= 0 || exit_status != 0)
		return;
	buf_printf(&c->why, "--fail-if-slower %g%%: ", pct);
	if (c->compared) {
		gate_judge(c, st, &bl, pct);
		return;
	}
	c->verdict = GATE_UNJUDGED;
	buf_puts(&c->why, "could not judge the run: ");
	if (have)
		buf_printf(&c->why, "%ld earlier run%s, %d are needed",
			   bl.count, plural(bl.count), BASELINE_MIN_RUNS);
	else if (js)
		buf_puts(&c->why, "the tracker's baseline is unreadable");
	else
		buf_puts(&c->why, no_baseline ? no_baseline : "no baseline");
	buf_puts(&c->why, "; the exit status is the command's");
}

void
comparison_free(struct comparison *c)
{
	buf_free(&c->line);
	buf_free(&c->why);
}
