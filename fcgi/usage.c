/* Usage samples: POST one or a batch, GET them back (JSON or CSV). */
#include "tracker.h"
#include "isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_LIMIT_DEFAULT 1000
#define READ_LIMIT_MAX 10000

/* SPEC 6.1: a sample stamped further ahead of our clock is refused. */
#define FUTURE_MAX_US (86400LL * 1000000)

static const char *const sample_fields[] = {"cpu_usage", "mem_usage",
					    "timestamp", NULL};

/* The array literals of a POST's samples, one entry each; mem holds NULL
 * where a sample has no mem_usage, and any_mem says whether one has. */
struct sample_arrays {
	struct buf ts, cpu, mem;
	bool any_mem;
};

/* Validate one sample object; append it to the array literals in a.
 * `where` prefixes messages ("[3]." in a batch). Return 0 or -1 (e set). */
static int
sample_read(struct json_object *s, const char *where, bool need_time,
	    struct sample_arrays *a, int64_t *when, struct jerr *e)
{
	double usage, mem;
	int64_t now = isotime_now(), t = now;
	if (!json_object_is_type(s, json_type_object)) {
		snprintf(e->msg, sizeof e->msg,
			 "%s must be an object like "
			 "{\"cpu_usage\": 0.5, "
			 "\"timestamp\": \"...\"}",
			 *where ? where : "the sample");
		return -1;
	}
	if (jv_only(s, where, sample_fields, e))
		return -1;
	int r = jv_number(s, where, "cpu_usage", 0, 1, &usage, e);
	if (r == 0)
		snprintf(e->msg, sizeof e->msg, "%scpu_usage is required",
			 where);
	if (r <= 0)
		return -1;
	int rm = jv_number(s, where, "mem_usage", 0, 1, &mem, e);
	if (rm < 0)
		return -1;
	r = jv_time(s, where, "timestamp", &t, e);
	if (r == 0 && need_time)
		snprintf(e->msg, sizeof e->msg,
			 "%stimestamp is required in a batch", where);
	if (r < 0 || (r == 0 && need_time))
		return -1;
	if (t - now > FUTURE_MAX_US) {
		snprintf(e->msg, sizeof e->msg,
			 "%stimestamp is more than a day ahead of the server's "
			 "clock",
			 where);
		return -1;
	}
	char tbuf[ISOTIME_MAX], cbuf[DOUBLE_MAX], mbuf[DOUBLE_MAX] = "NULL";
	isotime_format(t, tbuf);
	format_double(usage, cbuf);
	if (rm)
		format_double(mem, mbuf);
	buf_printf(&a->ts, "%s%s", a->ts.len ? "," : "{", tbuf);
	buf_printf(&a->cpu, "%s%s", a->cpu.len ? "," : "{", cbuf);
	buf_printf(&a->mem, "%s%s", a->mem.len ? "," : "{", mbuf);
	a->any_mem |= rm > 0;
	*when = t;
	return 0;
}

void
usage_post(struct request *req)
{
	struct jerr e;
	struct sample_arrays a = {0};
	PGresult *res = NULL;
	int64_t when = 0;
	size_t n = 1;

	struct json_object *body = request_json(req, false);
	if (!body)
		return;
	bool batch = json_object_is_type(body, json_type_array);
	if (batch) {
		n = json_object_array_length(body);
		if (n < 1 || n > USAGE_BATCH_MAX) {
			respond_error(req, ERR_INVALID_FIELD,
				      "a batch holds 1 to %d samples (got %zu)",
				      USAGE_BATCH_MAX, n);
			goto done;
		}
		/* All or nothing: check every element before storing any. */
		for (size_t i = 0; i < n; i++) {
			char where[32];
			snprintf(where, sizeof where, "[%zu].", i);
			if (sample_read(json_object_array_get_idx(body, i),
					where, true, &a, &when, &e))
				goto invalid;
		}
	} else if (json_object_is_type(body, json_type_object)) {
		if (sample_read(body, "", false, &a, &when, &e))
			goto invalid;
	} else {
		respond_error(req, ERR_INVALID_JSON,
			      "the body must be a sample object or an array "
			      "of them");
		goto done;
	}
	buf_puts(&a.ts, "}");
	buf_puts(&a.cpu, "}");
	buf_puts(&a.mem, "}");

	char user[INT_PARAM_SIZE], id[INT_PARAM_SIZE];
	const char *params[] = {int_param(user, req->user),
				int_param(id, req->id), a.ts.p, a.cpu.p,
				a.any_mem ? a.mem.p : NULL};
	enum db_status st =
	    db_exec_batch(req->w->db, STMT_USAGE_ADD, req->id, params, &res);
	if (st != DB_OK) {
		respond_db(req, st);
		goto done;
	}
	const char *status = PQgetvalue(res, 0, 0);
	long stored = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	if (strcmp(status, "not_found") == 0) {
		respond_error(req, ERR_NOT_FOUND, "no such test");
		goto done;
	}
	if (strcmp(status, "test_stopped") == 0) {
		respond_error(req, ERR_TEST_STOPPED,
			      "test %lld is stopped; it takes only samples "
			      "stamped up to its end_time",
			      (long long)req->id);
		goto done;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(req->id));
	if (batch) {
		json_object_object_add(o, "received",
				       json_object_new_int64((int64_t)n));
		json_object_object_add(o, "stored",
				       json_object_new_int64(stored));
		respond_json(req, 200, o);
	} else {
		json_object_object_add(
		    o, "above_threshold",
		    json_object_new_boolean(*PQgetvalue(res, 0, 2) == 't'));
		/* A repeat of a stored timestamp stores nothing: 200. */
		respond_json(req, stored ? 201 : 200, o);
	}
	goto done;
invalid:
	respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
done:
	PQclear(res);
	buf_free(&a.ts);
	buf_free(&a.cpu);
	buf_free(&a.mem);
	json_object_put(body);
}

