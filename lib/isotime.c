#include "isotime.h"

#include <time.h>

/* Howard Hinnant's days_from_civil: days since 1970-01-01, proleptic
 * Gregorian calendar, exact for every year we accept. */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of days_from_civil. */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned
days_in_month(int64_t y, unsigned m)
{
	static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30,
						31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Read exactly n decimal digits at s[*i]; return -1 if any is not a digit. */
static long
digits(const char *s, size_t len, size_t *i, int n)
{
	long v = 0;
	for (int k = 0; k < n; k++, (*i)++) {
		if (*i >= len || s[*i] < '0' || s[*i] > '9')
			return -1;
		v = v * 10 + (s[*i] - '0');
	}
	return v;
}

/* Consume the separator c at s[*i]; return 0 if it is there. */
static int
expect(const char *s, size_t len, size_t *i, char c)
{
	if (*i >= len || s[*i] != c)
		return -1;
	(*i)++;
	return 0;
}

int
isotime_parse(const char *s, size_t len, int64_t *us)
{
	size_t i = 0;
	long year = digits(s, len, &i, 4);
	if (year < 1 || expect(s, len, &i, '-'))
		return -1;
	long mon = digits(s, len, &i, 2);
	if (mon < 1 || mon > 12 || expect(s, len, &i, '-'))
		return -1;
	long day = digits(s, len, &i, 2);
	if (day < 1 || (unsigned long)day > days_in_month(year, (unsigned)mon))
		return -1;
	/* RFC 3339 allows a lower-case t; we do too. */
	if (i >= len || (s[i] != 'T' && s[i] != 't'))
		return -1;
	i++;
	long hh = digits(s, len, &i, 2);
	if (hh < 0 || hh > 23 || expect(s, len, &i, ':'))
		return -1;
	long mm = digits(s, len, &i, 2);
	if (mm < 0 || mm > 59 || expect(s, len, &i, ':'))
		return -1;
	long ss = digits(s, len, &i, 2);
	if (ss < 0 || ss > 59) /* no leap seconds: nothing stamps them */
		return -1;

	long frac = 0;
	if (i < len && s[i] == '.') {
		i++;
		int n = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9' && n < 6)
			frac = frac * 10 + (s[i++] - '0'), n++;
		if (n == 0 || (i < len && s[i] >= '0' && s[i] <= '9'))
			return -1; /* empty, or finer than microseconds */
		for (; n < 6; n++)
			frac *= 10;
	}

	long offset = 0; /* seconds east of UTC */
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		int sign = s[i++] == '-' ? -1 : 1;
		long oh = digits(s, len, &i, 2);
		if (oh < 0 || oh > 23 || expect(s, len, &i, ':'))
			return -1;
		long om = digits(s, len, &i, 2);
		if (om < 0 || om > 59)
			return -1;
		offset = sign * (oh * 3600 + om * 60);
	}
	if (i != len)
		return -1;

	int64_t secs =
	    days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
	    hh * 3600 + mm * 60 + ss - offset;
	int64_t v = secs * 1000000 + frac;
	if (v < ISOTIME_MIN_US || v > ISOTIME_MAX_US)
		return -1;
	*us = v;
	return 0;
}

size_t
isotime_format(int64_t us, char out[ISOTIME_MAX])
{
	if (us < ISOTIME_MIN_US || us > ISOTIME_MAX_US) {
		out[0] = '\0';
		return 0;
	}
	int64_t secs = us / 1000000, frac = us % 1000000;
	if (frac < 0)
		frac += 1000000, secs--;
	int64_t days = secs / 86400, rem = secs % 86400;
	if (rem < 0)
		rem += 86400, days--;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);

	char *p = out;
	unsigned long vals[6] = {(unsigned long)y,
				 m,
				 d,
				 (unsigned long)rem / 3600,
				 (unsigned long)rem / 60 % 60,
				 (unsigned long)rem % 60};
	static const char seps[6] = {'-', '-', 'T', ':', ':', 0};
	for (int k = 0; k < 6; k++) {
		int width = k == 0 ? 4 : 2;
		for (int w = width - 1; w >= 0; w--) {
			p[w] = (char)('0' + vals[k] % 10);
			vals[k] /= 10;
		}
		p += width;
		if (seps[k])
			*p++ = seps[k];
	}
	if (frac) {
		*p++ = '.';
		for (int w = 5; w >= 0; w--) {
			p[w] = (char)('0' + frac % 10);
			frac /= 10;
		}
		p += 6;
	}
	*p++ = 'Z';
	*p = '\0';
	return (size_t)(p - out);
}

int64_t
isotime_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
