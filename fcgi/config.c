/* Configuration from the environment (SPEC section 5). */
#include "tracker.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_FILE_MAX 4096

/* Read at most SECRET_FILE_MAX bytes of path into a new string, dropping
 * one trailing newline (and \r). Return NULL with a reason in err. */
static char *
read_secret_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "TRACKER_JWT_SECRET_FILE %s: %s", path,
			 strerror(errno));
		return NULL;
	}
	char *s = xmalloc(SECRET_FILE_MAX + 2);
	size_t n = fread(s, 1, SECRET_FILE_MAX + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad || n > SECRET_FILE_MAX) {
		snprintf(err, errlen, "TRACKER_JWT_SECRET_FILE %s: %s", path,
			 bad ? "read error" : "longer than 4096 bytes");
		free(s);
		return NULL;
	}
	if (n > 0 && s[n - 1] == '\n')
		n--;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	s[n] = '\0';
	*len = n;
	return s;
}

/* .env.example once shipped TRACKER_JWT_SECRET=change-me-to-the-output-of-
 * openssl-rand-hex-32: public, so refused forever, with any other secret
 * that still holds a "change-me" placeholder. */
#define SECRET_EXAMPLE_MARK "change-me"

/* The number of different byte values in s[0..len). */
static int
distinct_bytes(const char *s, size_t len)
{
	bool seen[256] = {false};
	int n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)s[i];
		n += !seen[b];
		seen[b] = true;
	}
	return n;
}

/* Refuse a secret that is short, repetitive, the shipped example or holds a
 * NUL byte: 0, or -1 with a reason in err that never quotes the secret. */
static int
check_secret(const char *s, size_t len, char *err, size_t errlen)
{
	const char *advice = "(e.g. openssl rand -base64 48)";
	if (len < CONFIG_SECRET_MIN) {
		snprintf(err, errlen,
			 "the JWT secret is %zu bytes; it must be at least %d "
			 "%s",
			 len, CONFIG_SECRET_MIN, advice);
		return -1;
	}
	if (memchr(s, '\0', len)) {
		snprintf(err, errlen, "the JWT secret contains a NUL byte");
		return -1;
	}
	if (strstr(s, SECRET_EXAMPLE_MARK)) {
		snprintf(err, errlen,
			 "the JWT secret is the example's \"%s...\" "
			 "placeholder; generate one %s",
			 SECRET_EXAMPLE_MARK, advice);
		return -1;
	}
	int distinct = distinct_bytes(s, len);
	if (distinct < CONFIG_SECRET_DISTINCT_MIN) {
		snprintf(
		    err, errlen,
		    "the JWT secret has %d distinct bytes; it must have at "
		    "least %d %s",
		    distinct, CONFIG_SECRET_DISTINCT_MIN, advice);
		return -1;
	}
	return 0;
}

/* Load the JWT secret from TRACKER_JWT_SECRET or _FILE (not both). */
static int
load_secret(struct config *cfg, bool need, char *err, size_t errlen)
{
	const char *val = getenv("TRACKER_JWT_SECRET");
	const char *file = getenv("TRACKER_JWT_SECRET_FILE");
	if (val && *val && file && *file) {
		snprintf(err, errlen,
			 "set TRACKER_JWT_SECRET or "
			 "TRACKER_JWT_SECRET_FILE, not both");
		return -1;
	}
	if (file && *file) {
		cfg->jwt_secret =
		    read_secret_file(file, &cfg->jwt_secret_len, err, errlen);
		if (!cfg->jwt_secret)
			return -1;
	} else if (val && *val) {
		cfg->jwt_secret = xstrdup(val);
		cfg->jwt_secret_len = strlen(val);
	} else if (need) {
		snprintf(err, errlen,
			 "no JWT secret: set TRACKER_JWT_SECRET "
			 "or TRACKER_JWT_SECRET_FILE");
		return -1;
	} else {
		return 0;
	}
	return check_secret(cfg->jwt_secret, cfg->jwt_secret_len, err, errlen);
}

/* Parse "/abs/path" or "host:port" with a non-empty host. */
static int
check_listen(const char *s, char *err, size_t errlen)
{
	if (s[0] == '/') {
		if (strlen(s) < 108) /* sizeof sun_path */
			return 0;
		snprintf(err, errlen, "TRACKER_LISTEN: socket path too long");
		return -1;
	}
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s) {
		snprintf(err, errlen,
			 "TRACKER_LISTEN=%s: want an absolute socket path or "
			 "HOST:PORT with a host (e.g. 127.0.0.1:9000)",
			 s);
		return -1;
	}
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535) {
		snprintf(err, errlen, "TRACKER_LISTEN=%s: bad port", s);
		return -1;
	}
	return 0;
}

/* Parse a whole decimal long in [min, max] with an optional unit suffix
 * (s, m, h, d) when units is true. Return 0 or -1. */
