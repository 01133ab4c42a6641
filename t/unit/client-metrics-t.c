/*
 * Unit tests of the client's pieces of SPEC 6.3 beyond tags: the
 * /proc/meminfo parser, the run's figures and summary line with memory and
 * the command's resources, the spool file with and without them, the step
 * summary's Markdown, and wait4's accounting of a process tree.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

/* /proc/meminfo as this machine (Linux 6.18, 24 GiB) gave it. */
static const char MEMINFO_HERE[] = "MemTotal:       24683756 kB\n"
				   "MemFree:        22188880 kB\n"
				   "MemAvailable:   23473740 kB\n"
				   "Buffers:           17968 kB\n"
				   "Cached:          1479308 kB\n"
				   "SwapCached:            0 kB\n"
				   "Active:           545176 kB\n"
				   "Inactive:        1554664 kB\n"
				   "SwapTotal:             0 kB\n"
				   "SwapFree:              0 kB\n"
				   "Dirty:             94952 kB\n"
				   "VmallocTotal:   34359738367 kB\n"
				   "HugePages_Total:       0\n"
				   "Hugepagesize:       2048 kB\n"
				   "DirectMap2M:    25137152 kB\n";

/* As Linux 3.10 (RHEL 7's first kernels) gave it: no MemAvailable. */
static const char MEMINFO_OLD[] = "MemTotal:        1016232 kB\n"
				  "MemFree:          100784 kB\n"
				  "Buffers:           70892 kB\n"
				  "Cached:           503856 kB\n"
				  "SwapCached:            0 kB\n";

/* meminfo_usage of text: 0 and *u, or -1. */
static int
usage_of(const char *text, double *u)
{
	struct meminfo mi;
	meminfo_parse(text, strlen(text), &mi);
	return meminfo_usage(&mi, u);
}

