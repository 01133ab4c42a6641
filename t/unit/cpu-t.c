/*
 * The sampler's pure pieces: /proc/stat parsing, the busy fraction (htop's
 * arithmetic: saturating deltas, iowait as idle, a zero total) and stamps.
 */
#include "client.h"
#include "tap.h"

#include <math.h>
#include <string.h>

/* Parse s (a whole /proc/stat text); return stat_parse's result. */
static int
parse(const char *s, struct cpu_times *t)
{
	return stat_parse(s, strlen(s), t);
}

static int
near(double a, double b)
{
	return fabs(a - b) < 1e-12;
}

static void
test_parse(void)
{
	struct cpu_times t;
	const char *linux6 =
	    "cpu  4705 356 584 3699 23 23 0 7 11 2\n"
	    "cpu0 1393 280 290 1876 7 3 0 0 0 0\n"
	    "intr 114930548 113199788 3 0 5 263 0 4 [... 50 more]\n";
	is_int(parse(linux6, &t), 0, "a current kernel's /proc/stat parses");
	is_int(t.user, 4705, "user");
	is_int(t.nice, 356, "nice");
	is_int(t.system, 584, "system");
	is_int(t.idle, 3699, "idle");
	is_int(t.iowait, 23, "iowait");
	is_int(t.irq, 23, "irq");
	is_int(t.softirq, 0, "softirq");
	is_int(t.steal, 7, "steal; guest and guest_nice are not kept");

	memset(&t, 0xff, sizeof t);
	is_int(parse("cpu  100 2 30 400\ncpu0 100 2 30 400\n", &t), 0,
	       "a 2.4 kernel's four fields parse");
	ok(t.user == 100 && t.nice == 2 && t.system == 30 && t.idle == 400,
	   "the four fields are read");
	ok(t.iowait == 0 && t.irq == 0 && t.softirq == 0 && t.steal == 0,
	   "fields the old kernel lacks read as 0");

	is_int(parse("cpu  1 2 3 4 5 6 7\n", &t), 0,
	       "a 2.6.0 kernel's seven fields parse");
	is_int(t.softirq, 7, "softirq is the seventh");
	is_int(t.steal, 0, "steal, missing, is 0");

	is_int(parse("cpu  1 2 3 4 5 6 7 8", &t), 0,
	       "no newline at the end is fine");
	is_int(t.steal, 8, "steal is the eighth");

	is_int(parse("cpu  18446744073709551615 0 0 0", &t), 0,
	       "a counter at the top of uint64 parses");
	ok(t.user == UINT64_MAX, "and keeps its value");

	is_int(parse("cpu  1 2 3\n", &t), -1, "three fields are too few");
	is_int(parse("cpu0 1 2 3 4\n", &t), -1,
	       "a per-CPU line is not the aggregate");
	is_int(parse("intr 1 2 3 4\n", &t), -1, "another line is refused");
	is_int(parse("", &t), -1, "empty text is refused");
	is_int(parse("cpu  1 2 x 4\n", &t), -1, "a non-number field ends it");
	is_int(parse("cpu  1 2 3\n4 5 6\n", &t), -1,
	       "fields do not run on into the next line");
	is_int(stat_parse("cpu  1 2 3 4 5", 12, &t), 0,
	       "only len bytes are read");
	is_int(t.idle, 4, "the field cut by len is not there");
	is_int(t.iowait, 0, "(iowait beyond len)");
}

static void
test_fraction(void)
{
	struct cpu_times a = {.user = 100, .idle = 100};
	struct cpu_times b = {.user = 150, .idle = 150};
	ok(near(cpu_busy_fraction(&a, &b), 0.5), "half busy is 0.5");

	b = (struct cpu_times){.user = 120,
			       .nice = 10,
			       .system = 30,
			       .idle = 100,
			       .irq = 20,
			       .softirq = 10,
			       .steal = 10};
	ok(near(cpu_busy_fraction(&a, &b), 1.0),
	   "user, nice, system, irq, softirq and steal are all busy");

	b = (struct cpu_times){.user = 100, .idle = 150, .iowait = 50};
	ok(near(cpu_busy_fraction(&a, &b), 0.0), "idle and iowait are idle");

	b = (struct cpu_times){.user = 125, .idle = 150, .iowait = 25};
	ok(near(cpu_busy_fraction(&a, &b), 0.25),
	   "25 busy of 100 ticks is 0.25");

	ok(near(cpu_busy_fraction(&a, &a), 0.0), "no ticks (zero total) is 0");

	struct cpu_times z = {0};
	ok(near(cpu_busy_fraction(&z, &z), 0.0),
	   "all-zero readings are 0, not NaN");

	/* Counters stepping back: the kernel's iowait can go down. */
	struct cpu_times p = {.user = 100, .idle = 100, .iowait = 50};
	struct cpu_times q = {.user = 150, .idle = 160, .iowait = 40};
	ok(near(cpu_busy_fraction(&p, &q), 0.5),
	   "iowait stepping back: idle+iowait grew 50, busy 50 → 0.5");

	q = (struct cpu_times){.user = 90, .idle = 90, .iowait = 50};
	ok(near(cpu_busy_fraction(&p, &q), 0.0),
	   "the total stepping back saturates to 0");

	q = (struct cpu_times){
	    .user = 100, .system = 10, .idle = 200, .iowait = 0};
	double f = cpu_busy_fraction(&p, &q);
	ok(f >= 0.0 && f <= 1.0,
	   "idle growing faster than the total stays "
	   "within 0..1 (got %g)",
	   f);

	q = (struct cpu_times){.user = 1000, .idle = 0, .iowait = 0};
	ok(near(cpu_busy_fraction(&p, &q), 1.0),
	   "idle stepping back to 0 saturates: all busy");

	struct cpu_times big0 = {.user = UINT64_MAX / 16, .idle = 1};
	struct cpu_times big1 = {.user = UINT64_MAX / 16 + 3, .idle = 2};
	ok(near(cpu_busy_fraction(&big0, &big1), 0.75),
	   "huge counters still give exact deltas");
}

static void
test_stamps(void)
{
	is_int(stamp_next(1000, 1500, 400), 1500,
	       "the wall clock stamps the sample");
	is_int(stamp_next(1000, 900, 500), 1500,
	       "a wall clock stepped back: previous + monotonic time passed");
	is_int(stamp_next(1000, 1000, 0), 1001, "never the same stamp twice");
	is_int(stamp_next(1000, 0, -5), 1001, "at least one microsecond on");
}

static void
test_sampler(void)
{
	struct sampler s;
	struct sample x;
	int64_t start;
	is_int(sampler_open(&s, &start), 0, "/proc/stat opens");
	ok(start > 1600000000000000LL, "the start is a wall-clock time");
	int64_t prev = start;
	int sane = 1;
	for (int i = 0; i < 3; i++) {
		if (sampler_take(&s, &x) < 0 || !(x.stamp > prev) ||
		    !(x.cpu >= 0.0 && x.cpu <= 1.0) || !x.has_mem ||
		    !(x.mem > 0.0 && x.mem < 1.0))
			sane = 0;
		prev = x.stamp;
	}
	ok(sane, "samples from the live /proc/stat and /proc/meminfo: "
		 "increasing stamps, fractions within 0..1");
	sampler_close(&s);
	ok(mono_us() > 0, "the monotonic clock reads");
}

int
main(void)
{
	test_parse();
	test_fraction();
	test_stamps();
	test_sampler();
	return done_testing();
}
