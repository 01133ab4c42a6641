/*
 * lib/isotime.c: isotime_parse on any bytes, and isotime_format on any
 * int64. Whatever parses is in range and survives format -> parse
 * unchanged; whatever is in range formats and parses back.
 */
#include "fuzz.h"
#include "isotime.h"

#include <string.h>

/* Format us and check it reads back; return whether it was in range. */
static bool
round_trip(int64_t us)
{
	char s[ISOTIME_MAX];
	size_t n = isotime_format(us, s);
	bool in_range = us >= ISOTIME_MIN_US && us <= ISOTIME_MAX_US;
	FUZZ_ASSERT((n > 0) == in_range);
	if (!n)
		return false;
	FUZZ_ASSERT(n < ISOTIME_MAX && strlen(s) == n && s[n - 1] == 'Z');
	int64_t back;
	FUZZ_ASSERT(isotime_parse(s, n, &back) == 0);
	FUZZ_ASSERT(back == us);
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t us;
	/* data is exactly size bytes, not NUL-terminated: ASan sees any read
	 * past the end. */
	if (isotime_parse((const char *)data, size, &us) == 0)
		FUZZ_ASSERT(round_trip(us));
	if (size >= sizeof us) {
		memcpy(&us, data, sizeof us);
		round_trip(us);
	}
	return 0;
}
