/* Tests (runs): create, list, get, stop, baseline. */
#include "tracker.h"
#include "isotime.h"
#include "utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_CHARS 255
#define DESCRIPTION_MAX_CHARS 4096
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 200
/* SPEC 6.3: a test's tags. */
#define TAGS_MAX 32
#define TAG_KEY_MAX_CHARS 64
#define TAG_VALUE_MAX_CHARS 256
/* tag=KEY:VALUE decoded, at most 4 bytes a character, and its NUL. */
#define TAG_QUERY_SIZE (TAG_KEY_MAX_CHARS + 1 + 4 * TAG_VALUE_MAX_CHARS + 1)
/* The command's resources at stop: seconds of CPU, KiB of RSS. */
#define COMMAND_CPU_MAX 1e12
#define COMMAND_RSS_MAX 9007199254740992.0 /* 2^53: exact in a double */
/* The status the client exits with: the command's, or 128+N (signal N). */
#define EXIT_STATUS_MAX 255
/* SPEC 6.4: how many earlier runs a baseline is the median of. */
#define BASELINE_RUNS_DEFAULT 10
#define BASELINE_RUNS_MAX 100

static const char *const create_fields[] = {
    "name", "description", "threshold", "start_time", "tags", NULL};
static const char *const stop_fields[] = {
    "end_time", "exit_status", "user_cpu", "system_cpu", "max_rss", NULL};

static int64_t
col_int(PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static double
col_double(PGresult *res, int row, int col)
{
	return strtod(PQgetvalue(res, row, col), NULL);
}

/* Add a figure's peak and mean over its n samples to o: null when n is 0
 * (max is then NULL in the row, read as 0 and not used). */
static void
peak_mean_add(struct json_object *o, const char *max_key, const char *mean_key,
	      int64_t n, double max, double sum)
{
	json_object_object_add(o, max_key, n ? json_double(max) : NULL);
	json_object_object_add(o, mean_key,
			       n ? json_double(sum / (double)n) : NULL);
}

/* The column as a JSON number, null when NULL. */
static struct json_object *
col_number(PGresult *res, int row, int col, bool whole)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return whole ? json_object_new_int64(col_int(res, row, col))
		     : json_double(col_double(res, row, col));
}

/* The command's own resources (SPEC 6.3), null when the stop reported
 * none of them. */
static struct json_object *
command_json(PGresult *res, int row)
{
	if (PQgetisnull(res, row, TC_EXIT_STATUS) &&
	    PQgetisnull(res, row, TC_USER_CPU) &&
	    PQgetisnull(res, row, TC_SYSTEM_CPU) &&
	    PQgetisnull(res, row, TC_MAX_RSS))
		return NULL;
	struct json_object *c = json_object_new_object();
	json_object_object_add(c, "exit_status",
			       col_number(res, row, TC_EXIT_STATUS, true));
	json_object_object_add(c, "user_cpu",
			       col_number(res, row, TC_USER_CPU, false));
	json_object_object_add(c, "system_cpu",
			       col_number(res, row, TC_SYSTEM_CPU, false));
	json_object_object_add(c, "max_rss",
			       col_number(res, row, TC_MAX_RSS, true));
	return c;
}

/* The stored tags (jsonb's text, always an object of strings). */
static struct json_object *
tags_json(PGresult *res, int row)
{
	struct json_object *t =
	    json_tokener_parse(PQgetvalue(res, row, TC_TAGS));
	if (!json_object_is_type(t, json_type_object)) {
		json_object_put(t);
		t = json_object_new_object();
	}
	return t;
}

