/*
 * Memory in use, from /proc/meminfo, read on the same tick as /proc/stat
 * (SPEC 6.3): 1 - MemAvailable/MemTotal, the share the kernel could not
 * hand out without swapping. It is the machine's (or, in a container
 * without lxcfs, the host's) memory, as /proc/stat is the machine's CPU.
 */
#include "client.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The whole file is about 1.5 KiB; both lines are near its start. */
#define MEMINFO_READ_MAX 4096

/* The value of a "Key:   <digits> kB" line into *out; return 0, or -1
 * when the rest of the line is anything else or overflows. */
static int
meminfo_value(const char *p, const char *eol, uint64_t *out)
{
	while (p < eol && *p == ' ')
		p++;
	if (p == eol || *p < '0' || *p > '9')
		return -1;
	uint64_t v = 0;
	for (; p < eol && *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (eol - p != 3 || memcmp(p, " kB", 3) != 0)
		return -1;
	*out = v;
	return 0;
}

/* If line [p, eol) is key's, read its value into *v and set *has (the
 * first such line wins). */
static void
meminfo_line(const char *p, const char *eol, const char *key, uint64_t *v,
	     bool *has)
{
	size_t k = strlen(key);
	if (*has || (size_t)(eol - p) < k || memcmp(p, key, k) != 0)
		return;
	*has = meminfo_value(p + k, eol, v) == 0;
}

void
meminfo_parse(const char *text, size_t len, struct meminfo *out)
{
	*out = (struct meminfo){0};
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			break; /* cut short by the read: not a line */
		meminfo_line(p, eol, "MemTotal:", &out->total_kib,
			     &out->has_total);
		meminfo_line(p, eol, "MemAvailable:", &out->available_kib,
			     &out->has_available);
		p = eol + 1;
	}
}

int
meminfo_usage(const struct meminfo *mi, double *usage)
{
	/* No MemAvailable (before Linux 3.14): none rather than a guess
	 * from MemFree + Cached, which the kernel itself calls wrong. */
	if (!mi->has_total || !mi->has_available || mi->total_kib == 0 ||
	    mi->available_kib > mi->total_kib)
		return -1;
	*usage = 1.0 - (double)mi->available_kib / (double)mi->total_kib;
	return 0;
}

ssize_t
proc_pread(int fd, char *buf, size_t size)
{
	ssize_t n;
	do
		n = pread(fd, buf, size, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

int
meminfo_read(int fd, struct meminfo *mi)
{
	char text[MEMINFO_READ_MAX];
	ssize_t n = proc_pread(fd, text, sizeof text);
	if (n < 0)
		return -1;
	meminfo_parse(text, (size_t)n, mi);
	return 0;
}