static void
test_meminfo(void)
{
	struct meminfo mi;
	double u = -1;
	meminfo_parse(MEMINFO_HERE, strlen(MEMINFO_HERE), &mi);
	ok(mi.has_total && mi.total_kib == 24683756 && mi.has_available &&
	       mi.available_kib == 23473740,
	   "this machine's meminfo: MemTotal and MemAvailable");
	is_int(meminfo_usage(&mi, &u), 0, "memory in use is known");
	ok(fabs(u - (1.0 - 23473740.0 / 24683756.0)) < 1e-12,
	   "1 - MemAvailable/MemTotal (%.6f)", u);

	u = 42;
	is_int(usage_of(MEMINFO_OLD, &u), -1,
	       "no MemAvailable (before Linux 3.14): unknown, not a guess");
	ok(u == 42, "and nothing is written");
	is_int(usage_of("MemFree: 5 kB\nMemAvailable: 5 kB\n", &u), -1,
	       "no MemTotal: unknown");
	is_int(usage_of("MemTotal: 0 kB\nMemAvailable: 0 kB\n", &u), -1,
	       "MemTotal 0: unknown, no division by zero");
	is_int(usage_of("MemTotal: 100 kB\nMemAvailable: 101 kB\n", &u), -1,
	       "more available than there is: unknown");
	is_int(usage_of("MemTotal: 100 kB\nMemAvailable: 100 kB\n", &u), 0,
	       "all of it available");
	ok(u == 0.0, "is 0 in use");
	is_int(usage_of("MemTotal: 100 kB\nMemAvailable: 0 kB\n", &u), 0,
	       "none of it available");
	ok(u == 1.0, "is all in use");
	is_int(usage_of("MemAvailable: 25 kB\nMemTotal: 100 kB\n", &u), 0,
	       "the lines in any order");
	ok(u == 0.75, "0.75");
	is_int(usage_of("MemTotal: 100 kB\nMemAvailable: 25 kB\n"
			"MemAvailable: 99 kB\n",
			&u),
	       0, "a repeated line");
	ok(u == 0.75, "the first one counts");

	const char *garbage[] = {
	    "MemTotal: abc kB\nMemAvailable: 5 kB\n",
	    "MemTotal: 100\nMemAvailable: 5 kB\n",
	    "MemTotal: 100 MB\nMemAvailable: 5 kB\n",
	    "MemTotal: 12x4 kB\nMemAvailable: 5 kB\n",
	    "MemTotal: 100 kB\nMemAvailable: -5 kB\n",
	    "MemTotal: 100 kB\nMemAvailable: 5.5 kB\n",
	    "MemTotal: 100 kB\nMemAvailable:  kB\n",
	    "MemTotal: 100 kB trailing\nMemAvailable: 5 kB\n",
	    " MemTotal: 100 kB\nMemAvailable: 5 kB\n",
	    "memtotal: 100 kB\nMemAvailable: 5 kB\n",
	    "MemTotalish: 100 kB\nMemAvailable: 5 kB\n",
	    "MemTotal: 100 kB\nMemAvailable: 5 kB", /* cut: no newline */
	    "",
	    "\n\n\n",
	};
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
		is_int(usage_of(garbage[i], &u), -1,
		       "garbage %zu: unknown, never a made-up figure", i);

	/* Huge numbers: up to 2^64 - 1 kB is a number; past it, garbage. */
	is_int(usage_of("MemTotal: 18446744073709551615 kB\n"
			"MemAvailable: 9223372036854775807 kB\n",
			&u),
	       0, "2^64 - 1 kB reads");
	ok(fabs(u - 0.5) < 1e-9, "and divides (%.6f)", u);
	is_int(usage_of("MemTotal: 18446744073709551616 kB\n"
			"MemAvailable: 5 kB\n",
			&u),
	       -1, "2^64 kB overflows: unknown");
	is_int(usage_of("MemTotal: 99999999999999999999999 kB\n"
			"MemAvailable: 5 kB\n",
			&u),
	       -1, "23 digits: unknown");
	char big[8192];
	size_t n = (size_t)snprintf(big, sizeof big, "MemTotal: 100 kB\n");
	memset(big + n, 'x', sizeof big - n - 1);
	big[sizeof big - 1] = '\0';
	is_int(usage_of(big, &u), -1, "8 KiB of one unending line after it");

	/* The live file, through the reader the sampler uses. */
	int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	u = -1;
	bool live = fd >= 0 && meminfo_read(fd, &mi) == 0 &&
		    meminfo_usage(&mi, &u) == 0 && u > 0 && u < 1;
	ok(live, "the live /proc/meminfo reads: %.3f in use", u);
	ok(fd >= 0 && meminfo_read(fd, &mi) == 0 && mi.has_available,
	   "and reads again from the same fd (pread)");
	if (fd >= 0)
		close(fd);
	ok(meminfo_read(-1, &mi) == -1 && errno == EBADF,
	   "a bad fd is an error, with errno");
}

/* A sample at t0 + ms milliseconds; mem < 0: without memory. */
static struct sample
at(int64_t t0, int ms, double cpu, double mem)
{
	return (struct sample){.stamp = t0 + ms * 1000LL,
			       .cpu = cpu,
			       .mem = mem >= 0 ? mem : 0,
			       .has_mem = mem >= 0};
}

