/*
 * Named tokens (SPEC 6.2): POST /api/v1/tokens, GET /api/v1/tokens and
 * DELETE /api/v1/tokens/:id. Each is a row of `tokens` whose id is the
 * token's jti; deleting the row revokes it (revoke.c).
 */
#include "tracker.h"
#include "isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_NAME_MAX 64	   /* characters (code points) */
#define EXPIRES_IN_MIN 60	   /* seconds */
#define EXPIRES_IN_MAX 31536000	   /* one year */
#define EXPIRES_IN_DEFAULT 7776000 /* 90 days */
#define NAMED_TOKENS_MAX "100"	   /* live named tokens per user */

static const char *const token_fields[] = {"name", "expires_in", NULL};

/* Does s[0..len) (valid UTF-8) hold a control character: C0, DEL or C1? */
static bool
has_control(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return true;
		/* U+0080..U+009F are C2 80..C2 9F in UTF-8. */
		if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 &&
		    p[i + 1] <= 0x9f)
			return true;
	}
	return false;
}

/* Read name (required) and expires_in (optional) from o. Return 0, or -1
 * after answering 400. */
static int
read_token_fields(struct request *req, struct json_object *o, const char **name,
		  long long *expires_in)
{
	struct jerr e;
	size_t len;
	int r = jv_string(o, "", "name", 1, TOKEN_NAME_MAX, name, &len, &e);
	if (r == 0)
		snprintf(e.msg, sizeof e.msg, "name is required");
	if (r <= 0)
		goto bad;
	if (has_control(*name, len)) {
		snprintf(e.msg, sizeof e.msg,
			 "name must not contain control characters");
		goto bad;
	}
	*expires_in = EXPIRES_IN_DEFAULT;
	struct json_object *v;
	if (json_object_object_get_ex(o, "expires_in", &v)) {
		/* An integer of seconds: not 60.0, "60" or null. */
		long long n = json_object_is_type(v, json_type_int)
				  ? (long long)json_object_get_int64(v)
				  : -1;
		if (n < EXPIRES_IN_MIN || n > EXPIRES_IN_MAX) {
			snprintf(e.msg, sizeof e.msg,
				 "expires_in must be a whole number of seconds "
				 "from %d to %d",
				 EXPIRES_IN_MIN, EXPIRES_IN_MAX);
			goto bad;
		}
		*expires_in = n;
	}
	return 0;
bad:
	respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
	return -1;
}

void
tokens_post(struct request *req)
{
	const char *name;
	long long expires_in;
	char *token = NULL;
	PGresult *res = NULL;

	struct json_object *o = request_object(req, token_fields, false);
	if (!o || read_token_fields(req, o, &name, &expires_in))
		goto done;
	const struct config *cfg = req->w->cfg;
	int64_t now = isotime_now() / 1000000, exp = now + expires_in;
	char user[INT_PARAM_SIZE], expires[INT_PARAM_SIZE];
	const char *params[] = {int_param(user, req->user), name,
				int_param(expires, exp), NAMED_TOKENS_MAX};
	enum db_status st =
	    db_exec(req->w->db, STMT_TOKEN_CREATE, params, &res);
	if (st != DB_OK) {
		respond_db(req, st);
		goto done;
	}
	const char *status = PQgetvalue(res, 0, 0);
	if (strcmp(status, "too_many") == 0) {
		respond_error(req, ERR_TOO_MANY_TOKENS,
			      "at most %s named tokens may be live at once; "
			      "revoke one first",
			      NAMED_TOKENS_MAX);
		goto done;
	}
	if (strcmp(status, "ok") != 0) { /* no_user: deleted meanwhile */
		respond_error(req, ERR_UNAUTHORIZED, "the user is gone");
		goto done;
	}
	int64_t id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	token = token_issue(cfg->jwt_secret, cfg->jwt_secret_len, req->user, id,
			    now, exp);
	if (!token) {
		respond_error(req, ERR_INTERNAL, "could not issue a token");
		goto done;
	}
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "id", json_object_new_int64(id));
	json_object_object_add(out, "name", json_object_new_string(name));
	json_object_object_add(out, "token", json_object_new_string(token));
	json_object_object_add(
	    out, "created_at",
	    json_time(strtoll(PQgetvalue(res, 0, 2), NULL, 10)));
	json_object_object_add(out, "expires_at", json_time(exp * 1000000));
	respond_json(req, 201, out);
done:
	free(token);
	PQclear(res);
	json_object_put(o);
}

/* Microseconds in column col of row, INT64_MIN when NULL. */
static int64_t
column_us(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
		   ? INT64_MIN
		   : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

void
tokens_get(struct request *req)
{
	char user[INT_PARAM_SIZE];
	PGresult *res = NULL;
	const char *params[] = {int_param(user, req->user)};
	enum db_status st = db_exec(req->w->db, STMT_TOKEN_LIST, params, &res);
	if (st != DB_OK) {
		respond_db(req, st);
		return;
	}
	struct json_object *list = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		struct json_object *t = json_object_new_object();
		json_object_object_add(t, "id",
				       json_object_new_int64(strtoll(
					   PQgetvalue(res, i, 0), NULL, 10)));
		json_object_object_add(
		    t, "name", json_object_new_string(PQgetvalue(res, i, 1)));
		json_object_object_add(t, "created_at",
				       json_time(column_us(res, i, 2)));
		json_object_object_add(t, "expires_at",
				       json_time(column_us(res, i, 3)));
		json_object_object_add(t, "last_used_at",
				       json_time(column_us(res, i, 4)));
		json_object_array_add(list, t);
	}
	PQclear(res);
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "tokens", list);
	respond_json(req, 200, out);
}

void
token_delete(struct request *req)
{
	char user[INT_PARAM_SIZE], id[INT_PARAM_SIZE];
	PGresult *res = NULL;
	const char *params[] = {int_param(user, req->user),
				int_param(id, req->id)};
	enum db_status st =
	    db_exec(req->w->db, STMT_TOKEN_DELETE, params, &res);
	if (st != DB_OK) {
		respond_db(req, st);
		return;
	}
	bool deleted = PQntuples(res) == 1;
	PQclear(res);
	if (deleted)
		respond_empty(req, 204);
	else /* another user's looks the same as none at all */
		respond_error(req, ERR_NOT_FOUND, "no such token");
}
