/*
 * The run's figures and the one-line summary printed at the end. The
 * tracker's test object is the authority; the client keeps the same figures
 * itself (SPEC section 2 rules) for when the tracker never answered.
 */
#include "client.h"

#include <inttypes.h>

void
stats_init(struct run_stats *st, int64_t start_us, double threshold)
{
	*st = (struct run_stats){.start_us = start_us,
				 .end_us = start_us,
				 .threshold = threshold,
				 .last_us = start_us};
}

void
stats_add(struct run_stats *st, int64_t stamp, double cpu)
{
	/* A sample covers the time since the one before (or the start). */
	int64_t gap = stamp > st->last_us ? stamp - st->last_us : 0;
	if (cpu > st->threshold)
		st->above += (double)gap / 1e6;
	if (st->samples == 0 || cpu > st->max_cpu)
		st->max_cpu = cpu;
	st->sum_cpu += cpu;
	st->samples++;
	st->taken++;
	if (stamp > st->last_us)
		st->last_us = stamp;
}

void
stats_add_sample(struct run_stats *st, const struct sample *x)
{
	stats_add(st, x->stamp, x->cpu);
	if (!x->has_mem)
		return;
	if (!st->mem_known || x->mem > st->max_mem)
		st->max_mem = x->mem;
	st->mem_known = true;
}

void
stats_end(struct run_stats *st, int64_t end_us)
{
	st->end_us = end_us;
	st->duration = (double)(end_us - st->start_us) / 1e6;
}

int
stats_from_test(struct run_stats *st, const char *js, size_t len)
{
	struct json_value v;
	int64_t id, n;
	double duration, above, threshold, max = 0, mean = 0;
	if (jsonscan_get(js, len, "id", &v) || jsonscan_int64(&v, &id) ||
	    jsonscan_get(js, len, "duration", &v) ||
	    jsonscan_number(&v, &duration) ||
	    jsonscan_get(js, len, "time_above_threshold", &v) ||
	    jsonscan_number(&v, &above) ||
	    jsonscan_get(js, len, "threshold", &v) ||
	    jsonscan_number(&v, &threshold) ||
	    jsonscan_get(js, len, "samples", &v) || jsonscan_int64(&v, &n))
		return -1;
	/* null while the test has no samples */
	if (n > 0 && (jsonscan_get(js, len, "max_cpu_usage", &v) ||
		      jsonscan_number(&v, &max) ||
		      jsonscan_get(js, len, "mean_cpu_usage", &v) ||
		      jsonscan_number(&v, &mean)))
		return -1;
	st->test_id = id;
	st->duration = duration;
	st->above = above;
	st->threshold = threshold;
	st->samples = (long)n;
	st->max_cpu = max;
	st->sum_cpu = mean * (double)n;
	/* A tracker that keeps memory (SPEC 6.3) has the last word on it
	 * too; until then the client's own peak stands. */
	double mem;
	if (jsonscan_get(js, len, "max_mem_usage", &v) == 0 &&
	    jsonscan_number(&v, &mem) == 0 && mem >= 0 && mem <= 1) {
		st->max_mem = mem;
		st->mem_known = true;
	}
	return 0;
}

void
summary_format(struct buf *b, const struct run_stats *st, int exit_status,
	       const char *server)
{
	if (st->test_id > 0)
		buf_printf(b, "test %" PRId64 ": ", st->test_id);
	else
		buf_puts(b, "test not recorded: ");
	double pct = st->duration > 0 ? 100.0 * st->above / st->duration : 0;
	buf_printf(b, "%.2f s, %.2f s above %.4g%% (%.1f%%), ", st->duration,
		   st->above, 100.0 * st->threshold, pct);
	if (st->samples > 0)
		buf_printf(b, "peak %.1f%%, mean %.1f%%, ", 100.0 * st->max_cpu,
			   100.0 * st->sum_cpu / (double)st->samples);
	else
		buf_puts(b, "peak -, mean -, ");
	/* Left out when unknown: an old kernel, --no-command, a replay of
	 * an old spool file. */
	if (st->mem_known)
		buf_printf(b, "peak memory %.1f%%, ", 100.0 * st->max_mem);
	if (st->command.known)
		buf_printf(b,
			   "command %.2f s user + %.2f s system, max RSS %.1f "
			   "MiB, ",
			   st->command.user_cpu, st->command.system_cpu,
			   (double)st->command.max_rss_kib / 1024.0);
	buf_printf(b, "%ld sample%s", st->samples, st->samples == 1 ? "" : "s");
	if (st->taken > 0 && st->taken != st->samples)
		buf_printf(b, " (the client took %ld)", st->taken);
	if (exit_status >= 0)
		buf_printf(b, ", exit %d", exit_status);
	if (server && st->test_id > 0)
		buf_printf(b, ", %s/#/test/%" PRId64, server, st->test_id);
}
