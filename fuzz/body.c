/*
 * The request bodies (and query strings) of every endpoint, through the
 * real router and the real handlers: request.c, jsonv.c (with the scanner
 * of lib/jsonscan.c), users.c, tests.c, usage.c. Only what lies past validation
 * is a stand-in: the database (db_exec checks what it is given, then answers
 * "unavailable") and the cryptography (a fixed hash; any bearer header is user
 * 7).
 *
 * Input: the first byte picks the endpoint, the rest is its body (or, for
 * the GETs, its query string).
 * Rules checked: a 400 never touched the database; whatever reached it
 * was valid by SPEC section 3 (strings strict UTF-8 within their lengths,
 * numbers in range, timestamps that parse, 1-1000 samples) and 6.1 (text
 * exactly as sent: no U+FFFD made of a lone surrogate); every answer is
 * strict JSON in the API's error shape. The seeds (fuzz/corpus/body) hold
 * bodies at and just past each route's value budget.
 */
#include "fuzz.h"
#include "isotime.h"
#include "tracker.h"

#include <math.h>
#include <string.h>

#define USER 7
#define TEST_ID 5

static struct config cfg = {.jwt_secret = "unused",
			    .jwt_secret_len = 6,
			    .token_ttl = 3600,
			    .max_active_tests = 100};
static struct worker worker = {.cfg = &cfg};
static int db_calls;

/* ---- stand-ins for auth.c --------------------------------------------- */

#define FAKE_HASH "$argon2id$v=19$m=19456,t=2,p=1$fake$fake"

int
password_hash(const char *pw, size_t len, char *out, size_t outlen)
{
	FUZZ_ASSERT((len >= PASSWORD_MIN && len <= PASSWORD_MAX) ||
		    strcmp(pw, "grasshopper-dummy") == 0);
	snprintf(out, outlen, "%s", FAKE_HASH);
	return 0;
}

int
password_verify(const char *hash, const char *pw, size_t len)
{
	(void)hash, (void)pw, (void)len;
	return 0;
}

int
password_needs_rehash(const char *hash)
{
	(void)hash;
	return 0;
}

char *
token_issue(const char *secret, size_t secret_len, int64_t user, int64_t jti,
	    int64_t now, int64_t exp)
{
	(void)secret, (void)secret_len, (void)user, (void)jti, (void)now,
	    (void)exp;
	return xstrdup("x.y.z");
}

int
token_verify(const char *secret, size_t secret_len, const char *header,
	     int64_t now, int64_t *user, int64_t *jti)
{
	(void)secret, (void)secret_len, (void)now;
	if (!header)
		return -1;
	*user = USER;
	*jti = 1;
	return 0;
}

/* ---- the stand-in for revoke.c: every token's row is there ------------ */

enum db_status
token_live(struct revoke *rv, struct db *db, int64_t user, int64_t jti,
	   bool *live)
{
	(void)rv, (void)db, (void)user, (void)jti;
	*live = true;
	return DB_OK;
}

/* ---- the stand-in for db.c -------------------------------------------- */

/* s is a whole decimal number within [min, max]. */
static void
check_int(const char *s, long long min, long long max)
{
	char *end;
	FUZZ_ASSERT(s && *s >= '0' && *s <= '9');
	long long v = strtoll(s, &end, 10);
	FUZZ_ASSERT(*end == '\0' && v >= min && v <= max);
}

/* s is a timestamp as the database will read it. */
static void
check_time(const char *s)
{
	int64_t us;
	FUZZ_ASSERT(s && isotime_parse(s, strlen(s), &us) == 0);
}

/* The input's body, for what only it can tell. */
static const char *body_now;
static size_t body_len_now;

/* s is text PostgreSQL takes, of min..max code points, and exactly what
 * was sent: a U+FFFD in it was in the body (json-c writes one for a lone
 * surrogate; SPEC 6.1). */
static void
check_text(const char *s, size_t min, size_t max)
{
	FUZZ_ASSERT(s);
	size_t len = strlen(s), chars = 0;
	FUZZ_ASSERT(fuzz_utf8_ok((const unsigned char *)s, len));
	if (memmem(s, len, "\xef\xbf\xbd", 3))
		FUZZ_ASSERT(memmem(body_now, body_len_now, "\xef\xbf\xbd", 3) ||
			    strcasestr(body_now, "\\ufffd"));
	for (size_t i = 0; i < len; i++)
		chars += ((unsigned char)s[i] & 0xC0) != 0x80;
	FUZZ_ASSERT(chars >= min && chars <= max);
}

