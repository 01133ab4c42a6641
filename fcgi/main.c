/*
 * grasshopper-tracker: the service's entry point.
 *   init-db   create or upgrade the schema
 *   serve     run the FastCGI worker pool
 */
#include "config.h"
#include "tracker.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: grasshopper-tracker COMMAND\n"
    "\n"
    "commands:\n"
    "  init-db   create or upgrade the database schema, then exit\n"
    "  serve     run the FastCGI worker pool until SIGTERM or SIGINT\n"
    "  version   print the version\n"
    "  help      print this help\n"
    "\n"
    "environment:\n"
    "  TRACKER_DATABASE_URL      PostgreSQL connection string or URI\n"
    "  TRACKER_JWT_SECRET        token signing secret (>= 32 bytes), or\n"
    "  TRACKER_JWT_SECRET_FILE   a file that holds it\n"
    "  TRACKER_LISTEN            unix socket path or HOST:PORT "
    "(default 127.0.0.1:9000)\n"
    "  TRACKER_WORKERS           worker processes (default: CPU cores)\n"
    "  TRACKER_THREADS           requests each worker serves at once "
    "(default 32)\n"
    "  TRACKER_DB_CONNECTIONS    PostgreSQL connections per worker "
    "(default 1)\n"
    "  TRACKER_DB_WAIT           how long a request waits for an "
    "unreachable\n"
    "                            database before 503, e.g. 5 or 1m "
    "(default 5s)\n"
    "  TRACKER_SCHED             batch (default) or other: the workers'\n"
    "                            scheduling policy\n"
    "  TRACKER_TOKEN_TTL         token lifetime, e.g. 3600 or 30d "
    "(default 30d)\n"
    "  TRACKER_SCHEMA_DIR        migrations for init-db\n"
    "  TRACKER_DB_SERVICE_ROLE   init-db grants this role read and write\n"
    "                            on every table, not schema changes\n";

int
main(int argc, char **argv)
{
	const char *cmd = argc == 2 ? argv[1] : NULL;
	if (!cmd) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0 ||
	    strcmp(cmd, "-V") == 0) {
		puts("grasshopper-tracker " PACKAGE_VERSION);
		return 0;
	}
	bool serve = strcmp(cmd, "serve") == 0;
	if (!serve && strcmp(cmd, "init-db") != 0) {
		log_msg(LOG_ERROR, "unknown command '%s'", cmd);
		fprintf(stderr, "\n%s", usage);
		return 2;
	}

	setvbuf(stderr, NULL, _IOLBF, 0);
	if (sodium_init() < 0) {
		log_msg(LOG_ERROR, "libsodium failed to start");
		return 1;
	}
	struct config cfg;
	char err[512];
	if (config_load(&cfg, serve, err, sizeof err)) {
		log_msg(LOG_ERROR, "%s", err);
		return 1;
	}
	int rc = serve ? pool_serve(&cfg) : (migrate_run(&cfg) ? 1 : 0);
	config_free(&cfg);
	return rc;
}
