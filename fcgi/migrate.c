/*
 * init-db, under an advisory lock (one at a time):
 *   1. when there is a migration to apply, values.sql: functions of their
 *      arguments alone, which a migration may use;
 *   2. the migrations schema/NNN_name.sql (tables and data) not yet
 *      applied, in order, each in its own transaction together with the
 *      row that records it;
 *   3. in one transaction: the definitions, values.sql, functions.sql and
 *      views.sql (CREATE OR REPLACE, or drop and create), then the grants
 *      to the service's role (TRACKER_DB_SERVICE_ROLE) of what `serve`
 *      needs on everything in schema public, so that tables added by any
 *      migration are covered without a migration having to remember it,
 *      and a view created again is granted before anyone sees it.
 * A file of definitions is applied only when its text is not the one last
 * applied (schema_defs keeps their md5) or a migration ran since: an
 * init-db with nothing new changes nothing and takes no lock on a table
 * the workers write (schema/functions.sql says which locks it takes
 * otherwise).
 */
#include "tracker.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATIONS_MAX 999
#define MIGRATION_LOCK "7214320914" /* pg_advisory_lock key: one at a time */
/* How long the definitions wait for a lock on a table the workers write
 * (their triggers'): init-db fails, and is retried, rather than hold the
 * workers' writes queued behind it for longer. */
#define DEFS_LOCK_TIMEOUT "'5s'"

/* Applied before the first migration to apply, so that they may use it. */
static const char *const defs_before[] = {"values.sql"};
/* Applied after them, in this order (a view may call a function). */
static const char *const defs_after[] = {"values.sql", "functions.sql",
					 "views.sql"};

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
		log_msg(LOG_ERROR, "%s: %s", dir, strerror(errno));
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
		log_msg(LOG_ERROR, "%s: %s", path, strerror(errno));
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

/* Clear r, the result of what; return 0 if it succeeded, else -1 after
 * printing why. */
