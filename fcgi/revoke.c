/*
 * Which signed tokens still work (SPEC 6.2), without a database round trip
 * per request.
 *
 * A token is valid while its row in `tokens` exists (token_check in
 * schema/005_tokens.sql). Each worker remembers, for up to a minute, the
 * tokens it found valid: a bounded cache shared by its request threads.
 * Revocation must reach every worker within a second, so each worker also
 * runs a listener thread with a connection of its own that LISTENs on
 * grasshopper_revoke; the triggers on tokens and users NOTIFY the user id,
 * and the listener drops that user's entries. While the listener has no
 * connection, notifications may be lost: the cache is emptied and unused
 * (every request asks the database) until LISTEN is back, and emptied again
 * then.
 */
#include "tracker.h"
#include "isotime.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CACHE_SLOTS 4096	  /* per worker; a collision costs one check */
#define CACHE_FRESH_US 60000000LL /* a valid answer is reused this long */
#define LISTEN_POLL_MS 200	  /* how soon the listener sees it must stop */
#define RELISTEN_US 200000LL	  /* between attempts to reconnect */
#define CHANNEL "grasshopper_revoke"

/* One remembered answer "valid"; user 0 marks an empty slot. */
struct entry {
	int64_t user;
	int64_t jti; /* 0: the user's legacy tokens */
	int64_t checked_us;
};

struct revoke {
	char *url;
	pthread_mutex_t mu;
	/* Under mu: LISTEN is in effect, so the cache may answer. */
	bool listening;
	/* Under mu: bumped whenever entries are dropped, so that an answer
	 * the database gave before a drop is not remembered after it. */
	uint64_t generation;
	struct entry cache[CACHE_SLOTS];
	_Atomic bool stopping;
	pthread_t thread;
	/* The listener thread's connection, or NULL: only that thread uses
	 * it; kept here rather than on its stack so that it is reachable from
	 * the worker (valgrind's leak check on a worker killed by a signal
	 * otherwise calls it lost). */
	PGconn *pg;
};

/* The slot of token (user, jti): a multiplicative hash of both. */
static size_t
slot_of(int64_t user, int64_t jti)
{
	uint64_t x = (uint64_t)jti * 0x9E3779B97F4A7C15u ^
		     (uint64_t)user * 0xC2B2AE3D27D4EB4Fu;
	x ^= x >> 31;
	return (size_t)(x % CACHE_SLOTS);
}

/* Drop the entries of user (0: every entry) and set whether the cache may
 * be used from now on. */
static void
cache_drop(struct revoke *rv, int64_t user, bool listening)
{
	pthread_mutex_lock(&rv->mu);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		if (user == 0 || rv->cache[i].user == user)
			rv->cache[i].user = 0;
	rv->generation++;
	rv->listening = listening;
	pthread_mutex_unlock(&rv->mu);
}

enum db_status
token_live(struct revoke *rv, struct db *db, int64_t user, int64_t jti,
	   bool *live)
{
	struct entry *e = &rv->cache[slot_of(user, jti)];
	int64_t now = mono_us();
	pthread_mutex_lock(&rv->mu);
	bool hit = rv->listening && e->user == user && e->jti == jti &&
		   now - e->checked_us < CACHE_FRESH_US;
	uint64_t generation = rv->generation;
	pthread_mutex_unlock(&rv->mu);
	if (hit) {
		*live = true;
		return DB_OK;
	}

	char u[INT_PARAM_SIZE], j[INT_PARAM_SIZE];
	const char *params[] = {int_param(u, user),
				jti ? int_param(j, jti) : NULL};
	PGresult *res = NULL;
	enum db_status st = db_exec(db, STMT_TOKEN_CHECK, params, &res);
	if (st != DB_OK)
		return st;
	*live = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!*live)
		return DB_OK;
	pthread_mutex_lock(&rv->mu);
	if (rv->listening && rv->generation == generation)
		*e = (struct entry){user, jti, now};
	pthread_mutex_unlock(&rv->mu);
	return DB_OK;
}

/* Log a line about the listener to stderr. */
static void
listener_log(const char *what, PGconn *pg)
{
	char msg[256] = "";
	if (pg)
		snprintf(msg, sizeof msg, ": %s", PQerrorMessage(pg));
	msg[strcspn(msg, "\n")] = '\0';
	log_msg(LOG_WARN, "revocation listener: %s%s", what, msg);
}

/* A connection that LISTENs on CHANNEL, or NULL (logged unless quiet). */
static PGconn *
listener_connect(const char *url, bool quiet)
{
	PGconn *pg = db_connect(url);
	PGresult *r = NULL;
	if (PQstatus(pg) != CONNECTION_OK)
		goto fail;
	r = PQexec(pg, "LISTEN " CHANNEL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	return pg;
fail:
	if (!quiet)
		listener_log("cannot listen (checking every token with the "
			     "database meanwhile)",
			     pg);
	PQclear(r);
	PQfinish(pg);
	return NULL;
}

/* Wait up to LISTEN_POLL_MS for notifications and act on them. Return 0, or
 * -1 when the connection is lost. */
static int
listener_wait(struct revoke *rv, PGconn *pg)
{
	struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
	if (p.fd < 0)
		return -1;
	int n = poll(&p, 1, LISTEN_POLL_MS);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	if (n == 0)
		return 0;
	if (!PQconsumeInput(pg))
		return -1;
	PGnotify *note;
	while ((note = PQnotifies(pg))) {
		long long user;
		/* Anything but a user id: drop everything to be safe. */
		if (parse_whole(note->extra, 1, INT64_MAX, &user))
			user = 0;
		cache_drop(rv, user, true);
		PQfreemem(note);
	}
	return PQstatus(pg) == CONNECTION_OK ? 0 : -1;
}

/* The listener thread: keep LISTENing until revoke_free. */
static void *
listener(void *arg)
{
	struct revoke *rv = arg;
	bool down = false; /* the last attempt failed (logged once) */
	while (!rv->stopping) {
		if (!rv->pg) {
			rv->pg = listener_connect(rv->url, down);
			if (!rv->pg) {
				down = true;
				usleep(RELISTEN_US);
				continue;
			}
			if (down)
				listener_log("listening again", NULL);
			down = false;
			/* Whatever was revoked while we were not listening. */
			cache_drop(rv, 0, true);
		}
		if (listener_wait(rv, rv->pg)) {
			cache_drop(rv, 0, false);
			listener_log("connection lost", rv->pg);
			PQfinish(rv->pg);
			rv->pg = NULL;
		}
	}
	PQfinish(rv->pg);
	rv->pg = NULL;
	return NULL;
}

struct revoke *
revoke_new(const char *url)
{
	struct revoke *rv = xmalloc(sizeof *rv);
	memset(rv, 0, sizeof *rv);
	rv->url = xstrdup(url);
	pthread_mutex_init(&rv->mu, NULL);
	int err = pthread_create(&rv->thread, NULL, listener, rv);
	if (err) {
		log_msg(LOG_ERROR, "cannot start the revocation listener: %s",
			strerror(err));
		abort();
	}
	return rv;
}

void
revoke_free(struct revoke *rv)
{
	if (!rv)
		return;
	rv->stopping = true;
	pthread_join(rv->thread, NULL);
	pthread_mutex_destroy(&rv->mu);
	free(rv->url);
	free(rv);
}
