/*
 * grasshopper-tracker: the FastCGI service. One header for the whole
 * service; each section names the file that implements it.
 */
#ifndef GH_TRACKER_H
#define GH_TRACKER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "buf.h"
#include "jsonscan.h"
#include "utf8.h"

/* ---- log.c: every line the tracker writes to standard error --------- */

enum log_level {
	LOG_ERROR,  /* something failed */
	LOG_WARN,   /* the service goes on, degraded or recovering */
	LOG_NOTE,   /* start, stop, what an operator may want to know */
	LOG_ACCESS, /* the per-request line, METHOD PATH STATUS MICROSECONDS,
		       written as it is: no prefix */
};

/* Write one line to standard error: "grasshopper-tracker[PID]: LEVEL: "
 * and the message (newlines in it become blanks). */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- config.c: configuration from the environment (SPEC section 5) --- */

#define CONFIG_SECRET_MIN 32 /* bytes: HS256 wants a key of 256 bits */
/* Fewer different byte values than this is a pattern or a word, not random
 * bytes. Hex has only 16 symbols: 64 random hex digits miss one of them
 * about one time in four, so secrets are generated in base64. */
#define CONFIG_SECRET_DISTINCT_MIN 16
#define CONFIG_WORKERS_MAX 256
#define CONFIG_TTL_DEFAULT (30L * 86400)
#define CONFIG_THREADS_DEFAULT 32 /* requests one worker serves at once */
#define CONFIG_THREADS_MAX 256
#define CONFIG_DB_CONNS_DEFAULT 1 /* PostgreSQL connections per worker */
#define CONFIG_DB_CONNS_MAX 64
#define CONFIG_DB_WAIT_DEFAULT 5L /* s: waiting for the database to return */
#define CONFIG_ACTIVE_TESTS_DEFAULT 100 /* per user (SPEC 6.1) */
#define CONFIG_ACTIVE_TESTS_MAX 1000000
/* Requests a second per user per host, and how many may come at once: 100
 * clients sampling every 0.5 s send 200 a second, and start (or catch up)
 * together; 2.5 times that, and 2 s of it at once (docs/operations.md). */
#define CONFIG_USER_RATE_DEFAULT 500L
#define CONFIG_USER_BURST_DEFAULT 1000L
#define CONFIG_USER_RATE_MAX 1000000L

struct config {
	char *database_url; /* libpq conninfo or URI; "" = libpq defaults */
	char *jwt_secret;   /* NULL when not configured */
	size_t jwt_secret_len;
	char *listen; /* "/abs/path.sock" or "host:port" */
	int workers;
	int threads;	    /* per worker */
	int db_connections; /* per worker */
	long db_wait;	    /* seconds a statement waits for the database */
	bool sched_batch;   /* workers run under SCHED_BATCH */
	long token_ttl;	    /* seconds */
	char *schema_dir;
	int max_active_tests;  /* per user */
	long user_rate;	       /* requests a second per user; 0: no limit */
	long user_burst;       /* requests at once beyond the rate */
	char *db_service_role; /* init-db grants it read-write; NULL: none */
};

/* Fill cfg from the environment. need_secret: refuse without a JWT secret.
 * Return 0, or -1 with a one-line reason in err. */
int config_load(struct config *cfg, bool need_secret, char *err, size_t errlen);
void config_free(struct config *cfg);

/* ---- jsonv.c: strict JSON in, validated fields out -------------------- */

struct jerr {
	char msg[256];
	bool field; /* the message names a field (invalid_field) */
};

/* Parse body strictly (RFC 8259, UTF-8, no NUL byte, depth <= 32, at most
 * max_values values, no lone surrogate). Return the value (caller puts it)
 * or NULL with a message in e. */
struct json_object *jsonv_parse(const char *body, size_t len, size_t max_values,
				struct jerr *e);

/* The getters below return 1 when key is present and valid (setting *out),
 * 0 when absent, -1 when invalid (message in e naming `where`+key). */
int jv_string(struct json_object *o, const char *where, const char *key,
	      size_t min_chars, size_t max_chars, const char **out,
	      size_t *out_len, struct jerr *e);