struct json_object *
test_json(PGresult *res, int row, int64_t now_us)
{
	struct json_object *o = json_object_new_object();
	int64_t start = col_int(res, row, TC_START_US);
	bool active = PQgetisnull(res, row, TC_END_US);
	int64_t end = active ? INT64_MIN : col_int(res, row, TC_END_US);
	int64_t samples = col_int(res, row, TC_SAMPLES);
	int64_t duration = (active ? now_us : end) - start;

	json_object_object_add(o, "id",
			       json_object_new_int64(col_int(res, row, TC_ID)));
	json_object_object_add(
	    o, "name", json_object_new_string(PQgetvalue(res, row, TC_NAME)));
	json_object_object_add(
	    o, "description",
	    json_object_new_string(PQgetvalue(res, row, TC_DESCRIPTION)));
	json_object_object_add(o, "threshold",
			       json_double(col_double(res, row, TC_THRESHOLD)));
	json_object_object_add(o, "active", json_object_new_boolean(active));
	json_object_object_add(o, "start_time", json_time(start));
	json_object_object_add(o, "end_time", json_time(end));
	/* An active test whose start is in the future (a client's clock
	 * ahead of ours) has run for 0 s so far. */
	json_object_object_add(o, "duration",
			       json_seconds(duration > 0 ? duration : 0));
	json_object_object_add(o, "time_above_threshold",
			       json_seconds(col_int(res, row, TC_ABOVE_US)));
	json_object_object_add(o, "samples", json_object_new_int64(samples));
	peak_mean_add(o, "max_cpu_usage", "mean_cpu_usage", samples,
		      col_double(res, row, TC_CPU_MAX),
		      col_double(res, row, TC_CPU_SUM));
	peak_mean_add(o, "max_mem_usage", "mean_mem_usage",
		      col_int(res, row, TC_MEM_SAMPLES),
		      col_double(res, row, TC_MEM_MAX),
		      col_double(res, row, TC_MEM_SUM));
	json_object_object_add(o, "command", command_json(res, row));
	json_object_object_add(o, "tags", tags_json(res, row));
	return o;
}

/* Is key[0..len) a tag's key: 1 to 64 characters of [A-Za-z0-9_./-]? */
static bool
tag_key_ok(const char *key, size_t len)
{
	if (len < 1 || len > TAG_KEY_MAX_CHARS)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("_./-", c)) ||
		    c == '\0')
			return false;
	}
	return true;
}

/* The message for a key that tag_key_ok refuses. */
static void
tag_key_error(struct jerr *e, const char *where, const char *key, size_t len)
{
	snprintf(e->msg, sizeof e->msg,
		 "%stag key \"%.64s%s\" must be 1 to %d characters of "
		 "A-Z a-z 0-9 _ . / -",
		 where, key, len > TAG_KEY_MAX_CHARS ? "..." : "",
		 TAG_KEY_MAX_CHARS);
}

/* Does the JSON text s[0..len) hold the escape \u0000? */
static bool
has_nul_escape(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if (s[i] == '\\') {
			if (s[i + 1] == 'u' && i + 6 <= len &&
			    memcmp(s + i + 2, "0000", 4) == 0)
				return true;
			i++; /* the escaped character */
		}
	return false;
}

/* How many members the body's first "tags" object holds as sent (json-c
 * keeps only the last of a repeated key), or -1; -2 when a key or value
 * holds \u0000 (json-c cuts a key short there). */
static long
tags_sent(const struct request *req)
{
	struct json_value v;
	struct jsonscan sc;
	if (jsonscan_get(req->body, req->body_len, "tags", &v) ||
	    v.type != JSON_OBJECT || jsonscan(&sc, v.p, v.len, SIZE_MAX))
		return -1;
	if (has_nul_escape(v.p, v.len))
		return -2;
	return (long)sc.values - 1; /* each a string: one value a member */
}

/* Check the create's "tags" (SPEC 6.3) and set *text to them as JSON
 * ("{}" when absent; valid while o lives). Return 0, or -1 with e set. */
static int
tags_check(const struct request *req, struct json_object *o, const char **text,
	   struct jerr *e)
{
	struct json_object *tags;
	*text = "{}";
	if (!json_object_object_get_ex(o, "tags", &tags))
		return 0;
	if (!json_object_is_type(tags, json_type_object)) {
		snprintf(e->msg, sizeof e->msg,
			 "tags must be an object of strings");
		return -1;
	}
	int n = json_object_object_length(tags);
	if (n > TAGS_MAX) {
		snprintf(e->msg, sizeof e->msg,
			 "tags holds %d entries; at most %d are allowed", n,
			 TAGS_MAX);
		return -1;
	}
	json_object_object_foreach(tags, key, val)
	{
		const char *s;
		(void)val;
		if (!tag_key_ok(key, strlen(key))) {
			tag_key_error(e, "", key, strlen(key));
			return -1;
		}
		if (jv_string(tags, "tags.", key, 0, TAG_VALUE_MAX_CHARS, &s,
			      NULL, e) < 0)
			return -1;
	}
	long sent = tags_sent(req);
	if (sent != n) {
		snprintf(e->msg, sizeof e->msg,
			 sent == -2 ? "tags must not contain \\u0000"
				    : "tags holds a key more than once");
		return -1;
	}
	*text = json_object_to_json_string_ext(tags, JSON_C_TO_STRING_PLAIN);
	return 0;
}

