/* Usage samples: POST one or a batch, GET them back (JSON or CSV). */
#include "tracker.h"
#include "isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* What a usage read-back answers with. */
enum usage_format { FORMAT_JSON, FORMAT_CSV, FORMAT_NDJSON };

/* Rows per usage_list call while streaming CSV or NDJSON: a worker holds
 * one page of rows (and its text) at a time, whatever the test's size. */
#define STREAM_PAGE 10000

/* One media range of an Accept header (p..end, parameters included) as a
 * format; -1 when it is none of ours or refused with q=0. */
static int
media_format(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	size_t n = strcspn(p, ";, \t");
	if (n > (size_t)(end - p))
		n = (size_t)(end - p);
	for (const char *q = memchr(p, ';', (size_t)(end - p)); q;
	     q = memchr(q + 1, ';', (size_t)(end - q - 1))) {
		const char *v = q + 1 + strspn(q + 1, " \t");
		if ((*v == 'q' || *v == 'Q') && v[1] == '=' &&
		    strtod(v + 2, NULL) == 0)
			return -1;
	}
	static const struct {
		const char *type;
		enum usage_format format;
	} types[] = {
	    {"application/x-ndjson", FORMAT_NDJSON},
	    {"text/csv", FORMAT_CSV},
	    {"application/json", FORMAT_JSON},
	    {"application/*", FORMAT_JSON},
	    {"*/*", FORMAT_JSON},
	};
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (strlen(types[i].type) == n &&
		    strncasecmp(p, types[i].type, n) == 0)
			return (int)types[i].format;
	return -1;
}

/* The format the Accept header asks for: the first of its media ranges
 * that we offer and it does not refuse (q=0), in the order written (other
 * q-values are not weighed); JSON when none. */
static enum usage_format
usage_format(const char *accept)
{
	for (const char *p = accept ? accept : ""; *p;) {
		const char *end = p + strcspn(p, ",");
		int f = media_format(p, end);
		if (f >= 0)
			return (enum usage_format)f;
		p = *end ? end + 1 : end;
	}
	return FORMAT_JSON;
}

/* One sample of a usage_list result (row i) as the API shows it: the one
 * place its fields are named, for the JSON array and NDJSON lines. */
static struct json_object *
sample_json(PGresult *res, int i)
{
	struct json_object *s = json_object_new_object();
	json_object_object_add(
	    s, "timestamp",
	    json_time(strtoll(PQgetvalue(res, i, 0), NULL, 10)));
	json_object_object_add(
	    s, "cpu_usage", json_double(strtod(PQgetvalue(res, i, 1), NULL)));
	json_object_object_add(
	    s, "above_threshold",
	    json_object_new_boolean(*PQgetvalue(res, i, 2) == 't'));
	/* Omitted where absent, as a sample is posted. */
	if (!PQgetisnull(res, i, 3))
		json_object_object_add(
		    s, "mem_usage",
		    json_double(strtod(PQgetvalue(res, i, 3), NULL)));
	return s;
}

/* The CSV answer's first line: the columns sample_csv writes. */
#define CSV_HEADER "timestamp,cpu_usage,above_threshold,mem_usage\r\n"

/* Append row i of a usage_list result to out as a CSV line. */
static void
sample_csv(PGresult *res, int i, struct buf *out)
{
	char t[ISOTIME_MAX], c[DOUBLE_MAX], m[DOUBLE_MAX] = "";
	isotime_format(strtoll(PQgetvalue(res, i, 0), NULL, 10), t);
	format_double(strtod(PQgetvalue(res, i, 1), NULL), c);
	if (!PQgetisnull(res, i, 3)) /* empty where absent */
		format_double(strtod(PQgetvalue(res, i, 3), NULL), m);
	buf_printf(out, "%s,%s,%s,%s\r\n", t, c,
		   *PQgetvalue(res, i, 2) == 't' ? "true" : "false", m);
}

/* Append row i of a usage_list result to out as an NDJSON line. */
static void
sample_ndjson(PGresult *res, int i, struct buf *out)
{
	struct json_object *s = sample_json(res, i);
	buf_put_json(out, s);
	buf_puts(out, "\n");
	json_object_put(s);
}

/* Up to limit samples of the caller's test req->id stamped after
 * *after_us (all when after_us is NULL) into *res, and their count (0:
 * none after it) into *n. DB_OK with *n = -1: no such test of theirs. */