static int
result_ok(PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	/* Empty: a migration kept for its version, comments only. */
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ||
		 st == PGRES_EMPTY_QUERY;
	if (!ok)
		log_msg(LOG_ERROR, "%s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

/* Run sql, one statement or many, no parameters: 0 or -1 (printed why). */
static int
run(PGconn *c, const char *what, const char *sql)
{
	return result_ok(PQexec(c, sql), what);
}

/* Run the one statement sql with the n text parameters p: 0 or -1. */
static int
run_params(PGconn *c, const char *what, const char *sql, int n,
	   const char *const p[])
{
	return result_ok(PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0), what);
}

/* Ask a yes-or-no question: the one-row, one-column sql with the n text
 * parameters p. 1 yes, 0 no, -1 error (printed why). */
static int
ask(PGconn *c, const char *what, const char *sql, int n, const char *const p[])
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	int out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
		      ? strcmp(PQgetvalue(r, 0, 0), "t") == 0
		      : -1;
	if (out < 0)
		log_msg(LOG_ERROR, "%s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return out;
}

/* Has migration name been applied? 1 yes, 0 no, -1 error. */
static int
applied(PGconn *c, const char *name)
{
	char version[4] = {name[0], name[1], name[2], 0};
	const char *v[1] = {version};
	return ask(c, name,
		   "SELECT EXISTS (SELECT FROM schema_migrations "
		   "WHERE version = $1::int)",
		   1, v);
}

/* Apply migration dir/name in one transaction with its record. */
static int
apply(PGconn *c, const char *dir, const char *name)
{
	char version[4] = {name[0], name[1], name[2], 0};
	char *sql = read_file(dir, name);
	if (!sql)
		return -1;
	const char *p[2] = {version, name};
	int rc = -1;
	/* The definitions are applied again after it (it may have dropped a
	 * view, or changed a table a function reads). */
	if (run(c, "BEGIN", "BEGIN") || run(c, name, sql) ||
	    run_params(c, name,
		       "INSERT INTO schema_migrations (version, name) "
		       "VALUES ($1::int, $2::text)",
		       2, p) ||
	    run(c, name, "DELETE FROM schema_defs") ||
	    run(c, "COMMIT", "COMMIT"))
		goto fail;
	printf("applied %s\n", name);
	rc = 0;
fail:
	if (rc)
		run(c, "ROLLBACK", "ROLLBACK");
	free(sql);
	return rc;
}

/* Is role a login role other than the one running init-db, and no
 * superuser? 1 yes, 0 no (printed why), -1 error. */
static int
service_role_ok(PGconn *c, const char *role)
{
	const char *p[1] = {role};
	PGresult *r = PQexecParams(c,
				   "SELECT rolname = current_user, rolsuper "
				   "FROM pg_roles WHERE rolname = $1::text",
				   1, NULL, p, NULL, NULL, 0);
	int out = -1;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		log_msg(LOG_ERROR, "%s", PQresultErrorMessage(r));
	else if (PQntuples(r) == 0)
		log_msg(LOG_ERROR,
			"TRACKER_DB_SERVICE_ROLE: no "
			"role %s",
			role);
	else if (strcmp(PQgetvalue(r, 0, 0), "t") == 0 ||
		 strcmp(PQgetvalue(r, 0, 1), "t") == 0)
		log_msg(LOG_ERROR,
			"TRACKER_DB_SERVICE_ROLE: %s is "
			"the owner running init-db or a superuser; it must be "
			"a role that cannot change the schema",
			role);
	else
		out = 1;
	PQclear(r);
	return out < 0 ? -1 : out;
}

/* Grant role the rows of every table, view and sequence and every function
 * in schema public, and nothing that changes the schema (no CREATE, no
 * TRUNCATE, not the owner); schema_migrations and schema_defs it may only
 * read. Inside the caller's transaction. Return 0 or -1 (printed why). */
static int
grant_service_role(PGconn *c, const char *role)
{
	char *id = PQescapeIdentifier(c, role, strlen(role));
	if (!id) {
		log_msg(LOG_ERROR, "%s", PQerrorMessage(c));
		return -1;
	}
	static const char *const grants[] = {
	    "GRANT USAGE ON SCHEMA public TO %s",
	    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
	    "public TO %s",
	    "REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA "
	    "public FROM %s",
	    "REVOKE INSERT, UPDATE, DELETE ON schema_migrations, schema_defs "
	    "FROM %s",
	    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %s",
	    "GRANT EXECUTE ON ALL ROUTINES IN SCHEMA public TO %s",
	};
	int rc = -1;
	char sql[512];
	for (size_t i = 0; i < sizeof grants / sizeof *grants; i++) {
		snprintf(sql, sizeof sql, grants[i], id);
		if (run(c, "grant", sql))
			goto done;
	}
	printf("granted %s read and write on schema public\n", role);
	rc = 0;
done:
	PQfreemem(id);
	return rc;
}

/* Apply dir/name unless it is what was last applied, and record its md5,
 * inside the caller's transaction. */
static int
defs_apply_file(PGconn *c, const char *dir, const char *name)
{
	char *sql = read_file(dir, name);
	if (!sql)
		return -1;
	int rc = -1;
	const char *p[2] = {name, sql};
	int changed = ask(c, name,
			  "SELECT md5($2::text) IS DISTINCT FROM "
			  "(SELECT md5 FROM schema_defs WHERE name = $1::text)",
			  2, p);
	if (changed <= 0) {
		rc = changed;
		goto done;
	}
	if (run(c, name, sql) ||
	    run_params(c, name,
		       "INSERT INTO schema_defs (name, md5) "
		       "VALUES ($1::text, md5($2::text)) "
		       "ON CONFLICT (name) DO UPDATE SET "
		       "md5 = excluded.md5, applied_at = now()",
		       2, p))
		goto done;
	printf("applied %s\n", name);
	rc = 0;
done:
	free(sql);
	return rc;
}

/* In one transaction: the n files of definitions in names, then, when role
 * is set, its grants. Return 0 or -1 (printed why). */
static int
defs_apply(PGconn *c, const char *dir, const char *const names[], size_t n,
	   const char *role)
{
	int rc = -1;
	if (run(c, "BEGIN", "BEGIN") ||
	    run(c, "lock_timeout",
		"SET LOCAL lock_timeout = " DEFS_LOCK_TIMEOUT))
		goto done;
	for (size_t i = 0; i < n; i++)
		if (defs_apply_file(c, dir, names[i]))
			goto done;
	if (role && grant_service_role(c, role))
		goto done;
	if (run(c, "COMMIT", "COMMIT"))
		goto done;
	rc = 0;
done:
	if (rc)
		run(c, "ROLLBACK", "ROLLBACK");
	return rc;
}

int
migrate_run(const struct config *cfg)
{
	const char *dir = cfg->schema_dir;
	size_t n = 0;
	char **names = list_migrations(dir, &n);
	if (!names)
		return -1;
	int rc = -1;
	PGconn *c = db_connect(cfg->database_url);
	if (PQstatus(c) != CONNECTION_OK) {
		log_msg(LOG_ERROR, "database: %s", PQerrorMessage(c));
		goto done;
	}
	if (n == 0) {
		log_msg(LOG_ERROR, "no migrations in %s", dir);
		goto done;
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	/* Before anything is applied: a wrong role must not leave a schema
	 * half made. */
	if (cfg->db_service_role &&
	    service_role_ok(c, cfg->db_service_role) != 1)
		goto done;
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
		"applied_at timestamptz NOT NULL DEFAULT now())") ||
	    run(c, "schema_defs",
		"CREATE TABLE IF NOT EXISTS schema_defs ("
		"name text PRIMARY KEY, md5 text NOT NULL, "
		"applied_at timestamptz NOT NULL DEFAULT now())"))
		goto done;
	bool before_done = false;
	for (size_t i = 0; i < n; i++) {
		int was = applied(c, names[i]);
		if (was < 0)
			goto done;
		if (was)
			continue;
		if (!before_done &&
		    defs_apply(c, dir, defs_before,
			       sizeof defs_before / sizeof *defs_before, NULL))
			goto done;
		before_done = true;
		if (apply(c, dir, names[i]))
			goto done;
	}
	if (defs_apply(c, dir, defs_after,
		       sizeof defs_after / sizeof *defs_after,
		       cfg->db_service_role))
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
