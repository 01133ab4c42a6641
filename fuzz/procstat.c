/*
 * client/sampler.c: stat_parse, the /proc/stat "cpu " line reader, on any
 * bytes; with two readings (split at the first NUL), cpu_busy_fraction of
 * them, which must be a fraction in [0, 1] whatever the counters say.
 * client/meminfo.c: meminfo_parse of the same bytes, as a /proc/meminfo
 * text; the memory in use it gives, when it gives one, is in [0, 1] too.
 */
#include "fuzz.h"
#include "client.h"

#include <math.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t first = nul ? (size_t)(nul - text) : size;
	struct cpu_times a, b;

	struct meminfo mi;
	double mem;
	meminfo_parse(text, size, &mi);
	if (meminfo_usage(&mi, &mem) == 0)
		FUZZ_ASSERT(isfinite(mem) && mem >= 0.0 && mem <= 1.0);

	int ra = stat_parse(text, first, &a);
	if (ra == 0)
		FUZZ_ASSERT(first >= 4 && memcmp(text, "cpu ", 4) == 0);
	if (!nul)
		return 0;
	int rb = stat_parse(nul + 1, size - first - 1, &b);
	if (ra == 0 && rb == 0) {
		double f = cpu_busy_fraction(&a, &b);
		FUZZ_ASSERT(isfinite(f) && f >= 0.0 && f <= 1.0);
		FUZZ_ASSERT(cpu_busy_fraction(&a, &a) == 0.0);
	}
	return 0;
}
