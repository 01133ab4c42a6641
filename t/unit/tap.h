/*
 * A minimal TAP producer for the C unit tests: ok(), is_int(), is_str(),
 * done_testing(). Header-only; each test program includes it once.
 */
#ifndef GH_TAP_H
#define GH_TAP_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static int
tap_ok(int cond, const char *name)
{
	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
	return cond;
}

#define ok(cond, ...)                                                          \
	do {                                                                   \
		char tap_name_[512];                                           \
		snprintf(tap_name_, sizeof tap_name_, __VA_ARGS__);            \
		tap_ok(!!(cond), tap_name_);                                   \
	} while (0)

#define is_int(got, want, ...)                                                 \
	do {                                                                   \
		long long g_ = (long long)(got), w_ = (long long)(want);       \
		char tap_name_[512];                                           \
		snprintf(tap_name_, sizeof tap_name_, __VA_ARGS__);            \
		if (!tap_ok(g_ == w_, tap_name_))                              \
			printf("#   got %lld, want %lld\n", g_, w_);           \
	} while (0)

#define is_str(got, want, ...)                                                 \
	do {                                                                   \
		const char *g_ = (got), *w_ = (want);                          \
		char tap_name_[512];                                           \
		snprintf(tap_name_, sizeof tap_name_, __VA_ARGS__);            \
		int same_ = g_ && w_ ? strcmp(g_, w_) == 0 : g_ == w_;         \
		if (!tap_ok(same_, tap_name_))                                 \
			printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)", \
			       w_ ? w_ : "(null)");                            \
	} while (0)

static int
done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
