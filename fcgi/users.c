/*
 * POST /api/v1/users (registration), POST /api/v1/auth (log in), DELETE
 * /api/v1/auth (log out everywhere) and POST /api/v1/users/me/password.
 */
#include "tracker.h"
#include "isotime.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERNAME_MAX 64
#define EMAIL_MAX 254
#define SESSIONS_KEPT "1000" /* per user: a login ends older sessions */

static const char *const user_fields[] = {"username", "password", "email",
					  NULL};
static const char *const auth_fields[] = {"username", "password", NULL};
static const char *const password_fields[] = {"password", "new_password", NULL};

/* 1-64 of [A-Za-z0-9_.-] (SPEC section 3). */
static bool
username_ok(const char *s, size_t len)
{
	return len >= 1 && len <= USERNAME_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == len;
}

/* One @ with text on both sides, no spaces or control characters. */
static bool
email_ok(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || !at[1] || strchr(at + 1, '@'))
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* Read username and password (both required) from body o. Return 0, or -1
 * after answering 400. */
static int
read_credentials(struct request *req, struct json_object *o, const char **user,
		 size_t *ulen, const char **pw, size_t *pwlen)
{
	struct jerr e;
	int r = jv_string(o, "", "username", 0, SIZE_MAX, user, ulen, &e);
	if (r == 0)
		snprintf(e.msg, sizeof e.msg, "username is required");
	if (r <= 0)
		goto bad;
	r = jv_string(o, "", "password", 0, SIZE_MAX, pw, pwlen, &e);
	if (r == 0)
		snprintf(e.msg, sizeof e.msg, "password is required");
	if (r <= 0)
		goto bad;
	return 0;
bad:
	respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
	return -1;
}

/* A new password's length (SPEC 3). Return true, or false after 400. */
static bool
password_length_ok(struct request *req, const char *key, size_t len)
{
	if (len >= PASSWORD_MIN && len <= PASSWORD_MAX)
		return true;
	respond_error(req, ERR_INVALID_FIELD, "%s must be %d to %d bytes long",
		      key, PASSWORD_MIN, PASSWORD_MAX);
	return false;
}