static int
parse_long(const char *s, long min, long max, bool units, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	long mult = 1;
	if (units && *end) {
		switch (*end++) {
		case 's':
			mult = 1;
			break;
		case 'm':
			mult = 60;
			break;
		case 'h':
			mult = 3600;
			break;
		case 'd':
			mult = 86400;
			break;
		default:
			return -1;
		}
	}
	if (*end || v > LONG_MAX / mult)
		return -1;
	v *= mult;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A count from the environment variable name, 1 to max, or dflt when it is
 * unset or empty. Return 0, or -1 with the reason in err. */
static int
config_count(const char *name, int dflt, int max, int *out, char *err,
	     size_t errlen)
{
	const char *s = getenv(name);
	long v = dflt;
	if (s && *s && parse_long(s, 1, max, false, &v)) {
		snprintf(err, errlen, "%s=%s: want a number from 1 to %d", name,
			 s, max);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* TRACKER_USER_RATE (0 turns the limit off) and TRACKER_USER_BURST.
 * Return 0, or -1 with the reason in err. */
static int
config_rate(struct config *cfg, char *err, size_t errlen)
{
	const char *s = getenv("TRACKER_USER_RATE");
	cfg->user_rate = CONFIG_USER_RATE_DEFAULT;
	if (s && *s &&
	    parse_long(s, 0, CONFIG_USER_RATE_MAX, false, &cfg->user_rate)) {
		snprintf(err, errlen,
			 "TRACKER_USER_RATE=%s: want requests a second from 0 "
			 "(no limit) to %ld",
			 s, CONFIG_USER_RATE_MAX);
		return -1;
	}
	s = getenv("TRACKER_USER_BURST");
	cfg->user_burst = CONFIG_USER_BURST_DEFAULT;
	if (s && *s &&
	    parse_long(s, 1, CONFIG_USER_RATE_MAX, false, &cfg->user_burst)) {
		snprintf(err, errlen,
			 "TRACKER_USER_BURST=%s: want a number from 1 to %ld",
			 s, CONFIG_USER_RATE_MAX);
		return -1;
	}
	return 0;
}

int
config_load(struct config *cfg, bool need_secret, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof *cfg);
	const char *s = getenv("TRACKER_DATABASE_URL");
	cfg->database_url = xstrdup(s ? s : "");
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(cfg->database_url, &perr);
	if (!opts) {
		/* libpq's message names the bad part; never the password. */
		snprintf(err, errlen, "TRACKER_DATABASE_URL is malformed: %s",
			 perr ? perr : "out of memory");
		if (perr)
			err[strcspn(err, "\n")] = '\0';
		PQfreemem(perr);
		goto fail;
	}
	PQconninfoFree(opts);

	s = getenv("TRACKER_LISTEN");
	cfg->listen = xstrdup(s && *s ? s : "127.0.0.1:9000");
	if (check_listen(cfg->listen, err, errlen))
		goto fail;

	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (config_count("TRACKER_WORKERS",
			 cores > 0 && cores <= CONFIG_WORKERS_MAX ? (int)cores
								  : 2,
			 CONFIG_WORKERS_MAX, &cfg->workers, err, errlen) ||
	    config_count("TRACKER_THREADS", CONFIG_THREADS_DEFAULT,
			 CONFIG_THREADS_MAX, &cfg->threads, err, errlen) ||
	    config_count("TRACKER_DB_CONNECTIONS", CONFIG_DB_CONNS_DEFAULT,
			 CONFIG_DB_CONNS_MAX, &cfg->db_connections, err,
			 errlen))
		goto fail;

	cfg->db_wait = CONFIG_DB_WAIT_DEFAULT;
	s = getenv("TRACKER_DB_WAIT");
	if (s && *s && parse_long(s, 0, 600, true, &cfg->db_wait)) {
		snprintf(err, errlen,
			 "TRACKER_DB_WAIT=%s: want seconds (or with s/m) "
			 "from 0 to 600",
			 s);
		goto fail;
	}

	s = getenv("TRACKER_SCHED");
	cfg->sched_batch = !s || !*s || strcmp(s, "batch") == 0;
	if (!cfg->sched_batch && strcmp(s, "other") != 0) {
		snprintf(err, errlen, "TRACKER_SCHED=%s: want batch or other",
			 s);
		goto fail;
	}

	cfg->token_ttl = CONFIG_TTL_DEFAULT;
	s = getenv("TRACKER_TOKEN_TTL");
	if (s && *s) {
		/* From a minute to ten years. */
		if (parse_long(s, 60, 3650L * 86400, true, &cfg->token_ttl)) {
			snprintf(err, errlen,
				 "TRACKER_TOKEN_TTL=%s: want seconds (or "
				 "with s/m/h/d) from 60 to 3650d",
				 s);
			goto fail;
		}
	}

	if (config_count("TRACKER_MAX_ACTIVE_TESTS",
			 CONFIG_ACTIVE_TESTS_DEFAULT, CONFIG_ACTIVE_TESTS_MAX,
			 &cfg->max_active_tests, err, errlen) ||
	    config_rate(cfg, err, errlen))
		goto fail;

	s = getenv("TRACKER_SCHEMA_DIR");
	cfg->schema_dir = xstrdup(s && *s ? s : PKGDATADIR "/schema");

	s = getenv("TRACKER_DB_SERVICE_ROLE");
	cfg->db_service_role = s && *s ? xstrdup(s) : NULL;

	if (load_secret(cfg, need_secret, err, errlen))
		goto fail;
	return 0;
fail:
	config_free(cfg);
	return -1;
}

void
config_free(struct config *cfg)
{
	free(cfg->database_url);
	if (cfg->jwt_secret) {
		explicit_bzero(cfg->jwt_secret, cfg->jwt_secret_len);
		free(cfg->jwt_secret);
	}
	free(cfg->listen);
	free(cfg->schema_dir);
	free(cfg->db_service_role);
	memset(cfg, 0, sizeof *cfg);
}