/* A whole number field of o from 0 to max; like jv_number. */
static int
whole_field(struct json_object *o, const char *key, double max, double *out,
	    struct jerr *e)
{
	struct json_object *v;
	int r = jv_number(o, "", key, 0, max, out, e);
	if (r > 0 && (!json_object_object_get_ex(o, key, &v) ||
		      !json_object_is_type(v, json_type_int))) {
		snprintf(e->msg, sizeof e->msg,
			 "%s must be a whole number from 0 to %.0f", key, max);
		return -1;
	}
	return r;
}

void
test_create(struct request *req)
{
	struct jerr e;
	const char *name = "unnamed", *description = "";
	double threshold = 0.5;
	int64_t start = isotime_now();
	const char *tags;
	PGresult *res = NULL;

	struct json_object *o = request_object(req, create_fields, true);
	if (!o)
		return;
	if (jv_string(o, "", "name", 1, NAME_MAX_CHARS, &name, NULL, &e) < 0 ||
	    jv_string(o, "", "description", 0, DESCRIPTION_MAX_CHARS,
		      &description, NULL, &e) < 0 ||
	    jv_number(o, "", "threshold", 0, 1, &threshold, &e) < 0 ||
	    jv_time(o, "", "start_time", &start, &e) < 0 ||
	    tags_check(req, o, &tags, &e) < 0) {
		respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
		goto done;
	}
	char user[INT_PARAM_SIZE], max[INT_PARAM_SIZE], thr[32],
	    st[ISOTIME_MAX];
	int_param(user, req->user);
	int_param(max, req->w->cfg->max_active_tests);
	snprintf(thr, sizeof thr, "%.17g", threshold);
	isotime_format(start, st);
	const char *params[] = {user, name, description, thr, st, max, tags};
	enum db_status s = db_exec(req->w->db, STMT_TEST_CREATE, params, &res);
	if (s == DB_FOREIGN_KEY) {
		/* A valid token for a user that no longer exists. */
		respond_error(req, ERR_UNAUTHORIZED,
			      "unknown user; log in again");
		goto done;
	}
	if (s != DB_OK) {
		respond_db(req, s);
		goto done;
	}
	if (PQntuples(res) == 0) {
		respond_error(req, ERR_TOO_MANY_ACTIVE_TESTS,
			      "you have %d active tests, the most allowed; "
			      "stop one first",
			      req->w->cfg->max_active_tests);
		goto done;
	}
	respond_json(req, 201, test_json(res, 0, isotime_now()));
done:
	PQclear(res);
	json_object_put(o);
}

/* One tag=KEY:VALUE of the query added to want; return 0, or -1 with e
 * set. */
static int
query_tag_add(struct json_object *want, char *tag, struct jerr *e)
{
	char *colon = strchr(tag, ':');
	size_t klen = colon ? (size_t)(colon - tag) : strlen(tag);
	if (!colon || !tag_key_ok(tag, klen)) {
		if (!colon)
			snprintf(e->msg, sizeof e->msg,
				 "tag must be KEY:VALUE (a colon between)");
		else
			tag_key_error(e, "query parameter tag: ", tag, klen);
		return -1;
	}
	*colon = '\0';
	const char *value = colon + 1;
	size_t vlen = strlen(value);
	if (!utf8_valid(value, vlen)) {
		snprintf(e->msg, sizeof e->msg,
			 "tag %.64s: the value is not UTF-8 text", tag);
		return -1;
	}
	if (utf8_chars(value, vlen) > TAG_VALUE_MAX_CHARS ||
	    json_object_object_get_ex(want, tag, NULL)) {
		snprintf(
		    e->msg, sizeof e->msg,
		    "tag %.64s: a value of at most %d characters, each key "
		    "once",
		    tag, TAG_VALUE_MAX_CHARS);
		return -1;
	}
	json_object_object_add(want, tag, json_object_new_string(value));
	return 0;
}

