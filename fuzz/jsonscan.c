/*
 * lib/jsonscan.c, the strict scanner the client and the service share, on
 * any bytes (exactly `size`, not NUL-terminated: ASan sees any read past
 * the end). Rules checked: the scan never claims a position past the end;
 * a text it takes is strict UTF-8 (checked by fuzz.h's own reader) and
 * holds exactly the values it counted: taken again with that many as the
 * budget, refused with one fewer; what jsonscan_get and jsonscan_string read
 * from it is strict UTF-8 without NUL; every element jsonscan_next yields from
 * a whole-text array is itself a text it takes.
 */
#include "fuzz.h"
#include "jsonscan.h"

#include <string.h>

/* A member's text, if it is a string, must be strict UTF-8 without NUL. */
static void
check_member(const char *text, size_t size, const char *key)
{
	struct json_value v;
	if (jsonscan_get(text, size, key, &v))
		return;
	FUZZ_ASSERT(v.p >= text && v.p + v.len <= text + size);
	char *s = jsonscan_string(&v);
	FUZZ_ASSERT((s != NULL) <= (v.type == JSON_STRING));
	if (s)
		FUZZ_ASSERT(fuzz_utf8_ok((const unsigned char *)s, strlen(s)));
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct jsonscan sc;
	int rc = jsonscan(&sc, text, size, SIZE_MAX);
	FUZZ_ASSERT(sc.i <= size);
	FUZZ_ASSERT((rc == 0) == (sc.error == JSONSCAN_OK));
	if (rc)
		return 0;
	FUZZ_ASSERT(fuzz_utf8_ok(data, size));
	FUZZ_ASSERT(memchr(data, '\0', size) == NULL);
	size_t values = sc.values;
	FUZZ_ASSERT(values >= 1);
	FUZZ_ASSERT(jsonscan(&sc, text, size, values) == 0);
	FUZZ_ASSERT(jsonscan(&sc, text, size, values - 1) < 0 &&
		    sc.error == JSONSCAN_TOO_MANY);

	check_member(text, size, "a");
	check_member(text, size, "id");
	if (size >= 2 && text[0] == '[' && text[size - 1] == ']') {
		struct json_value arr = {JSON_ARRAY, text, size}, el;
		size_t pos = 0, n = 0;
		while (jsonscan_next(&arr, &pos, &el) == 0) {
			FUZZ_ASSERT(el.p > text && el.p + el.len < text + size);
			FUZZ_ASSERT(jsonscan(&sc, el.p, el.len, SIZE_MAX) == 0);
			n++;
		}
		FUZZ_ASSERT(n < values);
	}
	return 0;
}