static enum db_status
usage_page(struct request *req, const int64_t *after_us, long long limit,
	   PGresult **res, int *n)
{
	char user[INT_PARAM_SIZE], id[INT_PARAM_SIZE], l[INT_PARAM_SIZE];
	char after[ISOTIME_MAX];
	if (after_us)
		isotime_format(*after_us, after);
	const char *params[] = {int_param(user, req->user),
				int_param(id, req->id), after_us ? after : NULL,
				int_param(l, limit)};
	PQclear(*res);
	*res = NULL;
	enum db_status st = db_exec(req->w->db, STMT_USAGE_LIST, params, res);
	if (st != DB_OK)
		return st;
	*n = PQntuples(*res);
	if (*n == 0)
		*n = -1;
	else if (PQgetisnull(*res, 0, 0))
		*n = 0; /* the test, without samples (after `after`) */
	return DB_OK;
}

/* usage_page for the first page of an answer: return 0, or -1 after
 * answering the error (503/500, or 404 when the test is not the caller's). */
static int
first_page(struct request *req, const int64_t *after_us, long long limit,
	   PGresult **res, int *n)
{
	enum db_status st = usage_page(req, after_us, limit, res, n);
	if (st != DB_OK)
		respond_db(req, st);
	else if (*n < 0)
		respond_error(req, ERR_NOT_FOUND, "no such test");
	return st != DB_OK || *n < 0 ? -1 : 0;
}

/* Rows to ask for with `left` still to send (< 0: all). */
static long long
page_size(long long left)
{
	return left >= 0 && left < STREAM_PAGE ? left : STREAM_PAGE;
}

/*
 * Answer the samples as CSV or NDJSON, streamed: page by page from the
 * database (STREAM_PAGE rows, each page after the last one's timestamp),
 * each written out before the next is read. limit < 0: every sample.
 * What fails before the head is sent is the usual JSON error; after it, the
 * stream is cut short (respond_stream_abort) and the failure logged.
 */
static void
usage_stream(struct request *req, enum usage_format fmt, const int64_t *after,
	     long long limit)
{
	PGresult *res = NULL;
	int64_t last = after ? *after : 0;
	long long left = limit;
	int n;
	long long page = page_size(left);
	if (first_page(req, after, page, &res, &n))
		goto done;
	bool csv = fmt == FORMAT_CSV;
	if (respond_stream_begin(req, 200,
				 csv ? "text/csv; charset=utf-8"
				     : "application/x-ndjson"))
		goto done;
	if (csv)
		buf_puts(&req->out, CSV_HEADER);
	for (;;) {
		for (int i = 0; i < n; i++)
			(csv ? sample_csv : sample_ndjson)(res, i, &req->out);
		if (n > 0)
			last = strtoll(PQgetvalue(res, n - 1, 0), NULL, 10);
		if (left >= 0)
			left -= n;
		if (respond_stream_flush(req) || n < page || left == 0)
			break;
		page = page_size(left);
		enum db_status st = usage_page(req, &last, page, &res, &n);
		if (st != DB_OK || n < 0) {
			log_msg(LOG_ERROR,
				"usage of test %lld: reading a page failed "
				"mid-stream (%s); the answer is cut short",
				(long long)req->id,
				st != DB_OK ? "database" : "test deleted");
			respond_stream_abort(req);
			break;
		}
	}
done:
	PQclear(res);
}

/* Answer one page of samples as {"id", "samples": [...]}. */
static void
usage_json(struct request *req, const int64_t *after, long long limit)
{
	PGresult *res = NULL;
	int n;
	if (first_page(req, after, limit, &res, &n))
		goto done;
	struct json_object *samples = json_object_new_array_ext(n);
	for (int i = 0; i < n; i++)
		json_object_array_add(samples, sample_json(res, i));
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(req->id));
	json_object_object_add(o, "samples", samples);
	respond_json(req, 200, o);
done:
	PQclear(res);
}

void
usage_get(struct request *req)
{
	char after[ISOTIME_MAX + 8];
	long long limit = READ_LIMIT_DEFAULT;
	int64_t after_us;

	int ra = request_query(req, "after", after, sizeof after);
	if (ra < 0)
		return;
	if (ra && isotime_parse(after, strlen(after), &after_us)) {
		respond_error(req, ERR_INVALID_FIELD,
			      "after must be a timestamp like "
			      "2026-01-31T13:45:00.250Z (RFC 3339)");
		return;
	}
	int rl = request_query_whole(req, "limit", 1, READ_LIMIT_MAX, &limit);
	if (rl < 0)
		return;
	enum usage_format fmt = usage_format(req->accept);
	const int64_t *a = ra ? &after_us : NULL;
	if (fmt == FORMAT_JSON)
		usage_json(req, a, limit);
	else /* NDJSON without a limit: the whole test */
		usage_stream(req, fmt, a,
			     fmt == FORMAT_NDJSON && !rl ? -1 : limit);
}