static void
test_summary(void)
{
	struct run_stats st;
	int64_t t0 = 1714564800000000LL;
	stats_init(&st, t0, 0.5);
	struct sample xs[] = {at(t0, 500, 0.9, 0.30), at(t0, 1000, 0.5, -1),
			      at(t0, 1500, 0.6, 0.61), at(t0, 1600, 0.1, 0.5)};
	for (size_t i = 0; i < 4; i++)
		stats_add_sample(&st, &xs[i]);
	stats_end(&st, t0 + 1600000);
	ok(st.mem_known && st.max_mem == 0.61,
	   "peak memory over the samples that have it: 0.61");
	ok(fabs(st.above - 1.0) < 1e-9 && st.samples == 4,
	   "CPU figures as stats_add counts them");
	st.command = (struct command_usage){.known = true,
					    .user_cpu = 1.254,
					    .system_cpu = 0.5,
					    .max_rss_kib = 50000};
	struct buf b = {0};
	summary_format(&b, &st, 0, "http://h:5000");
	is_str(b.p,
	       "test not recorded: 1.60 s, 1.00 s above 50% (62.5%), peak "
	       "90.0%, mean 52.5%, peak memory 61.0%, command 1.25 s user + "
	       "0.50 s system, max RSS 48.8 MiB, 4 samples, exit 0",
	       "the summary: peak memory, the command's CPU and max RSS");

	const char *test = "{\"id\":42,\"threshold\":0.5,\"duration\":1.6,"
			   "\"time_above_threshold\":1,\"samples\":4,"
			   "\"max_cpu_usage\":0.9,\"mean_cpu_usage\":0.525,"
			   "\"max_mem_usage\":0.7}";
	is_int(stats_from_test(&st, test, strlen(test)), 0,
	       "a test object with max_mem_usage");
	ok(st.max_mem == 0.7, "the tracker's peak memory wins");
	const char *v1 = "{\"id\":42,\"threshold\":0.5,\"duration\":1.6,"
			 "\"time_above_threshold\":1,\"samples\":4,"
			 "\"max_cpu_usage\":0.9,\"mean_cpu_usage\":0.525,"
			 "\"max_mem_usage\":null}";
	is_int(stats_from_test(&st, v1, strlen(v1)), 0,
	       "one whose max_mem_usage is null");
	ok(st.mem_known && st.max_mem == 0.7, "keeps the client's");

	stats_init(&st, t0, 0.5);
	struct sample none = at(t0, 500, 0.2, -1);
	stats_add_sample(&st, &none);
	stats_end(&st, t0 + 500000);
	buf_reset(&b);
	summary_format(&b, &st, -1, NULL);
	is_str(b.p,
	       "test not recorded: 0.50 s, 0.00 s above 50% (0.0%), peak "
	       "20.0%, mean 20.0%, 1 sample",
	       "no memory known, no command: neither is shown");
	buf_free(&b);
}