int jv_number(struct json_object *o, const char *where, const char *key,
	      double min, double max, double *out, struct jerr *e);
int jv_time(struct json_object *o, const char *where, const char *key,
	    int64_t *out_us, struct jerr *e);
/* Return 0 if every key of o is in allowed (NULL-terminated), else -1. */
int jv_only(struct json_object *o, const char *where,
	    const char *const allowed[], struct jerr *e);

/* JSON numbers for the responses: the shortest text that reads back as d,
 * and exact decimal seconds for microseconds. */
#define DOUBLE_MAX 32
void format_double(double d, char out[DOUBLE_MAX]);
struct json_object *json_double(double d);
struct json_object *json_seconds(int64_t us);
struct json_object *json_time(int64_t us); /* null when us == INT64_MIN */

/* ---- auth.c: passwords and tokens -------------------------------------- */

#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024
#define TOKEN_MAX 4096

/* Hash password into out (a PHC string). Return 0, -1 on failure. */
int password_hash(const char *pw, size_t len, char *out, size_t outlen);
/* Return 1 when pw matches hash, 0 otherwise. */
int password_verify(const char *hash, const char *pw, size_t len);
/* Return 1 when hash was made with weaker parameters than today's. */
int password_needs_rehash(const char *hash);

/* Return a new HS256 token for user with id jti (its row in tokens),
 * issued at now and expiring at exp (caller frees). */
char *token_issue(const char *secret, size_t secret_len, int64_t user,
		  int64_t jti, int64_t now, int64_t exp);
/* Check an Authorization header value ("Bearer TOKEN"): signature,
 * algorithm, exp, sub and jti, not its row. Return 0 and set *user and *jti
 * (0 for a legacy token without one) when valid at `now`, -1 otherwise. */
int token_verify(const char *secret, size_t secret_len, const char *header,
		 int64_t now, int64_t *user, int64_t *jti);

/* ---- db.c (its parts: db.h): the worker's statements and connections -- */

enum stmt {
	STMT_PING,
	STMT_USER_CREATE,
	STMT_USER_FIND,
	STMT_USER_REHASH,
	STMT_USER_HASH,
	STMT_USER_PASSWORD_SET,
	STMT_USER_REVOKE_ALL,
	STMT_SESSION_CREATE,
	STMT_TOKEN_CHECK,
	STMT_TOKEN_CREATE,
	STMT_TOKEN_LIST,
	STMT_TOKEN_DELETE,
	STMT_TEST_CREATE,
	STMT_TEST_GET,
	STMT_TEST_LIST,
	STMT_TEST_LIST_FILTERED,
	STMT_TEST_STOP,
	STMT_TEST_BASELINE,
	STMT_USAGE_ADD,
	STMT_USAGE_LIST,
	STMT__COUNT
};

enum db_status {
	DB_OK,		/* *res holds the result */
	DB_UNAVAILABLE, /* connection lost, reconnect failed, or timed out */
	DB_UNIQUE,	/* unique violation (23505) */
	DB_FOREIGN_KEY, /* foreign key violation (23503) */
	DB_ERROR	/* anything else; logged */
};

struct db;
/* Remember how to connect with up to `connections` connections, shared by
 * the worker's threads; each is made on first use. A statement waits up to
 * wait_s seconds for an unreachable database to come back. */
struct db *db_new(const char *url, int connections, long wait_s);
void db_free(struct db *db);
/* Run a prepared statement with text parameters (NULL = SQL NULL); safe
 * from any thread. While the database is unreachable it waits (see
 * db_new) for it to come back before answering DB_UNAVAILABLE. On DB_OK the
 * caller owns *res and PQclear()s it. */
enum db_status db_exec(struct db *db, enum stmt s, const char *const params[],
		       PGresult **res);
/* db_exec for a statement that may share its transaction with others
 * (usage_add): key is the id of the one test it locks, which is also its
 * params[1]. */
enum db_status db_exec_batch(struct db *db, enum stmt s, int64_t key,
			     const char *const params[], PGresult **res);
