/*
 * RFC 3339 timestamps as the API speaks them (SPEC section 2), held as
 * microseconds since 1970-01-01T00:00:00Z in an int64_t.
 */
#ifndef GH_ISOTIME_H
#define GH_ISOTIME_H

#include <stddef.h>
#include <stdint.h>

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" plus NUL, with room to spare. */
#define ISOTIME_MAX 32

/* Earliest and latest instants we accept: years 0001 to 9999. */
#define ISOTIME_MIN_US (-62135596800LL * 1000000LL)
#define ISOTIME_MAX_US (253402300799LL * 1000000LL + 999999LL)

/*
 * Parse YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|+HH:MM|-HH:MM] (no offset means UTC)
 * from s[0..len). Return 0 and set *us on success, -1 on any malformed or
 * out-of-range input.
 */
int isotime_parse(const char *s, size_t len, int64_t *us);

/*
 * Write us as UTC "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (fraction only when
 * non-zero) into out. Return the length written, 0 if us is out of range.
 */
size_t isotime_format(int64_t us, char out[ISOTIME_MAX]);

/* The wall clock now, in microseconds. */
int64_t isotime_now(void);

/* The monotonic clock, in microseconds: for intervals, never for stamps. */
int64_t mono_us(void);

#endif