/* Does the Accept header ask for CSV? */
static bool
wants_csv(const char *accept)
{
	return accept && strstr(accept, "text/csv");
}

void
usage_get(struct request *req)
{
	char after[ISOTIME_MAX + 8], lim[16], afterq[ISOTIME_MAX];
	long long limit = READ_LIMIT_DEFAULT;
	int64_t after_us;
	PGresult *res = NULL;

	int ra = request_query(req, "after", after, sizeof after);
	if (ra < 0)
		return;
	if (ra && isotime_parse(after, strlen(after), &after_us)) {
		respond_error(req, ERR_INVALID_FIELD,
			      "after must be a timestamp like "
			      "2026-01-31T13:45:00.250Z (RFC 3339)");
		return;
	}
	int rl = request_query(req, "limit", lim, sizeof lim);
	if (rl < 0)
		return;
	if (rl && parse_whole(lim, 1, READ_LIMIT_MAX, &limit)) {
		respond_error(req, ERR_INVALID_FIELD,
			      "limit must be a whole number from 1 to %d",
			      READ_LIMIT_MAX);
		return;
	}
	char user[INT_PARAM_SIZE], id[INT_PARAM_SIZE], l[INT_PARAM_SIZE];
	if (ra)
		isotime_format(after_us, afterq);
	const char *params[] = {int_param(user, req->user),
				int_param(id, req->id), ra ? afterq : NULL,
				int_param(l, limit)};
	enum db_status st = db_exec(req->w->db, STMT_USAGE_LIST, params, &res);
	if (st != DB_OK) {
		respond_db(req, st);
		return;
	}
	int n = PQntuples(res);
	if (n == 0) {
		respond_error(req, ERR_NOT_FOUND, "no such test");
		goto done;
	}
	if (PQgetisnull(res, 0, 0))
		n = 0; /* the test, without samples (after `after`) */

	if (wants_csv(req->accept)) {
		req->status = 200;
		req->content_type = "text/csv; charset=utf-8";
		buf_puts(&req->out,
			 "timestamp,cpu_usage,above_threshold,mem_usage\r\n");
		for (int i = 0; i < n; i++) {
			char t[ISOTIME_MAX], c[DOUBLE_MAX], m[DOUBLE_MAX] = "";
			isotime_format(strtoll(PQgetvalue(res, i, 0), NULL, 10),
				       t);
			format_double(strtod(PQgetvalue(res, i, 1), NULL), c);
			if (!PQgetisnull(res, i, 3))
				format_double(
				    strtod(PQgetvalue(res, i, 3), NULL), m);
			buf_printf(&req->out, "%s,%s,%s,%s\r\n", t, c,
				   *PQgetvalue(res, i, 2) == 't' ? "true"
								 : "false",
				   m);
		}
		goto done;
	}
	struct json_object *samples = json_object_new_array_ext(n);
	for (int i = 0; i < n; i++) {
		struct json_object *s = json_object_new_object();
		json_object_object_add(
		    s, "timestamp",
		    json_time(strtoll(PQgetvalue(res, i, 0), NULL, 10)));
		json_object_object_add(
		    s, "cpu_usage",
		    json_double(strtod(PQgetvalue(res, i, 1), NULL)));
		json_object_object_add(
		    s, "above_threshold",
		    json_object_new_boolean(*PQgetvalue(res, i, 2) == 't'));
		/* Omitted where absent, as a sample is posted. */
		if (!PQgetisnull(res, i, 3))
			json_object_object_add(
			    s, "mem_usage",
			    json_double(strtod(PQgetvalue(res, i, 3), NULL)));
		json_object_array_add(samples, s);
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(req->id));
	json_object_object_add(o, "samples", samples);
	respond_json(req, 200, o);
done:
	PQclear(res);
}