/* The tags the query asks for (tag=KEY:VALUE, repeatable) into *want
 * (NULL when none); return 0, or -1 after responding 400. */
static int
query_tags(struct request *req, struct json_object **want)
{
	char tag[TAG_QUERY_SIZE];
	struct jerr e;
	size_t pos = 0;
	int r;
	*want = NULL;
	while ((r = request_query_next(req, "tag", &pos, tag, sizeof tag)) >
	       0) {
		if (!*want)
			*want = json_object_new_object();
		if (json_object_object_length(*want) == TAGS_MAX) {
			snprintf(e.msg, sizeof e.msg,
				 "at most %d tag parameters are allowed",
				 TAGS_MAX);
			r = -1;
		} else if (query_tag_add(*want, tag, &e) < 0) {
			r = -1;
		}
		if (r < 0) {
			respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
			break;
		}
	}
	if (r < 0) { /* request_query_next has responded, or we have */
		json_object_put(*want);
		*want = NULL;
	}
	return r;
}

/* Run the list statement the filters call for: name (NULL: any) and want
 * (NULL: any tags); params holds user, before, limit. */
static enum db_status
list_run(struct request *req, const char *params[3], const char *name,
	 struct json_object *want, PGresult **res)
{
	if (!name && !want)
		return db_exec(req->w->db, STMT_TEST_LIST, params, res);
	const char *p[] = {
	    params[0], params[1], params[2], name,
	    want ? json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN)
		 : NULL};
	return db_exec(req->w->db, STMT_TEST_LIST_FILTERED, p, res);
}

void
test_list(struct request *req)
{
	char before[32], name[4 * NAME_MAX_CHARS + 1];
	long long limit = LIST_LIMIT_DEFAULT, b = 0;
	struct json_object *want = NULL;
	PGresult *res = NULL;

	if (request_query_whole(req, "limit", 1, LIST_LIMIT_MAX, &limit) < 0)
		return;
	int rb = request_query(req, "before", before, sizeof before);
	int rn = request_query(req, "name", name, sizeof name);
	if (rb < 0 || rn < 0 || query_tags(req, &want) < 0)
		return;
	if (rb && parse_whole(before, 1, INT64_MAX, &b)) {
		respond_error(req, ERR_INVALID_FIELD,
			      "before must be a test id (a positive integer)");
		goto done;
	}
	char user[INT_PARAM_SIZE], l[INT_PARAM_SIZE];
	const char *params[] = {int_param(user, req->user), rb ? before : NULL,
				int_param(l, limit)};
	enum db_status s = list_run(req, params, rn ? name : NULL, want, &res);
	if (s != DB_OK) {
		respond_db(req, s);
		goto done;
	}
	int n = PQntuples(res);
	int shown = n > limit ? (int)limit : n;
	int64_t now = isotime_now();
	struct json_object *tests = json_object_new_array_ext(shown);
	for (int i = 0; i < shown; i++)
		json_object_array_add(tests, test_json(res, i, now));
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "tests", tests);
	json_object_object_add(
	    o, "next",
	    n > limit ? json_object_new_int64(col_int(res, shown - 1, TC_ID))
		      : NULL);
	respond_json(req, 200, o);
done:
	PQclear(res);
	json_object_put(want);
}

/* Answer with the caller's test req->id, or 404. */
static void
respond_test(struct request *req, int status)
{
	char user[INT_PARAM_SIZE], id[INT_PARAM_SIZE];
	PGresult *res = NULL;
	const char *params[] = {int_param(user, req->user),
				int_param(id, req->id)};
	enum db_status s = db_exec(req->w->db, STMT_TEST_GET, params, &res);
	if (s != DB_OK)
		respond_db(req, s);
	else if (PQntuples(res) == 0)
		respond_error(req, ERR_NOT_FOUND, "no such test");
	else
		respond_json(req, status, test_json(res, 0, isotime_now()));
	PQclear(res);
}

void
test_get(struct request *req)
{
	respond_test(req, 200);
}

