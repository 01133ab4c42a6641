/* lib/isotime: RFC 3339 parsing and formatting. */
#include "isotime.h"
#include "tap.h"

static void
parses(const char *s, int64_t want)
{
	int64_t got = 0;
	int rc = isotime_parse(s, strlen(s), &got);
	ok(rc == 0 && got == want, "parse %s", s);
	if (rc != 0 || got != want)
		printf("#   rc %d, got %lld, want %lld\n", rc, (long long)got,
		       (long long)want);
}

static void
rejects(const char *s)
{
	int64_t got;
	is_int(isotime_parse(s, strlen(s), &got), -1, "reject '%s'", s);
}

static void
formats(int64_t us, const char *want)
{
	char out[ISOTIME_MAX];
	isotime_format(us, out);
	is_str(out, want, "format %lld", (long long)us);
}

int
main(void)
{
	const int64_t S = 1000000;
	parses("1970-01-01T00:00:00Z", 0);
	parses("1970-01-01T00:00:00", 0); /* no offset: UTC */
	parses("1970-01-01t00:00:01z", S);
	parses("2026-11-30T04:52:51Z", 1796014371 * S);
	parses("2026-11-30T04:52:51.5Z", 1796014371 * S + 500000);
	parses("2026-11-30T04:52:51.000001Z", 1796014371 * S + 1);
	parses("2026-11-30T04:52:51.123456Z", 1796014371 * S + 123456);
	parses("2026-11-30T06:52:51+02:00", 1796014371 * S);
	parses("2026-11-30T00:22:51-04:30", 1796014371 * S);
	parses("2026-11-30T04:52:51.25+00:00", 1796014371 * S + 250000);
	parses("1969-12-31T23:59:59.999999Z", -1);
	parses("2024-02-29T00:00:00Z", 1709164800 * S); /* leap day */
	parses("2000-02-29T00:00:00Z", 951782400 * S);	/* 400-year leap */
	parses("0001-01-01T00:00:00Z", ISOTIME_MIN_US);
	parses("9999-12-31T23:59:59.999999Z", ISOTIME_MAX_US);

	rejects("");
	rejects("2026-11-30");
	rejects("2026-11-30T04:52");
	rejects("2026-11-30 04:52:51Z");
	rejects("2026-11-30T04:52:51.Z");
	rejects("2026-11-30T04:52:51.1234567Z"); /* finer than us */
	rejects("2026-11-30T04:52:51ZZ");
	rejects("2026-11-30T04:52:51+0200");
	rejects("2026-11-30T04:52:51+24:00");
	rejects("2026-11-30T04:52:51+02:60");
	rejects("2026-13-01T00:00:00Z");
	rejects("2026-00-01T00:00:00Z");
	rejects("2026-02-29T00:00:00Z"); /* not a leap year */
	rejects("1900-02-29T00:00:00Z");
	rejects("2026-04-31T00:00:00Z");
	rejects("2026-01-01T24:00:00Z");
	rejects("2026-01-01T23:60:00Z");
	rejects("2026-01-01T23:59:60Z"); /* no leap seconds */
	rejects("0000-01-01T00:00:00Z");
	rejects("0001-01-01T00:00:00+00:01"); /* before year 1 in UTC */
	rejects("+2026-01-01T00:00:00Z");
	rejects("2026-1-01T00:00:00Z");
	rejects("２０２６-01-01T00:00:00Z");
	rejects("2026-01-01T00:00:00Z ");
	rejects("now");
	{
		/* Length is honoured: a NUL inside is just a bad byte. */
		int64_t got;
		is_int(isotime_parse("1970-01-01T00:00:00Z\0x", 22, &got), -1,
		       "reject a NUL inside the given length");
		is_int(isotime_parse("1970-01-01T00:00:00Zjunk", 20, &got), 0,
		       "parse only the given length");
	}

	formats(0, "1970-01-01T00:00:00Z");
	formats(1796014371 * S, "2026-11-30T04:52:51Z");
	formats(1796014371 * S + 500000, "2026-11-30T04:52:51.500000Z");
	formats(1796014371 * S + 1, "2026-11-30T04:52:51.000001Z");
	formats(-1, "1969-12-31T23:59:59.999999Z");
	formats(ISOTIME_MIN_US, "0001-01-01T00:00:00Z");
	formats(ISOTIME_MAX_US, "9999-12-31T23:59:59.999999Z");
	{
		char out[ISOTIME_MAX];
		is_int(isotime_format(ISOTIME_MAX_US + 1, out), 0,
		       "format refuses year 10000");
		is_int(isotime_format(ISOTIME_MIN_US - 1, out), 0,
		       "format refuses year 0");
	}

	/* Every day for 3000 years round-trips through format and parse. */
	int bad = 0;
	for (int64_t us = -30000LL * 86400 * S; us < 1000000LL * 86400 * S;
	     us += 86400 * S + 3723 * S + 123457) {
		char out[ISOTIME_MAX];
		int64_t back;
		size_t n = isotime_format(us, out);
		if (!n || isotime_parse(out, n, &back) || back != us)
			bad++;
	}
	is_int(bad, 0, "format and parse round-trip over three millennia");

	int64_t now = isotime_now();
	ok(now > 1700000000 * S && now < ISOTIME_MAX_US, "now is plausible");
	return done_testing();
}