/* An array literal "{a,b,...}": return its element count, checking each
 * (a timestamp, or a cpu_usage or mem_usage; NULL too when nulls). */
static size_t
check_array(const char *s, bool times, bool nulls)
{
	size_t n = 0, len = strlen(s);
	FUZZ_ASSERT(len >= 2 && s[0] == '{' && s[len - 1] == '}');
	char *copy = xstrdup(s + 1);
	copy[len - 2] = '\0';
	for (char *save, *el = strtok_r(copy, ",", &save); el;
	     el = strtok_r(NULL, ",", &save), n++) {
		if (times) {
			check_time(el);
		} else if (!(nulls && strcmp(el, "NULL") == 0)) {
			char *end;
			double d = strtod(el, &end);
			FUZZ_ASSERT(*end == '\0' && isfinite(d) && d >= 0 &&
				    d <= 1);
		}
	}
	free(copy);
	return n;
}

/* A test's tags as the statements get them: an object of at most 32
 * strings (SPEC 6.3). */
static void
check_tags(const char *s)
{
	struct json_object *t = json_tokener_parse(s);
	FUZZ_ASSERT(json_object_is_type(t, json_type_object) &&
		    json_object_object_length(t) <= 32);
	json_object_object_foreach(t, key, val)
	{
		FUZZ_ASSERT(strlen(key) >= 1 && strlen(key) <= 64 &&
			    json_object_is_type(val, json_type_string));
	}
	json_object_put(t);
}

/* A number the stop reports about the command, or NULL. */
static void
check_figure(const char *s)
{
	if (!s)
		return;
	char *end;
	double d = strtod(s, &end);
	FUZZ_ASSERT(*end == '\0' && isfinite(d) && d >= 0);
}

enum db_status
db_exec(struct db *db, enum stmt s, const char *const params[], PGresult **res)
{
	(void)db, (void)res;
	db_calls++;
	switch (s) {
	case STMT_USER_CREATE:
		FUZZ_ASSERT(strlen(params[0]) >= 1 && strlen(params[0]) <= 64);
		FUZZ_ASSERT(strspn(params[0],
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "abcdefghijklmnopqrstuvwxyz"
				   "0123456789_.-") == strlen(params[0]));
		FUZZ_ASSERT(strcmp(params[1], FAKE_HASH) == 0);
		if (params[2]) {
			check_text(params[2], 3, 254);
			FUZZ_ASSERT(strchr(params[2], '@'));
		}
		break;
	case STMT_USER_FIND:
		check_text(params[0], 1, 64);
		break;
	case STMT_USER_HASH:
		check_int(params[0], USER, USER);
		break;
	case STMT_TOKEN_CREATE: {
		check_int(params[0], USER, USER);
		check_text(params[1], 1, 64);
		for (const unsigned char *c = (const unsigned char *)params[1];
		     *c; c++)
			FUZZ_ASSERT(
			    *c >= 0x20 && *c != 0x7f &&
			    !(c[0] == 0xc2 && c[1] >= 0x80 && c[1] <= 0x9f));
		int64_t now = isotime_now() / 1000000;
		check_int(params[2], now + 60 - 5, now + 31536000 + 5);
		check_int(params[3], 100, 100);
		break;
	}
	case STMT_TEST_CREATE:
		check_int(params[0], USER, USER);
		check_text(params[1], 1, 255);
		check_text(params[2], 0, 4096);
		{
			char *end;
			double t = strtod(params[3], &end);
			FUZZ_ASSERT(*end == '\0' && t >= 0 && t <= 1);
		}
		check_time(params[4]);
		check_int(params[5], 100, 100);
		check_tags(params[6]);
		break;
	case STMT_TEST_LIST:
	case STMT_TEST_LIST_FILTERED:
		check_int(params[0], USER, USER);
		if (params[1])
			check_int(params[1], 1, INT64_MAX);
		check_int(params[2], 1, 200);
		if (s == STMT_TEST_LIST_FILTERED) {
			FUZZ_ASSERT(params[3] || params[4]);
			if (params[4])
				check_tags(params[4]);
		}
		break;
	case STMT_TEST_GET:
		check_int(params[0], USER, USER);
		check_int(params[1], TEST_ID, TEST_ID);
		break;
	case STMT_TEST_STOP:
		check_int(params[0], USER, USER);
		check_int(params[1], TEST_ID, TEST_ID);
		check_time(params[2]);
		check_figure(params[3]);
		check_figure(params[4]);
		check_figure(params[5]);
		if (params[6]) /* the exit status: 0-255, or not reported */
			check_int(params[6], 0, 255);
		break;
	case STMT_USAGE_ADD: {
		check_int(params[0], USER, USER);
		check_int(params[1], TEST_ID, TEST_ID);
		size_t nt = check_array(params[2], true, false);
		size_t nc = check_array(params[3], false, false);
		FUZZ_ASSERT(nt == nc && nt >= 1 && nt <= 1000);
		/* mem_usage: NULL when no sample has one, else one each. */
		FUZZ_ASSERT(!params[4] ||
			    check_array(params[4], false, true) == nt);
		break;
	}
	case STMT_USAGE_LIST:
		check_int(params[0], USER, USER);
		check_int(params[1], TEST_ID, TEST_ID);
		if (params[2])
			check_time(params[2]);
		check_int(params[3], 1, 10000);
		break;
	case STMT_TEST_BASELINE:
		check_int(params[0], USER, USER);
		check_int(params[1], TEST_ID, TEST_ID);
		check_int(params[2], 1, 100);
		break;
	default:
		FUZZ_ASSERT(!"a statement no endpoint here should run");
	}
	return DB_UNAVAILABLE;
}