/* Connect with the service's timeouts (also used by init-db). */
PGconn *db_connect(const char *url);

/* Columns of a test row, in the order every test statement returns them. */
enum test_col {
	TC_ID,
	TC_NAME,
	TC_DESCRIPTION,
	TC_THRESHOLD,
	TC_START_US,
	TC_END_US,
	TC_SAMPLES,
	TC_CPU_SUM,
	TC_CPU_MAX,
	TC_ABOVE_US,
	TC_USER_CPU,
	TC_SYSTEM_CPU,
	TC_MAX_RSS,
	TC_TAGS,
	TC_MEM_SAMPLES,
	TC_MEM_SUM,
	TC_MEM_MAX,
	TC_EXIT_STATUS,
	TC__COUNT /* test_stop's status follows */
};

/* ---- revoke.c: which signed tokens still work (SPEC 6.2) --------------- */

struct revoke;
/* A worker's cache of valid tokens and the thread that listens for
 * revocations on its own connection to url. */
struct revoke *revoke_new(const char *url);
/* Stop the listener and free everything (after the request threads). */
void revoke_free(struct revoke *rv);
/* Does token (user, jti) still work (jti 0: legacy)? Answers from the cache
 * when it can, else asks the database through db. Return DB_OK with *live
 * set, or the status of the failed check. */
enum db_status token_live(struct revoke *rv, struct db *db, int64_t user,
			  int64_t jti, bool *live);

/* ---- migrate.c --------------------------------------------------------- */

/* Apply the migrations of cfg->schema_dir not yet applied, then grant
 * cfg->db_service_role (if set) read-write on them. Return 0 or -1 (logged). */
int migrate_run(const struct config *cfg);

/* ---- ratelimit.c: requests per user, shared by a host's workers -------- */

struct ratelimit;
/* A table shared with the processes forked after this call: rate requests
 * a second per user, burst at once. NULL (no limit) when rate is 0. */
struct ratelimit *ratelimit_new(long rate, long burst);
void ratelimit_free(struct ratelimit *rl);
/* Count a request of user at now_ns (CLOCK_MONOTONIC). Return 0 when it
 * may pass, else the whole seconds until one would. */
long ratelimit_take(struct ratelimit *rl, int64_t user, int64_t now_ns);

/* ---- request.c: read, route, respond ----------------------------------- */

#define BODY_MAX (1024 * 1024)
#define USAGE_BATCH_MAX 1000 /* samples in one POST (SPEC section 3) */

enum api_error {
	ERR_INVALID_JSON,
	ERR_INVALID_FIELD,
	ERR_UNAUTHORIZED,
	ERR_NOT_FOUND,
	ERR_METHOD_NOT_ALLOWED,
	ERR_ALREADY_STOPPED,
	ERR_TEST_STOPPED,
	ERR_USERNAME_TAKEN,
	ERR_WRONG_PASSWORD,
	ERR_TOO_MANY_TOKENS,
	ERR_TOO_LARGE,
	ERR_RATE_LIMITED,
	ERR_TOO_MANY_ACTIVE_TESTS,
	ERR_UNAVAILABLE,
	ERR_INTERNAL,
};

/* What a worker's threads share across requests. */
struct worker {
	const struct config *cfg;
	struct db *db;
	struct revoke *revoke;
	struct ratelimit *limits; /* shared by the host's workers, or NULL */
};

struct request {
	struct worker *w;
	/* in */
	const char *method;
	const char *path;
	const char *query;
	const char *accept;
	const char *authorization;
	char *body;
	size_t body_len;
	bool body_too_large;
	size_t max_values; /* JSON values the route's body may hold */
	int64_t user;	   /* set when the route needs a user */
	int64_t id;	   /* the :id of the route, when it has one */
	/* out */
	int status;
	struct buf headers; /* extra "Name: value\r\n" lines */
	const char *content_type;
	struct buf out;
	/* a streamed answer (respond_stream_begin): its head is written, out
	 * holds what is not sent yet; fcgi_out is the FastCGI stream (NULL
	 * outside a FastCGI request: out then keeps everything) */
	void *fcgi_out;
	bool streamed;
	bool aborted; /* failed mid-stream: end it without its end */
};

