/*
 * init-db: apply schema/NNN_name.sql files not yet applied, in order, each in
 * its own transaction together with the row that records it.
 */
#include "tracker.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATIONS_MAX 999
#define MIGRATION_LOCK "7214320914" /* pg_advisory_lock key: one at a time */

/* Is name NNN_something.sql? */
static bool
is_migration(const char *name)
{
	size_t n = strlen(name);
	return n > 8 && name[0] >= '0' && name[0] <= '9' && name[1] >= '0' &&
	       name[1] <= '9' && name[2] >= '0' && name[2] <= '9' &&
	       name[3] == '_' && strcmp(name + n - 4, ".sql") == 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The migration file names of dir, sorted; *n set. NULL on error. */
static char **
list_migrations(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "grasshopper-tracker: %s: %s\n", dir,
			strerror(errno));
		return NULL;
	}
	char **names = xmalloc(sizeof *names * MIGRATIONS_MAX);
	*n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && *n < MIGRATIONS_MAX)
		if (is_migration(e->d_name))
			names[(*n)++] = xstrdup(e->d_name);
	closedir(d);
	qsort(names, *n, sizeof *names, cmp_names);
	return names;
}

/* The contents of dir/name as a new string, or NULL. */
static char *
read_file(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "grasshopper-tracker: %s: %s\n", path,
			strerror(errno));
		return NULL;
	}
	struct buf b = {0};
	char chunk[8192];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(&b, chunk, got);
	fclose(f);
	if (!b.p)
		buf_puts(&b, "");
	return b.p;
}

/* Run sql (no parameters); return 0, or -1 after printing why. */
static int
run(PGconn *c, const char *what, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "grasshopper-tracker: %s: %s", what,
			PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

/* Has version v been applied? 1 yes, 0 no, -1 error. */
static int
applied(PGconn *c, const char *v)
{
	const char *p[1] = {v};
	PGresult *r = PQexecParams(c,
				   "SELECT 1 FROM schema_migrations "
				   "WHERE version = $1::int",
				   1, NULL, p, NULL, NULL, 0);
	int out = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) > 0 : -1;
	if (out < 0)
		fprintf(stderr, "grasshopper-tracker: %s",
			PQresultErrorMessage(r));
	PQclear(r);
	return out;
}

/* Apply dir/name in one transaction with its record. */
static int
apply(PGconn *c, const char *dir, const char *name)
{
	char version[4] = {name[0], name[1], name[2], 0};
	int done = applied(c, version);
	if (done != 0)
		return done < 0 ? -1 : 0;
	char *sql = read_file(dir, name);
	if (!sql)
		return -1;
	const char *p[2] = {version, name};
	int rc = -1;
	if (run(c, "BEGIN", "BEGIN") || run(c, name, sql))
		goto fail;
	PGresult *r = PQexecParams(c,
				   "INSERT INTO schema_migrations (version, "
				   "name) VALUES ($1::int, $2::text)",
				   2, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok || run(c, "COMMIT", "COMMIT"))
		goto fail;
	printf("applied %s\n", name);
	rc = 0;
fail:
	if (rc)
		run(c, "ROLLBACK", "ROLLBACK");
	free(sql);
	return rc;
}

int
migrate_run(const char *url, const char *dir)
{
	size_t n = 0;
	char **names = list_migrations(dir, &n);
	if (!names)
		return -1;
	int rc = -1;
	PGconn *c = db_connect(url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "grasshopper-tracker: database: %s",
			PQerrorMessage(c));
		goto done;
	}
	if (n == 0) {
		fprintf(stderr, "grasshopper-tracker: no migrations in %s\n",
			dir);
		goto done;
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	/* A migration may rewrite every stored sample (schema 4 packs about a
	 * million a 6 s): the service's timeouts are not for it. */
	if (run(c, "timeouts",
		"SET statement_timeout = 0; "
		"SET idle_in_transaction_session_timeout = 0; "
		"SET lock_timeout = 0") ||
	    run(c, "lock", "SELECT pg_advisory_lock(" MIGRATION_LOCK ")") ||
	    run(c, "schema_migrations",
		"CREATE TABLE IF NOT EXISTS schema_migrations ("
		"version int PRIMARY KEY, name text NOT NULL, "
		"applied_at timestamptz NOT NULL DEFAULT now())"))
		goto done;
	for (size_t i = 0; i < n; i++)
		if (apply(c, dir, names[i]))
			goto done;
	printf("schema is up to date (version %.3s)\n", names[n - 1]);
	rc = 0;
done:
	PQfinish(c);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
