/* Tests (runs): create, list, get, stop. */
#include "tracker.h"
#include "isotime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_CHARS 255
#define DESCRIPTION_MAX_CHARS 4096
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 200

static const char *const create_fields[] = {"name", "description", "threshold",
					    "start_time", NULL};
static const char *const stop_fields[] = {"end_time", NULL};

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
	return o;
}

void
test_create(struct request *req)
{
	struct jerr e;
	const char *name = "unnamed", *description = "";
	double threshold = 0.5;
	int64_t start = isotime_now();
	PGresult *res = NULL;

	struct json_object *o = request_object(req, create_fields, true);
	if (!o)
		return;
	if (jv_string(o, "", "name", 1, NAME_MAX_CHARS, &name, NULL, &e) < 0 ||
	    jv_string(o, "", "description", 0, DESCRIPTION_MAX_CHARS,
		      &description, NULL, &e) < 0 ||
	    jv_number(o, "", "threshold", 0, 1, &threshold, &e) < 0 ||
	    jv_time(o, "", "start_time", &start, &e) < 0) {
		respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
		goto done;
	}
	char user[INT_PARAM_SIZE], max[INT_PARAM_SIZE], thr[32],
	    st[ISOTIME_MAX];
	int_param(user, req->user);
	int_param(max, req->w->cfg->max_active_tests);
	snprintf(thr, sizeof thr, "%.17g", threshold);
	isotime_format(start, st);
	const char *params[] = {user, name, description, thr, st, max};
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

void
test_list(struct request *req)
{
	char lim[16], before[32];
	long long limit = LIST_LIMIT_DEFAULT, b = 0;
	PGresult *res = NULL;

	int rl = request_query(req, "limit", lim, sizeof lim);
	int rb = request_query(req, "before", before, sizeof before);
	if (rl < 0 || rb < 0)
		return;
	if (rl && parse_whole(lim, 1, LIST_LIMIT_MAX, &limit)) {
		respond_error(req, ERR_INVALID_FIELD,
			      "limit must be a whole number from 1 to %d",
			      LIST_LIMIT_MAX);
		return;
	}
	if (rb && parse_whole(before, 1, INT64_MAX, &b)) {
		respond_error(req, ERR_INVALID_FIELD,
			      "before must be a test id (a positive integer)");
		return;
	}
	char user[INT_PARAM_SIZE], l[INT_PARAM_SIZE];
	const char *params[] = {int_param(user, req->user), rb ? before : NULL,
				int_param(l, limit)};
	enum db_status s = db_exec(req->w->db, STMT_TEST_LIST, params, &res);
	if (s != DB_OK) {
		respond_db(req, s);
		return;
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
	PQclear(res);
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
	if (jv_time(o, "", "end_time", &end, &e) < 0) {
		respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
		goto done;
	}
	char user[INT_PARAM_SIZE], id[INT_PARAM_SIZE], et[ISOTIME_MAX];
	isotime_format(end, et);
	const char *params[] = {int_param(user, req->user),
				int_param(id, req->id), et};
	enum db_status s = db_exec(req->w->db, STMT_TEST_STOP, params, &res);
	if (s != DB_OK) {
		respond_db(req, s);
		goto done;
	}
	/* One call stops the test and returns it (schema: test_end). */
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