void
users_post(struct request *req)
{
	struct jerr e;
	const char *user, *pw, *email = NULL;
	size_t ulen, pwlen;
	char hash[crypto_pwhash_STRBYTES];
	PGresult *res = NULL;

	struct json_object *o = request_object(req, user_fields, false);
	if (!o || read_credentials(req, o, &user, &ulen, &pw, &pwlen))
		goto done;
	if (!username_ok(user, ulen)) {
		respond_error(req, ERR_INVALID_FIELD,
			      "username must be 1 to 64 characters of "
			      "A-Z a-z 0-9 _ . -");
		goto done;
	}
	if (!password_length_ok(req, "password", pwlen))
		goto done;
	int r = jv_string(o, "", "email", 0, EMAIL_MAX, &email, NULL, &e);
	if (r < 0 || (r > 0 && !email_ok(email))) {
		respond_error(req, ERR_INVALID_FIELD, "%s",
			      r < 0 ? e.msg
				    : "email must look like name@example.org");
		goto done;
	}
	if (password_hash(pw, pwlen, hash, sizeof hash)) {
		respond_error(req, ERR_INTERNAL, "could not hash the password");
		goto done;
	}
	const char *params[] = {user, hash, email};
	enum db_status st = db_exec(req->w->db, STMT_USER_CREATE, params, &res);
	if (st == DB_UNIQUE) {
		respond_error(req, ERR_USERNAME_TAKEN,
			      "username \"%s\" is already taken", user);
		goto done;
	}
	if (st != DB_OK) {
		respond_db(req, st);
		goto done;
	}
	struct json_object *out = json_object_new_object();
	json_object_object_add(
	    out, "id",
	    json_object_new_int64(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
	json_object_object_add(out, "username", json_object_new_string(user));
	respond_json(req, 201, out);
done:
	sodium_memzero(hash, sizeof hash);
	PQclear(res);
	json_object_put(o);
}

/* A hash to verify unknown users against, so that they cost the same. Made
 * once per worker, on first need. */
static char dummy[crypto_pwhash_STRBYTES];
static bool dummy_ok;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
dummy_make(void)
{
	dummy_ok =
	    password_hash("grasshopper-dummy", 17, dummy, sizeof dummy) == 0;
}

static const char *
dummy_hash(void)
{
	pthread_once(&dummy_once, dummy_make);
	return dummy_ok ? dummy : NULL;
}

void
auth_post(struct request *req)
{
	const char *user, *pw;
	size_t ulen, pwlen;
	PGresult *res = NULL;

	struct json_object *o = request_object(req, auth_fields, false);
	if (!o || read_credentials(req, o, &user, &ulen, &pw, &pwlen))
		goto done;

	int found = 0;
	if (username_ok(user, ulen) && pwlen <= PASSWORD_MAX) {
		const char *params[] = {user};
		enum db_status st =
		    db_exec(req->w->db, STMT_USER_FIND, params, &res);
		if (st != DB_OK) {
			respond_db(req, st);
			goto done;
		}
		found = PQntuples(res) == 1;
	}
	const char *hash = found ? PQgetvalue(res, 0, 1) : dummy_hash();
	bool match = hash && password_verify(hash, pw, pwlen) && found;
	if (!match) {
		/* The same answer for an unknown user and a wrong password. */
		respond_error(req, ERR_UNAUTHORIZED,
			      "invalid username or password");
		goto done;
	}
	const char *id = PQgetvalue(res, 0, 0);
	if (password_needs_rehash(hash)) {
		char fresh[crypto_pwhash_STRBYTES];
		PGresult *r2 = NULL;
		if (password_hash(pw, pwlen, fresh, sizeof fresh) == 0) {
			const char *p2[] = {id, fresh, hash};
			if (db_exec(req->w->db, STMT_USER_REHASH, p2, &r2) ==
			    DB_OK)
				PQclear(r2);
		}
	}
	const struct config *cfg = req->w->cfg;
	int64_t now = isotime_now() / 1000000, exp = now + cfg->token_ttl;
	char expires[INT_PARAM_SIZE];
	const char *p3[] = {id, int_param(expires, exp), SESSIONS_KEPT};
	PGresult *row = NULL;
	enum db_status st = db_exec(req->w->db, STMT_SESSION_CREATE, p3, &row);
	if (st != DB_OK) {
		respond_db(req, st);
		goto done;
	}
	char *token = token_issue(
	    cfg->jwt_secret, cfg->jwt_secret_len, strtoll(id, NULL, 10),
	    strtoll(PQgetvalue(row, 0, 0), NULL, 10), now, exp);
	PQclear(row);
	if (!token) {
		respond_error(req, ERR_INTERNAL, "could not issue a token");
		goto done;
	}
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "token", json_object_new_string(token));
	json_object_object_add(out, "expires_at", json_time(exp * 1000000));
	respond_json(req, 200, out);
	free(token);
done:
	PQclear(res);
	json_object_put(o);
}

void
auth_delete(struct request *req)
{
	char user[INT_PARAM_SIZE];
	PGresult *res = NULL;
	const char *params[] = {int_param(user, req->user)};
	enum db_status st =
	    db_exec(req->w->db, STMT_USER_REVOKE_ALL, params, &res);
	if (st != DB_OK) {
		respond_db(req, st);
		return;
	}
	PQclear(res);
	respond_empty(req, 204);
}

/* Answer 403 wrong_password. */
static void
wrong_password(struct request *req)
{
	respond_error(req, ERR_WRONG_PASSWORD,
		      "the current password is not right");
}

void
password_post(struct request *req)
{
	struct jerr e;
	const char *pw, *fresh;
	size_t pwlen, freshlen;
	char user[INT_PARAM_SIZE], hash[crypto_pwhash_STRBYTES];
	PGresult *res = NULL, *set = NULL;
	int_param(user, req->user);

	struct json_object *o = request_object(req, password_fields, false);
	if (!o)
		goto done;
	int r = jv_string(o, "", "password", 0, SIZE_MAX, &pw, &pwlen, &e);
	if (r > 0)
		r = jv_string(o, "", "new_password", 0, SIZE_MAX, &fresh,
			      &freshlen, &e);
	if (r == 0)
		snprintf(e.msg, sizeof e.msg,
			 "password and new_password are required");
	if (r <= 0) {
		respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
		goto done;
	}
	if (!password_length_ok(req, "new_password", freshlen))
		goto done;
	const char *params[] = {user};
	enum db_status st = db_exec(req->w->db, STMT_USER_HASH, params, &res);
	if (st != DB_OK) {
		respond_db(req, st);
		goto done;
	}
	if (PQntuples(res) != 1) { /* deleted since the token was checked */
		respond_error(req, ERR_UNAUTHORIZED, "the user is gone");
		goto done;
	}
	const char *old = PQgetvalue(res, 0, 0);
	if (pwlen > PASSWORD_MAX || !password_verify(old, pw, pwlen)) {
		wrong_password(req);
		goto done;
	}
	if (password_hash(fresh, freshlen, hash, sizeof hash)) {
		respond_error(req, ERR_INTERNAL, "could not hash the password");
		goto done;
	}
	/* One statement, so one transaction: the new hash, only over the one
	 * we checked, and the end of every token. */
	const char *p2[] = {user, old, hash};
	st = db_exec(req->w->db, STMT_USER_PASSWORD_SET, p2, &set);
	if (st != DB_OK) {
		respond_db(req, st);
		goto done;
	}
	if (strcmp(PQgetvalue(set, 0, 0), "t") != 0) {
		wrong_password(req); /* changed by another request meanwhile */
		goto done;
	}
	respond_empty(req, 204);
done:
	sodium_memzero(hash, sizeof hash);
	PQclear(set);
	PQclear(res);
	json_object_put(o);
}
