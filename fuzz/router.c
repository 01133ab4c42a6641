/*
 * fcgi/request.c: request_handle (the route table, 404/405/413/401, the
 * :id segment) and request_query, with the real token_verify in front.
 * The handlers are stand-ins that check what the router promised them, so
 * nothing here needs a database.
 *
 * Input: METHOD \n PATH \n QUERY \n AUTHORIZATION \n BODY. An
 * AUTHORIZATION of "T" is replaced by a valid token for user 42; an empty
 * one is no header. A BODY starting with '!' is "larger than 1 MiB".
 * Every answer must be strict JSON (as jsonv_parse reads it: the scanner
 * of lib/jsonscan.c, then json-c) in the API's shape, with the headers its
 * status calls for.
 */
#include "fuzz.h"
#include "isotime.h"
#include "tracker.h"

#include <string.h>

#define USER 42
#define JTI 7 /* the token's row */

static const char secret[] = "fuzz-secret-0123456789abcdef-0123456789";
static struct config cfg = {.jwt_secret = (char *)secret,
			    .jwt_secret_len = sizeof secret - 1};
static struct worker worker = {.cfg = &cfg};
static char bearer[TOKEN_MAX + 16];
static const char *called; /* the stand-in that ran */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	int64_t now = isotime_now() / 1000000;
	char *t =
	    token_issue(secret, sizeof secret - 1, USER, JTI, now, now + 86400);
	FUZZ_ASSERT(t);
	snprintf(bearer, sizeof bearer, "Bearer %s", t);
	free(t);
	return 0;
}

/* The stand-in for revoke.c: the token's row is there. */
enum db_status
token_live(struct revoke *rv, struct db *db, int64_t user, int64_t jti,
	   bool *live)
{
	(void)rv, (void)db;
	FUZZ_ASSERT(user == USER && jti == JTI);
	*live = true;
	return DB_OK;
}

/* What every handler behind a USER route may rely on. */
static void
reached(struct request *req, const char *name, bool user, bool id)
{
	called = name;
	FUZZ_ASSERT(!req->body_too_large);
	if (user)
		FUZZ_ASSERT(req->user == USER);
	if (id) {
		/* The segment after /test/ or /tokens/ is exactly the
		 * decimal of id. */
		char want[48];
		snprintf(want, sizeof want, "/api/v1/%s/%lld",
			 strcmp(name, "token_delete") ? "test" : "tokens",
			 (long long)req->id);
		size_t n = strlen(want);
		FUZZ_ASSERT(req->id > 0);
		FUZZ_ASSERT(strncmp(req->path, want, n) == 0 &&
			    (req->path[n] == '\0' || req->path[n] == '/'));
	}
}

/* Answer 200 unless a query parameter is malformed (as the real handlers
 * read them: the same names, the same buffer sizes). */
struct param {
	const char *name;
	size_t size;
};

static void
answer(struct request *req, const struct param params[])
{
	char v[64];
	for (size_t i = 0; params[i].name; i++) {
		size_t sz = params[i].size;
		memset(v, 0x55, sizeof v);
		int r = request_query(req, params[i].name, v, sz);
		if (r < 0)
			return; /* it answered 400 */
		if (r == 1)
			FUZZ_ASSERT(strlen(v) < sz);
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "handler", json_object_new_string(called));
	respond_json(req, 200, o);
}

static const struct param none[] = {{NULL, 0}};
static const struct param list_q[] = {{"limit", 24}, {"before", 32}, {NULL, 0}};
static const struct param usage_q[] = {
    {"after", ISOTIME_MAX + 8}, {"limit", 24}, {NULL, 0}};
static const struct param baseline_q[] = {{"runs", 24}, {NULL, 0}};