static void
test_spool(void)
{
	int64_t t0 = 1714564800000000LL;
	struct sample xs[] = {at(t0, 500, 0.25, 0.5), at(t0, 1000, 1.0, -1)};
	struct spool sp = {.server = "http://127.0.0.1:5000",
			   .name = "make",
			   .description = "",
			   .threshold = 0.5,
			   .start_us = t0,
			   .end_us = t0 + 1000000,
			   .exit_status = 0,
			   .command = {.known = true,
				       .user_cpu = 1.5,
				       .system_cpu = 0.25,
				       .max_rss_kib = 51200},
			   .samples = xs,
			   .n = 2};
	struct buf b = {0};
	spool_format(&b, &sp);
	ok(strstr(b.p, "\"mem_usage\":0.500000}\n") != NULL,
	   "a sample's memory is spooled");
	ok(strstr(b.p, "\"user_cpu\":1.500000,\"system_cpu\":0.250000,"
		       "\"max_rss\":51200}\n") != NULL,
	   "the command's resources are in the header");
	struct spool back;
	char err[128];
	is_int(spool_parse(&back, b.p, b.len, err, sizeof err), 0,
	       "and it parses back");
	ok(back.n == 2 && back.samples[0].has_mem &&
	       back.samples[0].mem == 0.5 && !back.samples[1].has_mem,
	   "memory where it was, none where it was not");
	ok(back.command.known && back.command.user_cpu == 1.5 &&
	       back.command.system_cpu == 0.25 &&
	       back.command.max_rss_kib == 51200,
	   "the command's resources");
	spool_free(&back);

	/* A file from before SPEC 6.3 still replays. */
	const char *old =
	    "{\"grasshopper_spool\":1,\"server\":\"http://127.0.0.1:5000\","
	    "\"test_id\":null,\"name\":\"make\",\"description\":\"\","
	    "\"threshold\":0.5,\"start_time\":\"2024-05-01T12:00:00Z\","
	    "\"end_time\":\"2024-05-01T12:00:01Z\",\"stopped\":false,"
	    "\"exit_status\":0}\n"
	    "{\"timestamp\":\"2024-05-01T12:00:00.5Z\",\"cpu_usage\":0.25}\n";
	is_int(spool_parse(&back, old, strlen(old), err, sizeof err), 0,
	       "an old spool file parses");
	ok(back.n == 1 && !back.samples[0].has_mem && !back.command.known,
	   "without memory or the command's resources");
	spool_free(&back);

	const char *bad_header[] = {
	    "\"user_cpu\":-1,\"system_cpu\":0,\"max_rss\":0}\n",
	    "\"user_cpu\":1,\"system_cpu\":\"0\",\"max_rss\":0}\n",
	    "\"user_cpu\":1,\"system_cpu\":0,\"max_rss\":-1}\n",
	    "\"user_cpu\":1,\"system_cpu\":0,\"max_rss\":1.5}\n",
	    "\"user_cpu\":1}\n",
	    "\"user_cpu\":1e999,\"system_cpu\":0,\"max_rss\":0}\n",
	};
	for (size_t i = 0; i < sizeof bad_header / sizeof bad_header[0]; i++) {
		struct buf h = {0};
		/* the old header without its closing brace, then the case */
		const char *nl = strchr(old, '\n');
		buf_add(&h, old, (size_t)(nl - old) - 1);
		buf_printf(&h, ",%s", bad_header[i]);
		ok(spool_parse(&back, h.p, h.len, err, sizeof err) < 0 &&
		       strstr(err, "line 1"),
		   "a bad header is refused: %.*s",
		   (int)strcspn(bad_header[i], "\n"), bad_header[i]);
		spool_free(&back);
		buf_free(&h);
	}
	const char *bad_mem[] = {"1.5", "-0.1", "\"0.5\"", "null", "1e999"};
	for (size_t i = 0; i < sizeof bad_mem / sizeof bad_mem[0]; i++) {
		struct buf s = {0};
		const char *nl = strchr(old, '\n');
		buf_add(&s, old, (size_t)(nl - old) + 1);
		buf_printf(&s,
			   "{\"timestamp\":\"2024-05-01T12:00:00.5Z\","
			   "\"cpu_usage\":0.25,\"mem_usage\":%s}\n",
			   bad_mem[i]);
		ok(spool_parse(&back, s.p, s.len, err, sizeof err) < 0 &&
		       strstr(err, "line 2"),
		   "a sample with mem_usage %s is refused", bad_mem[i]);
		spool_free(&back);
		buf_free(&s);
	}
	buf_free(&b);
}

static void
test_step_summary(void)
{
	struct run_stats st;
	int64_t t0 = 1714564800000000LL;
	stats_init(&st, t0, 0.5);
	struct sample xs[] = {at(t0, 500, 0.9, 0.25), at(t0, 1000, 0.2, 0.5)};
	for (size_t i = 0; i < 2; i++)
		stats_add_sample(&st, &xs[i]);
	stats_end(&st, t0 + 1000000);
	st.test_id = 12;
	st.command = (struct command_usage){.known = true,
					    .user_cpu = 0.75,
					    .system_cpu = 0.125,
					    .max_rss_kib = 2048};
	struct buf b = {0};
	step_summary_format(&b, &st, "make check", 2, "http://h:5000", NULL);
	is_str(b.p,
	       "\n\n| grasshopper | duration | above 50% | peak CPU | mean CPU "
	       "| peak memory | command CPU | max RSS | exit |\n"
	       "|:--|--:|--:|--:|--:|--:|--:|--:|--:|\n"
	       "| [make check](http://h:5000/#/test/12) | 1.00 s | 0.50 s "
	       "(50.0%) | 90.0% | 55.0% | 50.0% | 0.75 s user + 0.12 s system "
	       "| 2.0 MiB | 2 |\n",
	       "the step summary: one row, linked to the run's page");

	buf_reset(&b);
	st.test_id = 0;
	st.command.known = false;
	st.mem_known = false;
	step_summary_format(&b, &st, "a|b <i>x</i>\n[y](z) \xff", -1,
			    "http://h:5000", NULL);
	ok(strstr(b.p, "| a\\|b \\<i\\>x\\</i\\> \\[y\\](z) \xef\xbf\xbd "
		       "(not recorded) |") != NULL,
	   "a hostile name is escaped: no cell break, no HTML, no link, "
	   "UTF-8");
	ok(strstr(b.p, "| - | - | - | - |\n") != NULL,
	   "no memory, no command, no exit status: dashes");
	ok(strchr(b.p, '\n') && strstr(b.p, "x\n") == NULL,
	   "a newline in the name does not end the row");

	buf_reset(&b);
	st.test_id = 7;
	step_summary_format(&b, &st, "x", 0, "http://h:5000/a (b)|c", NULL);
	ok(strstr(b.p, "](http://h:5000/a%20%28b%29%7Cc/#/test/7)") != NULL,
	   "the link's address cannot end the link or the cell");
	buf_free(&b);
}

