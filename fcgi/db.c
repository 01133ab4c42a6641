/*
 * The worker's queue of statements, shared by its request threads, and the
 * leader/follower scheduling that runs it on a few connections.
 *
 * db_exec queues a job (the statement and its thread's parameters) and
 * waits on the job's own condition variable. When a connection is idle,
 * one queued thread becomes the leader: the one whose job the next round
 * reads last. It takes everything queued and runs it in rounds
 * (pipeline.c, one round trip each) until every job is answered, then
 * wakes the next leader. Every other thread is woken the moment its own
 * job is answered. Under load a round carries dozens of statements, and
 * its samples share one commit (group commit); idle, a statement goes out
 * at once, alone.
 */
#include "db.h"
#include "isotime.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECONNECT_US 100000LL /* between attempts to reconnect */

struct db {
	char *url;
	int64_t wait_us; /* how long a statement waits for the database */
	pthread_mutex_t mu;
	struct job *head, **tail;
	_Atomic bool down; /* the last attempt to connect failed */
	int nconn;
	struct conn conn[];
};

struct db *
db_new(const char *url, int connections, long wait_s)
{
	struct db *db =
	    xmalloc(sizeof *db + (size_t)connections * sizeof(struct conn));
	db->url = xstrdup(url);
	db->wait_us = wait_s * 1000000LL;
	pthread_mutex_init(&db->mu, NULL);
	db->head = NULL;
	db->tail = &db->head;
	db->nconn = connections;
	db->down = false;
	memset(db->conn, 0, (size_t)connections * sizeof(struct conn));
	return db;
}

void
db_free(struct db *db)
{
	if (!db)
		return;
	for (int i = 0; i < db->nconn; i++)
		conn_close(&db->conn[i]);
	pthread_mutex_destroy(&db->mu);
	free(db->url);
	free(db);
}

void
job_answer(struct db *db, struct job *j, enum db_status st, PGresult *res)
{
	pthread_mutex_lock(&db->mu);
	assert(j->state == RUNNING); /* answered once, by the round it is in */
	j->st = st;
	j->res = res;
	j->state = DONE;
	pthread_cond_signal(&j->cv); /* no one waits when it is the leader's */
	pthread_mutex_unlock(&db->mu);
}

/* Answer "unavailable" the jobs of v[0..n) whose wait is over (at once for
 * NOWAIT ones while the database is down); keep the rest at the front of
 * v and return how many. */
static int
give_up_late(struct db *db, struct job **v, int n, bool up)
{
	int64_t now = mono_us();
	int left = 0;
	for (int i = 0; i < n; i++) {
		struct job *j = v[i];
		if (now >= j->deadline ||
		    (statements[j->s].flags & NOWAIT && !up))
			job_answer(db, j, DB_UNAVAILABLE, NULL);
		else
			v[left++] = j;
	}
	return left;
}

/* Answer every job of v[0..n) on connection c, in as many rounds as it
 * takes: what a round leaves (rolled back, or the database away) goes
 * again until its deadline. */
static void
conn_run(struct db *db, struct conn *c, struct job **v, int n)
{
	while (n > 0) {
		bool up = conn_ready(c, db->url) == 0;
		bool lost = false;
		db->down = !up;
		if (up)
			n = pipeline_round(db, c, v, n, &lost);
		n = give_up_late(db, v, n, up);
		if (n > 0 && (!up || lost))
			usleep(RECONNECT_US);
	}
}

/* A connection no leader is using, or NULL (under db->mu). */
static struct conn *
idle_conn(struct db *db)
{
	for (int i = 0; i < db->nconn; i++)
		if (!db->conn[i].busy)
			return &db->conn[i];
	return NULL;
}

/* Take up to PIPELINE_MAX queued jobs into v, oldest first; return how
 * many (under db->mu). */
static int
queue_take(struct db *db, struct job **v)
{
	int n = 0;
	while (db->head && n < PIPELINE_MAX) {
		v[n] = db->head;
		v[n++]->state = RUNNING;
		db->head = db->head->next;
	}
	if (!db->head)
		db->tail = &db->head;
	return n;
}

/* The queued job that should lead the next round: the one read last in it,
 * the last of the first PIPELINE_MAX that is not a batch statement (else
 * the first), so that its request waits for nothing read after its own
 * answer (under db->mu; NULL when nothing is queued). */
static struct job *
queue_leader(struct db *db)
{
	struct job *lead = db->head;
	int n = 0;
	for (struct job *j = db->head; j && n < PIPELINE_MAX; j = j->next, n++)
		if (!(statements[j->s].flags & BATCH))
			lead = j;
	return lead;
}

/* Queue j and wait until it is answered, leading a round when a connection
 * is idle and j is the queue's leader (called and returns with db->mu
 * held). */
static void
job_run(struct db *db, struct job *j)
{
	pthread_cond_init(&j->cv, NULL);
	*db->tail = j;
	db->tail = &j->next;
	while (j->state != DONE) {
		struct conn *c = j->state == QUEUED ? idle_conn(db) : NULL;
		struct job *lead = c ? queue_leader(db) : NULL;
		if (lead != j) {
			if (lead) /* a connection waits for it */
				pthread_cond_signal(&lead->cv);
			pthread_cond_wait(&j->cv, &db->mu);
			continue;
		}
		/* Lead: take what is queued, ours among it, and run it. */
		struct job *v[PIPELINE_MAX];
		int n = queue_take(db, v);
		c->busy = true;
		pthread_mutex_unlock(&db->mu);
		conn_run(db, c, v, n);
		pthread_mutex_lock(&db->mu);
		c->busy = false;
		/* The connection is idle: wake the next leader. */
		if (db->head)
			pthread_cond_signal(&queue_leader(db)->cv);
	}
	pthread_cond_destroy(&j->cv);
}

/* Run job j (see db_exec). */
static enum db_status
db_run(struct db *db, struct job *j, PGresult **res)
{
	j->state = QUEUED;
	j->deadline = mono_us() + db->wait_us;
	pthread_mutex_lock(&db->mu);
	/* A health check does not queue behind statements that wait for the
	 * database; with a connection idle it tries for itself. */
	if (statements[j->s].flags & NOWAIT && db->down && !idle_conn(db))
		j->st = DB_UNAVAILABLE;
	else
		job_run(db, j);
	pthread_mutex_unlock(&db->mu);
	*res = j->res;
	return j->st;
}

enum db_status
db_exec(struct db *db, enum stmt s, const char *const params[], PGresult **res)
{
	assert(!(statements[s].flags & BATCH)); /* needs its key */
	struct job j = {.s = s, .params = params};
	return db_run(db, &j, res);
}

enum db_status
db_exec_batch(struct db *db, enum stmt s, int64_t key,
	      const char *const params[], PGresult **res)
{
	assert(statements[s].flags & BATCH);
	assert(strtoll(params[BATCH_KEY_PARAM], NULL, 10) == key);
	struct job j = {.s = s, .params = params, .key = key};
	return db_run(db, &j, res);
}
