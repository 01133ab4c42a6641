/*
 * The per-user request rate limit of the authenticated routes (SPEC 6.1),
 * shared by every worker of one host: the master maps a fixed table of
 * token buckets (MAP_SHARED | MAP_ANONYMOUS) before it forks, and each
 * worker's threads update it with single compare-and-swaps. No lock: a
 * worker SIGKILLed in the middle of an update leaves every entry whole.
 * Each host counts on its own.
 *
 * A bucket is kept as GCRA keeps it (the "generic cell rate algorithm"):
 * one time, `tat`, when the user's allowance will be whole again. A
 * request advances it by one interval (1/rate s); it passes while tat
 * stays within burst intervals of now. An entry whose tat has passed is a
 * full bucket, the same as no entry: any other user may take its slot.
 */
#include "tracker.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#define SLOTS 16384 /* users with a partly spent allowance, per host */
#define PROBE 16    /* slots looked at for one user */

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
	       "the table is shared between processes: its atomics must not "
	       "hide a lock");

struct bucket {
	_Atomic long long user; /* 0: never used */
	_Atomic long long tat;	/* ns on CLOCK_MONOTONIC (system-wide) */
};

struct ratelimit {
	long long interval_ns; /* between two requests at the rate */
	long long window_ns;   /* burst intervals: how far tat may run ahead */
	struct bucket slot[SLOTS];
};

struct ratelimit *
ratelimit_new(long rate, long burst)
{
	if (rate <= 0)
		return NULL;
	struct ratelimit *rl = mmap(NULL, sizeof *rl, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rl == MAP_FAILED)
		abort();
	/* The kernel hands the mapping out zeroed: every slot unused. */
	rl->interval_ns = 1000000000LL / rate;
	rl->window_ns = rl->interval_ns * burst;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl)
		munmap(rl, sizeof *rl);
}

/* Spread user ids over the table (splitmix64's finalizer). */
static size_t
slot_of(long long user)
{
	unsigned long long x = (unsigned long long)user;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (size_t)(x ^ (x >> 31)) % SLOTS;
}

/* The bucket of user: its own, else one never used or idle (tat passed)
 * taken over. NULL when every slot near it is busy. */
static struct bucket *
bucket_find(struct ratelimit *rl, long long user, long long now)
{
	size_t h = slot_of(user);
	for (size_t k = 0; k < PROBE; k++) {
		struct bucket *b = &rl->slot[(h + k) % SLOTS];
		if (atomic_load(&b->user) == user)
			return b;
	}
	for (size_t k = 0; k < PROBE; k++) {
		struct bucket *b = &rl->slot[(h + k) % SLOTS];
		long long owner = atomic_load(&b->user);
		if (owner == user)
			return b; /* another thread took one for user */
		/* A request of the old owner racing with us may charge this
		 * bucket one interval: harmless. */
		if ((owner == 0 || atomic_load(&b->tat) <= now) &&
		    atomic_compare_exchange_strong(&b->user, &owner, user))
			return b;
	}
	return NULL;
}

long
ratelimit_take(struct ratelimit *rl, int64_t user, int64_t now_ns)
{
	if (!rl)
		return 0;
	struct bucket *b = bucket_find(rl, user, now_ns);
	if (!b)
		return 0; /* the table is full here: let it pass */
	long long tat = atomic_load(&b->tat);
	for (;;) {
		long long next =
		    (tat > now_ns ? tat : now_ns) + rl->interval_ns;
		long long over = next - now_ns - rl->window_ns;
		if (over > 0) /* whole seconds until it would pass */
			return (long)((over + 999999999LL) / 1000000000LL);
		if (atomic_compare_exchange_weak(&b->tat, &tat, next))
			return 0;
	}
}