/* Route and answer req; fills status, headers and out. */
void request_handle(struct request *req);
void request_free(struct request *req);
/* Read one FastCGI request, handle it, answer it and log it. */
struct FCGX_Request;
void request_serve(struct worker *w, struct FCGX_Request *fr);

/* Answer with obj (takes ownership of it). */
void respond_json(struct request *req, int status, struct json_object *obj);
/* Answer status (204) with no body and no Content-Type. */
void respond_empty(struct request *req, int status);
/* Answer with the API error shape; the message names the field or value. */
void respond_error(struct request *req, enum api_error err, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));
/* Answer for a failed db_exec. */
void respond_db(struct request *req, enum db_status st);
/* Append obj as the API writes JSON (compact, "/" as it is). */
void buf_put_json(struct buf *b, struct json_object *obj);
/* Start a streamed answer: send the head (status, content_type, no
 * Content-Length) now; the handler then appends to req->out and calls
 * respond_stream_flush after each piece. Return 0, or -1 when the client
 * is gone. */
int respond_stream_begin(struct request *req, int status,
			 const char *content_type);
/* Send what req->out holds and empty it. Return 0, or -1 when the client
 * is gone (stop streaming). */
int respond_stream_flush(struct request *req);
/* A streamed answer failed after its head was sent: the status cannot
 * change, so the connection is closed without the answer's end (nginx
 * then omits the final chunk) and the client sees it is cut short. */
void respond_stream_abort(struct request *req);
/* Body as a JSON value, {} when empty and allow_empty; NULL after
 * responding 400 otherwise. Caller puts the value. */
struct json_object *request_json(struct request *req, bool allow_empty);
/* The body as a JSON object holding only keys from fields
 * (NULL-terminated); {} when empty and allow_empty. NULL after responding
 * 400. Caller puts the object. */
struct json_object *request_object(struct request *req,
				   const char *const fields[],
				   bool allow_empty);
/* Query parameter name, percent-decoded into out. Return 1 found, 0 absent,
 * -1 malformed or longer than outlen-1 (after responding 400). */
int request_query(struct request *req, const char *name, char *out,
		  size_t outlen);
/* request_query for a parameter given more than once: each call finds the
 * next one from *pos (start with 0). */
int request_query_next(struct request *req, const char *name, size_t *pos,
		       char *out, size_t outlen);
/* Parse a whole decimal integer (digits only) in [min, max] into *out;
 * return 0 or -1. */
int parse_whole(const char *s, long long min, long long max, long long *out);
/* Query parameter name as a whole number from min to max into *out (left
 * as it is when absent). Return 1 found, 0 absent, -1 after responding
 * 400. */
int request_query_whole(struct request *req, const char *name, long long min,
			long long max, long long *out);
#define INT_PARAM_SIZE 21 /* "-9223372036854775808" and its NUL */
/* n in decimal into buf, for a statement's parameters (a user's, test's or
 * token's id, a limit, a time in seconds); return buf. */
char *int_param(char buf[static INT_PARAM_SIZE], int64_t n);
void header_add(struct request *req, const char *name, const char *value);

/* ---- handlers: users.c, tokens.c, tests.c, usage.c, health.c ---------- */

void users_post(struct request *req);
void auth_post(struct request *req);
void auth_delete(struct request *req);
void password_post(struct request *req);
void tokens_post(struct request *req);
void tokens_get(struct request *req);
void token_delete(struct request *req);
void test_create(struct request *req);
void test_list(struct request *req);
void test_get(struct request *req);
void test_stop(struct request *req);
void test_baseline(struct request *req);
void usage_post(struct request *req);
void usage_get(struct request *req);
void health_get(struct request *req);

/* tests.c: a test row of res as the API's test object. */
struct json_object *test_json(PGresult *res, int row, int64_t now_us);

/* ---- pool.c: master and workers ---------------------------------------- */

/* Open the socket, run the pool until SIGTERM/SIGINT. Return exit status. */
int pool_serve(const struct config *cfg);

#endif