/* Burn CPU in this process until it has used secs of it. */
static void
burn(double secs)
{
	struct timespec ts;
	volatile unsigned long spin = 0;
	do {
		for (int i = 0; i < 100000; i++)
			spin++;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	} while ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 < secs);
}

/* Touch mib MiB of fresh memory, and keep it until exit. */
static void
touch_mib(size_t mib)
{
	char *p = malloc(mib << 20);
	if (!p)
		_exit(3);
	memset(p, 1, mib << 20);
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* Wait for pid with child_reap, as the loop does (polling). */
static pid_t
reap(pid_t pid, struct command_usage *use)
{
	int ws;
	pid_t p;
	while ((p = child_reap(pid, &ws, use)) == 0)
		usleep(10000);
	return p;
}

static void
test_child_reap(void)
{
	struct command_usage use = {0}, ref = {0};
	/* A child that touches 1 MiB: a bare fork may exit with no page of
	 * its own counted (ru_maxrss 0 in an optimised build). */
	pid_t pid = fork();
	if (pid == 0) {
		touch_mib(1);
		_exit(0);
	}
	is_int(reap(pid, &ref), pid, "child_reap reaps an ended command");
	ok(ref.known && ref.max_rss_kib > 0, "with its max RSS (%lld KiB)",
	   (long long)ref.max_rss_kib);

	/* The command waits for a child that burns 0.3 s of CPU and
	 * touches 40 MiB: both count (SPEC 6.3, as wait4 reports). */
	pid = fork();
	if (pid == 0) {
		pid_t kid = fork();
		if (kid == 0) {
			touch_mib(40);
			burn(0.3);
			_exit(0);
		}
		waitpid(kid, NULL, 0);
		_exit(0);
	}
	is_int(reap(pid, &use), pid, "a command with a child it waits for");
	ok(use.user_cpu + use.system_cpu >= 0.3,
	   "its child's CPU counts: %.3f s user + %.3f s system >= 0.3 s",
	   use.user_cpu, use.system_cpu);
	ok(use.max_rss_kib >= ref.max_rss_kib + 35 * 1024,
	   "its child's 40 MiB count: max RSS %lld KiB (a 1 MiB child: %lld)",
	   (long long)use.max_rss_kib, (long long)ref.max_rss_kib);

	/* A child it never waits for (a daemon) does not count. */
	int pfd[2];
	if (pipe(pfd) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		if (fork() == 0) {
			close(pfd[0]);
			burn(0.3);
			_exit(0); /* closes pfd[1]: done */
		}
		_exit(0);
	}
	close(pfd[1]);
	is_int(reap(pid, &use), pid, "a command that leaves a child behind");
	ok(use.user_cpu + use.system_cpu < 0.2,
	   "its orphan's CPU does not count (%.3f s)",
	   use.user_cpu + use.system_cpu);
	char c;
	while (read(pfd[0], &c, 1) > 0)
		;
	close(pfd[0]);

	errno = 0;
	ok(child_reap(getpid(), &(int){0}, &use) == -1 && errno == ECHILD,
	   "not a child: -1, ECHILD");
}

int
main(void)
{
	test_meminfo();
	test_summary();
	test_spool();
	test_step_summary();
	test_child_reap();
	return done_testing();
}