void
users_post(struct request *req)
{
	reached(req, "users_post", false, false);
	answer(req, none);
}
void
auth_post(struct request *req)
{
	reached(req, "auth_post", false, false);
	answer(req, none);
}
void
auth_delete(struct request *req)
{
	reached(req, "auth_delete", true, false);
	answer(req, none);
}
void
password_post(struct request *req)
{
	reached(req, "password_post", true, false);
	answer(req, none);
}
void
tokens_post(struct request *req)
{
	reached(req, "tokens_post", true, false);
	answer(req, none);
}
void
tokens_get(struct request *req)
{
	reached(req, "tokens_get", true, false);
	answer(req, none);
}
void
token_delete(struct request *req)
{
	reached(req, "token_delete", true, true);
	answer(req, none);
}
void
test_create(struct request *req)
{
	reached(req, "test_create", true, false);
	answer(req, none);
}
void
test_list(struct request *req)
{
	reached(req, "test_list", true, false);
	answer(req, list_q);
}
void
test_get(struct request *req)
{
	reached(req, "test_get", true, true);
	answer(req, none);
}
void
usage_post(struct request *req)
{
	reached(req, "usage_post", true, true);
	answer(req, none);
}
void
usage_get(struct request *req)
{
	reached(req, "usage_get", true, true);
	answer(req, usage_q);
}
void
test_baseline(struct request *req)
{
	reached(req, "test_baseline", true, true);
	answer(req, baseline_q);
}
void
test_stop(struct request *req)
{
	reached(req, "test_stop", true, true);
	answer(req, none);
}
void
health_get(struct request *req)
{
	reached(req, "health_get", false, false);
	answer(req, none);
}

/* Cut data at the next '\n' into a fresh C string; advance. */
static char *
take_line(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	const uint8_t *stop = nl ? nl : end;
	size_t n = (size_t)(stop - *p);
	char *s = malloc(n + 1);
	memcpy(s, *p, n);
	s[n] = '\0';
	*p = nl ? nl + 1 : end;
	return s;
}

/* The answer is strict JSON in the API's shape. */
static void
check_answer(struct request *req)
{
	FUZZ_ASSERT(req->status >= 200 && req->status <= 599);
	FUZZ_ASSERT(
	    req->content_type &&
	    strcmp(req->content_type, "application/json; charset=utf-8") == 0);
	FUZZ_ASSERT(req->out.p && req->out.len > 0);
	FUZZ_ASSERT(
	    fuzz_utf8_ok((const unsigned char *)req->out.p, req->out.len));
	struct jerr e;
	struct json_object *o =
	    jsonv_parse(req->out.p, req->out.len, SIZE_MAX, &e);
	if (!o)
		fprintf(stderr, "answer is not JSON (%s): %s\n", e.msg,
			req->out.p);
	FUZZ_ASSERT(o && json_object_is_type(o, json_type_object));
	struct json_object *v;
	if (req->status >= 400) {
		FUZZ_ASSERT(json_object_object_get_ex(o, "error", &v) &&
			    json_object_is_type(v, json_type_string));
		FUZZ_ASSERT(json_object_object_get_ex(o, "message", &v) &&
			    json_object_is_type(v, json_type_string));
	}
	json_object_put(o);
	const char *h = req->headers.p ? req->headers.p : "";
	if (req->status == 401)
		FUZZ_ASSERT(strstr(h, "WWW-Authenticate: Bearer\r\n"));
	if (req->status == 405)
		FUZZ_ASSERT(strncmp(h, "Allow: ", 7) == 0);
	/* Header lines end in CRLF and hold no other CR or LF. */
	for (const char *l = h; *l;) {
		const char *crlf = strstr(l, "\r\n");
		FUZZ_ASSERT(crlf);
		FUZZ_ASSERT(strcspn(l, "\r\n") == (size_t)(crlf - l));
		l = crlf + 2;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char *method = take_line(&p, end);
	char *path = take_line(&p, end);
	char *query = take_line(&p, end);
	char *auth = take_line(&p, end);
	size_t blen = (size_t)(end - p);

	struct request req = {.w = &worker};
	req.method = method;
	req.path = path;
	req.query = *query ? query : NULL;
	req.authorization = strcmp(auth, "T") == 0 ? bearer
			    : *auth		   ? auth
						   : NULL;
	req.body = blen ? malloc(blen) : NULL;
	if (blen)
		memcpy(req.body, p, blen);
	req.body_len = blen;
	req.body_too_large = blen && p[0] == '!';
	called = NULL;

	request_handle(&req);
	check_answer(&req);
	if (called) {
		FUZZ_ASSERT(req.status == 200 || req.status == 400);
	} else {
		int s = req.status;
		FUZZ_ASSERT(s == 401 || s == 404 || s == 405 || s == 413);
	}
	request_free(&req);
	free(method);
	free(path);
	free(query);
	free(auth);
	return 0;
}
