/*
 * The sampler: the aggregate line of /proc/stat, the busy fraction between
 * two readings (htop's arithmetic, SPEC section 4), memory in use from
 * /proc/meminfo on the same tick (SPEC 6.3) and the sample's stamp.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "isotime.h"

/* The aggregate line is first; 4 KiB holds it on any machine. */
#define STAT_READ_MAX 4096

/* Read one decimal field after blanks; return 0, or -1 at the line's end. */
static int
stat_field(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	while (p < end && *p == ' ')
		p++;
	if (p == end || *p < '0' || *p > '9')
		return -1;
	uint64_t v = 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	*pp = p;
	*out = v;
	return 0;
}

int
stat_parse(const char *text, size_t len, struct cpu_times *out)
{
	/* "cpu " with a blank, not "cpu0": the sum over all CPUs. */
	if (len < 4 || text[0] != 'c' || text[1] != 'p' || text[2] != 'u' ||
	    text[3] != ' ')
		return -1;
	const char *p = text + 4, *end = text + len;
	for (const char *q = p; q < end; q++)
		if (*q == '\n') {
			end = q;
			break;
		}
	/* In /proc/stat's order; iowait came in 2.5.41, irq and softirq in
	 * 2.6.0, steal in 2.6.11: an older kernel simply has fewer. */
	uint64_t f[8] = {0};
	size_t n = 0;
	while (n < 8 && stat_field(&p, end, &f[n]) == 0)
		n++;
	if (n < 4)
		return -1;
	*out = (struct cpu_times){.user = f[0],
				  .nice = f[1],
				  .system = f[2],
				  .idle = f[3],
				  .iowait = f[4],
				  .irq = f[5],
				  .softirq = f[6],
				  .steal = f[7]};
	return 0;
}

/* a - b, or 0 when a counter stepped back (iowait can, on NO_HZ kernels). */
static uint64_t
saturating_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

double
cpu_busy_fraction(const struct cpu_times *prev, const struct cpu_times *cur)
{
	/* As htop does: saturate the deltas of the two sums, then take busy
	 * as what is left of the total once idle time is taken out. */
	uint64_t idle0 = prev->idle + prev->iowait;
	uint64_t idle1 = cur->idle + cur->iowait;
	uint64_t total0 = prev->user + prev->nice + prev->system + idle0 +
			  prev->irq + prev->softirq + prev->steal;
	uint64_t total1 = cur->user + cur->nice + cur->system + idle1 +
			  cur->irq + cur->softirq + cur->steal;
	uint64_t total = saturating_sub(total1, total0);
	uint64_t busy = saturating_sub(total, saturating_sub(idle1, idle0));
	if (total == 0)
		return 0.0;
	return (double)busy / (double)total;
}

int64_t
stamp_next(int64_t prev_stamp, int64_t wall_now, int64_t mono_elapsed)
{
	if (wall_now > prev_stamp)
		return wall_now;
	/* The wall clock stepped back: the tracker tells samples apart by
	 * stamp, so a repeat would be taken for a resend and dropped. */
	return prev_stamp + (mono_elapsed > 0 ? mono_elapsed : 1);
}

/* Read the aggregate line afresh into *t; return 0 or -1 with errno set. */
static int
stat_read(int fd, struct cpu_times *t)
{
	char text[STAT_READ_MAX];
	ssize_t n = proc_pread(fd, text, sizeof text);
	if (n < 0)
		return -1;
	if (stat_parse(text, (size_t)n, t) < 0) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int
sampler_open(struct sampler *s, int64_t *start_us)
{
	s->mem_fd = -1;
	s->fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return -1;
	if (stat_read(s->fd, &s->prev) < 0) {
		int e = errno;
		close(s->fd);
		s->fd = -1;
		errno = e;
		return -1;
	}
	/* Without it (a /proc without meminfo) samples have no memory. */
	s->mem_fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	s->prev_mono = mono_us();
	s->prev_stamp = isotime_now();
	*start_us = s->prev_stamp;
	return 0;
}

/* Memory in use now into x; unknown when it cannot be read. */
static void
mem_take(int fd, struct sample *x)
{
	struct meminfo mi;
	x->has_mem = fd >= 0 && meminfo_read(fd, &mi) == 0 &&
		     meminfo_usage(&mi, &x->mem) == 0;
	if (!x->has_mem)
		x->mem = 0;
}

int
sampler_take(struct sampler *s, struct sample *x)
{
	struct cpu_times cur;
	if (stat_read(s->fd, &cur) < 0)
		return -1;
	mem_take(s->mem_fd, x);
	int64_t mono = mono_us();
	x->stamp =
	    stamp_next(s->prev_stamp, isotime_now(), mono - s->prev_mono);
	x->cpu = cpu_busy_fraction(&s->prev, &cur);
	s->prev = cur;
	s->prev_mono = mono;
	s->prev_stamp = x->stamp;
	return 0;
}

void
sampler_close(struct sampler *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->mem_fd >= 0)
		close(s->mem_fd);
	s->fd = s->mem_fd = -1;
}
