/* fcgi/ratelimit.c: the per-user token buckets, on a clock of our own. */
#include "tracker.h"
#include "tap.h"

#include <sys/wait.h>
#include <unistd.h>

#define S 1000000000LL /* a second, in ns */

/* How many of n requests of user at `now` pass. */
static int
passes(struct ratelimit *rl, int64_t user, int n, int64_t now)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += ratelimit_take(rl, user, now) == 0;
	return k;
}

static void
test_bucket(void)
{
	ok(ratelimit_new(0, 10) == NULL, "a rate of 0: no limit");
	is_int(ratelimit_take(NULL, 1, 0), 0, "... every request passes");

	struct ratelimit *rl = ratelimit_new(10, 5);
	int64_t t = 1000 * S;
	is_int(passes(rl, 7, 5, t), 5, "a burst of 5 passes at once");
	is_int(ratelimit_take(rl, 7, t), 1, "the 6th: 429, retry after 1 s");
	is_int(passes(rl, 8, 5, t), 5, "another user has a burst of their own");
	is_int(passes(rl, 7, 1, t + S / 10), 1,
	       "0.1 s later at 10/s: one more");
	is_int(passes(rl, 7, 1, t + S / 10), 0, "... only one");
	is_int(passes(rl, 7, 20, t + S / 10 + S / 4), 2,
	       "a quarter second later: 2 more (10 a second)");
	is_int(passes(rl, 7, 10, t + 10 * S), 5,
	       "idle long enough: the whole burst again, no more");
	ratelimit_free(rl);

	rl = ratelimit_new(1, 3);
	is_int(passes(rl, 9, 3, t), 3, "1/s, burst 3");
	is_int(ratelimit_take(rl, 9, t), 1, "Retry-After 1 s");
	for (int i = 0; i < 10; i++)
		(void)ratelimit_take(rl, 9, t);
	is_int(ratelimit_take(rl, 9, t), 1,
	       "refused requests do not push the wait further");
	is_int(passes(rl, 9, 1, t + S), 1, "after that second, one passes");
	ratelimit_free(rl);
}

static void
test_table(void)
{
	struct ratelimit *rl = ratelimit_new(1, 1);
	int64_t t = 50 * S;
	/* 40000 users at once: more than the table holds. Past what it
	 * holds a user is not limited (documented); nobody is limited twice
	 * for another's requests. */
	int first = 0, second = 0;
	for (int64_t u = 1; u <= 40000; u++)
		first += ratelimit_take(rl, u, t) == 0;
	for (int64_t u = 1; u <= 40000; u++)
		second += ratelimit_take(rl, u, t) == 0;
	is_int(first, 40000, "40000 users, one request each: all pass");
	ok(second < 40000 && second >= 40000 - 16384,
	   "a second each: refused for the users the table holds (%d passed)",
	   second);
	/* Two seconds later every entry is idle: any user may take it. */
	int later = 0, limited = 0;
	for (int64_t u = 100001; u <= 116384; u++)
		later += ratelimit_take(rl, u, t + 2 * S) == 0;
	for (int64_t u = 100001; u <= 116384; u++)
		limited += ratelimit_take(rl, u, t + 2 * S) != 0;
	is_int(later, 16384, "16384 new users once each: all pass");
	ok(limited > 16384 * 8 / 10,
	   "... and most took over an idle entry: %d limited now", limited);
	ratelimit_free(rl);
}

static void
test_shared(void)
{
	struct ratelimit *rl = ratelimit_new(1, 4);
	int64_t t = 70 * S;
	pid_t pid = fork();
	if (pid == 0)
		_exit(passes(rl, 3, 4, t));
	int st;
	waitpid(pid, &st, 0);
	is_int(WEXITSTATUS(st), 4, "a forked worker spends the burst");
	is_int(passes(rl, 3, 4, t), 0, "... and its parent sees it spent");
	ratelimit_free(rl);
}

int
main(void)
{
	test_bucket();
	test_table();
	test_shared();
	return done_testing();
}