enum db_status
db_exec_batch(struct db *db, enum stmt s, int64_t key,
	      const char *const params[], PGresult **res)
{
	FUZZ_ASSERT(s == STMT_USAGE_ADD && key == TEST_ID);
	return db_exec(db, s, params, res);
}

/* ---- the harness ------------------------------------------------------ */

static const struct {
	const char *method, *path;
	bool query; /* the rest of the input is the query, not the body */
} endpoints[] = {
    {"POST", "/api/v1/users", false},
    {"POST", "/api/v1/auth", false},
    {"POST", "/api/v1/test", false},
    {"POST", "/api/v1/test/5/usage", false},
    {"POST", "/api/v1/test/5/stop", false},
    {"GET", "/api/v1/test", true},
    {"GET", "/api/v1/test/5/usage", true},
    {"POST", "/api/v1/tokens", false},
    {"POST", "/api/v1/users/me/password", false},
    {"GET", "/api/v1/test/5/baseline", true},
};
#define ENDPOINTS (sizeof endpoints / sizeof endpoints[0])

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > BODY_MAX)
		return 0;
	size_t which = data[0] % ENDPOINTS;
	size_t n = size - 1;
	char *rest = xmalloc(n + 1);
	memcpy(rest, data + 1, n);
	rest[n] = '\0';

	struct request req = {.w = &worker};
	req.method = endpoints[which].method;
	req.path = endpoints[which].path;
	req.authorization = "Bearer x.y.z";
	if (endpoints[which].query) {
		req.query = rest;
	} else {
		req.body = rest;
		req.body_len = n;
		rest = NULL;
	}
	body_now = req.body ? req.body : "";
	body_len_now = req.body_len;
	db_calls = 0;

	request_handle(&req);

	int s = req.status;
	FUZZ_ASSERT(s == 400 || s == 401 || s == 503);
	FUZZ_ASSERT((s == 400) == (db_calls == 0) || which == 1);
	FUZZ_ASSERT(db_calls <= 1);
	FUZZ_ASSERT(req.out.p && fuzz_utf8_ok((const unsigned char *)req.out.p,
					      req.out.len));
	struct jerr e;
	struct json_object *o =
	    jsonv_parse(req.out.p, req.out.len, SIZE_MAX, &e);
	if (!o)
		fprintf(stderr, "answer is not JSON (%s): %s\n", e.msg,
			req.out.p);
	FUZZ_ASSERT(o);
	struct json_object *code;
	FUZZ_ASSERT(json_object_object_get_ex(o, "error", &code));
	const char *c = json_object_get_string(code);
	if (s == 400)
		FUZZ_ASSERT(strcmp(c, "invalid_json") == 0 ||
			    strcmp(c, "invalid_field") == 0);
	json_object_put(o);
	request_free(&req);
	free(rest);
	return 0;
}