void
test_stop(struct request *req)
{
	struct jerr e;
	int64_t end = isotime_now();
	PGresult *res = NULL;

	struct json_object *o = request_object(req, stop_fields, true);
	if (!o)
		return;
	double cpu[2] = {0, 0}, rss = 0, exit_status = 0;
	int has_exit, has_user, has_system, has_rss;
	if (jv_time(o, "", "end_time", &end, &e) < 0 ||
	    (has_exit = whole_field(o, "exit_status", EXIT_STATUS_MAX,
				    &exit_status, &e)) < 0 ||
	    (has_user = jv_number(o, "", "user_cpu", 0, COMMAND_CPU_MAX,
				  &cpu[0], &e)) < 0 ||
	    (has_system = jv_number(o, "", "system_cpu", 0, COMMAND_CPU_MAX,
				    &cpu[1], &e)) < 0 ||
	    (has_rss = whole_field(o, "max_rss", COMMAND_RSS_MAX, &rss, &e)) <
		0) {
		respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
		goto done;
	}
	char user[INT_PARAM_SIZE], id[INT_PARAM_SIZE], et[ISOTIME_MAX],
	    uc[DOUBLE_MAX], sc[DOUBLE_MAX], kib[INT_PARAM_SIZE],
	    code[INT_PARAM_SIZE];
	isotime_format(end, et);
	format_double(cpu[0], uc);
	format_double(cpu[1], sc);
	const char *params[] = {int_param(user, req->user),
				int_param(id, req->id),
				et,
				has_user ? uc : NULL,
				has_system ? sc : NULL,
				has_rss ? int_param(kib, (int64_t)rss) : NULL,
				has_exit ? int_param(code, (int64_t)exit_status)
					 : NULL};
	enum db_status s = db_exec(req->w->db, STMT_TEST_STOP, params, &res);
	if (s != DB_OK) {
		respond_db(req, s);
		goto done;
	}
	/* One call stops the test and returns it (schema: test_finish_exit). */
	const char *status = PQgetvalue(res, 0, TC__COUNT);
	if (strcmp(status, "not_found") == 0)
		respond_error(req, ERR_NOT_FOUND, "no such test");
	else if (strcmp(status, "already_stopped") == 0)
		respond_error(req, ERR_ALREADY_STOPPED,
			      "test %lld is already stopped",
			      (long long)req->id);
	else if (strcmp(status, "before_start") == 0)
		respond_error(req, ERR_INVALID_FIELD,
			      "end_time %s is before the test's start_time",
			      et);
	else
		respond_json(req, 200, test_json(res, 0, isotime_now()));
done:
	PQclear(res);
	json_object_put(o);
}

/* The columns of STMT_TEST_BASELINE after runs, each a median, and the
 * keys they answer under (SPEC 6.4). */
static const char *const baseline_figures[] = {
    "duration",	     "time_above_threshold",
    "max_cpu_usage", "mean_cpu_usage",
    "max_mem_usage", "user_cpu",
    "system_cpu",    "max_rss"};

/* The baseline row of res as the API's object for test id. */
static struct json_object *
baseline_json(PGresult *res, int64_t id)
{
	struct json_object *o = json_object_new_object();
	struct json_object *runs = json_tokener_parse(PQgetvalue(res, 0, 0));
	if (!json_object_is_type(runs, json_type_array)) {
		json_object_put(runs);
		runs = json_object_new_array();
	}
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(
	    o, "count", json_object_new_int64(json_object_array_length(runs)));
	json_object_object_add(o, "runs", runs);
	for (int i = 0;
	     i < (int)(sizeof baseline_figures / sizeof baseline_figures[0]);
	     i++)
		json_object_object_add(o, baseline_figures[i],
				       col_number(res, 0, 1 + i, false));
	return o;
}

void
test_baseline(struct request *req)
{
	long long runs = BASELINE_RUNS_DEFAULT;
	PGresult *res = NULL;

	if (request_query_whole(req, "runs", 1, BASELINE_RUNS_MAX, &runs) < 0)
		return;
	char user[INT_PARAM_SIZE], id[INT_PARAM_SIZE], n[INT_PARAM_SIZE];
	const char *params[] = {int_param(user, req->user),
				int_param(id, req->id), int_param(n, runs)};
	enum db_status s =
	    db_exec(req->w->db, STMT_TEST_BASELINE, params, &res);
	if (s != DB_OK)
		respond_db(req, s);
	else if (PQntuples(res) == 0)
		respond_error(req, ERR_NOT_FOUND, "no such test");
	else
		respond_json(req, 200, baseline_json(res, req->id));
	PQclear(res);
}
