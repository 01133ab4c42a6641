/*
 * One request: read it from FastCGI, route it, answer it, log it.
 * Handlers never see FastCGI: they fill struct request and return.
 */
#include "tracker.h"
#include "isotime.h"

#include <ctype.h>
#include <errno.h>
#include <fcgiapp.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- responses ------------------------------------------------------- */

/* Every error code and its status: the one table (SPEC section 3). */
static const struct {
	int status;
	const char *code;
} errors[] = {
    [ERR_INVALID_JSON] = {400, "invalid_json"},
    [ERR_INVALID_FIELD] = {400, "invalid_field"},
    [ERR_UNAUTHORIZED] = {401, "unauthorized"},
    [ERR_NOT_FOUND] = {404, "not_found"},
    [ERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed"},
    [ERR_ALREADY_STOPPED] = {409, "already_stopped"},
    [ERR_TEST_STOPPED] = {409, "test_stopped"},
    [ERR_USERNAME_TAKEN] = {409, "username_taken"},
    [ERR_WRONG_PASSWORD] = {403, "wrong_password"},
    [ERR_TOO_MANY_TOKENS] = {429, "too_many_tokens"},
    [ERR_TOO_LARGE] = {413, "too_large"},
    [ERR_RATE_LIMITED] = {429, "rate_limited"},
    [ERR_TOO_MANY_ACTIVE_TESTS] = {429, "too_many_active_tests"},
    [ERR_UNAVAILABLE] = {503, "unavailable"},
    [ERR_INTERNAL] = {500, "internal"},
};

void
header_add(struct request *req, const char *name, const char *value)
{
	buf_printf(&req->headers, "%s: %s\r\n", name, value);
}

void
buf_put_json(struct buf *b, struct json_object *obj)
{
	buf_puts(b, json_object_to_json_string_ext(
			obj, JSON_C_TO_STRING_PLAIN |
				 JSON_C_TO_STRING_NOSLASHESCAPE));
}

void
respond_json(struct request *req, int status, struct json_object *obj)
{
	req->status = status;
	req->content_type = "application/json; charset=utf-8";
	req->out.len = 0;
	buf_put_json(&req->out, obj);
	buf_puts(&req->out, "\n");
	json_object_put(obj);
}

void
respond_empty(struct request *req, int status)
{
	req->status = status;
	req->content_type = NULL;
	req->out.len = 0;
}

void
respond_error(struct request *req, enum api_error err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Messages quote what the client sent (a path, a key cut to 64 bytes)
	 * and the answer must stay UTF-8: a '?' for each stray byte. */
	size_t len = strlen(msg);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq((const unsigned char *)msg + i, len - i);
		if (n)
			i += n;
		else
			msg[i++] = '?';
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "error",
			       json_object_new_string(errors[err].code));
	json_object_object_add(o, "message", json_object_new_string(msg));
	if (err == ERR_UNAUTHORIZED)
		header_add(req, "WWW-Authenticate", "Bearer");
	if (err == ERR_UNAVAILABLE)
		header_add(req, "Retry-After", "1");
	respond_json(req, errors[err].status, o);
}

void
respond_db(struct request *req, enum db_status st)
{
	if (st == DB_UNAVAILABLE)
		respond_error(req, ERR_UNAVAILABLE,
			      "the database is unavailable; try again shortly");
	else
		respond_error(req, ERR_INTERNAL,
			      "the request failed on the server's side");
}

/* ---- request helpers for handlers ------------------------------------ */

struct json_object *
request_json(struct request *req, bool allow_empty)
{
	struct jerr e;
	if (allow_empty && req->body_len == 0)
		return json_object_new_object();
	struct json_object *v =
	    jsonv_parse(req->body, req->body_len, req->max_values, &e);
	if (!v)
		respond_error(req,
			      e.field ? ERR_INVALID_FIELD : ERR_INVALID_JSON,
			      "%s", e.msg);
	return v;
}

struct json_object *
request_object(struct request *req, const char *const fields[],
	       bool allow_empty)
{
	struct jerr e;
	struct json_object *o = request_json(req, allow_empty);
	if (!o)
		return NULL;
	if (!json_object_is_type(o, json_type_object)) {
		respond_error(req, ERR_INVALID_JSON,
			      "the body must be a JSON object");
		goto fail;
	}
	if (jv_only(o, "", fields, &e)) {
		respond_error(req, ERR_INVALID_FIELD, "%s", e.msg);
		goto fail;
	}
	return o;
fail:
	json_object_put(o);
	return NULL;
}

int
parse_whole(const char *s, long long min, long long max, long long *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
request_query_whole(struct request *req, const char *name, long long min,
		    long long max, long long *out)
{
	char s[24]; /* a long long's digits; anything longer is refused */
	int r = request_query(req, name, s, sizeof s);
	if (r > 0 && parse_whole(s, min, max, out)) {
		respond_error(req, ERR_INVALID_FIELD,
			      "%s must be a whole number from %lld to %lld",
			      name, min, max);
		r = -1;
	}
	return r;
}

char *
int_param(char buf[static INT_PARAM_SIZE], int64_t n)
{
	snprintf(buf, INT_PARAM_SIZE, "%lld", (long long)n);
	return buf;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int
request_query(struct request *req, const char *name, char *out, size_t outlen)
{
	size_t pos = 0;
	return request_query_next(req, name, &pos, out, outlen);
}

int
request_query_next(struct request *req, const char *name, size_t *pos,
		   char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *query = req->query ? req->query : "";
	for (const char *p = query + *pos; *p;) {
		const char *end = p + strcspn(p, "&");
		if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 &&
		    p[nlen] == '=') {
			size_t o = 0;
			for (const char *q = p + nlen + 1; q < end; q++) {
				int c = (unsigned char)*q;
				if (c == '+') {
					c = ' ';
				} else if (c == '%') {
					int h = q + 2 < end ? hexval(q[1]) : -1;
					int l = h >= 0 ? hexval(q[2]) : -1;
					if (l < 0 || (h == 0 && l == 0))
						goto bad;
					c = h * 16 + l;
					q += 2;
				}
				if (o + 1 >= outlen)
					goto bad;
				out[o++] = (char)c;
			}
			out[o] = '\0';
			*pos = (size_t)(end - query);
			return 1;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
bad:
	respond_error(req, ERR_INVALID_FIELD,
		      "query parameter %s is malformed or too long", name);
	return -1;
}

/* ---- routing --------------------------------------------------------- */

enum need { PUBLIC, USER };

/*
 * How many JSON values (jsonv.c counts each: containers, members' values,
 * elements) a route's body may hold: what its largest valid body needs, so
 * that no body, valid or not, makes json-c build more (SPEC 6.1). Routes
 * without a body (their body is never read) say VALUES_SMALL too; 0 means
 * the same.
 */
#define VALUES_SMALL 16 /* an object of a few fields (users, auth, stop) */
#define VALUES_TEST 40	/* 1 object + 5 fields + 32 tags (SPEC 6.3) + 2 */
#define VALUES_USAGE (1 + USAGE_BATCH_MAX * 4) /* array; object+3 fields */

/* Every route of the API: the one table (SPEC section 3). */
static const struct route {
	const char *method;
	const char *pattern; /* ":id" matches one path segment */
	void (*handler)(struct request *);
	enum need need;
	size_t max_values; /* in its body; 0: VALUES_SMALL */
} routes[] = {
    {"POST", "/api/v1/users", users_post, PUBLIC, VALUES_SMALL},
    {"POST", "/api/v1/auth", auth_post, PUBLIC, VALUES_SMALL},
    {"DELETE", "/api/v1/auth", auth_delete, USER, VALUES_SMALL},
    {"POST", "/api/v1/users/me/password", password_post, USER, VALUES_SMALL},
    {"POST", "/api/v1/tokens", tokens_post, USER, VALUES_SMALL},
    {"GET", "/api/v1/tokens", tokens_get, USER, VALUES_SMALL},
    {"DELETE", "/api/v1/tokens/:id", token_delete, USER, VALUES_SMALL},
    {"POST", "/api/v1/test", test_create, USER, VALUES_TEST},
    {"GET", "/api/v1/test", test_list, USER, VALUES_SMALL},
    {"GET", "/api/v1/test/:id", test_get, USER, VALUES_SMALL},
    {"POST", "/api/v1/test/:id/usage", usage_post, USER, VALUES_USAGE},
    {"GET", "/api/v1/test/:id/usage", usage_get, USER, VALUES_SMALL},
    {"POST", "/api/v1/test/:id/stop", test_stop, USER, VALUES_SMALL},
    {"GET", "/api/v1/test/:id/baseline", test_baseline, USER, VALUES_SMALL},
    {"GET", "/api/v1/health", health_get, PUBLIC, VALUES_SMALL},
};

/* Does path match pattern? Sets *seg to the :id segment (not terminated;
 * *seglen its length). */
static bool
route_match(const char *pattern, const char *path, const char **seg,
	    size_t *seglen)
{
	const char *pp = pattern, *p = path;
	while (*pp && *p) {
		if (pp[0] == ':' && pp[1] == 'i' && pp[2] == 'd') {
			size_t n = strcspn(p, "/");
			if (n == 0)
				return false;
			*seg = p;
			*seglen = n;
			p += n;
			pp += 3;
		} else if (*pp++ != *p++) {
			return false;
		}
	}
	return *pp == '\0' && *p == '\0';
}

/* A test id: positive decimal int64, no sign, no leading zero. Return it,
 * or 0 when s is anything else (which is just another unknown test). */
static int64_t
parse_id(const char *s, size_t n)
{
	if (n == 0 || n > 19 || s[0] < '1' || s[0] > '9')
		return 0;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Is the caller's token good: signed, unexpired (auth.c) and not revoked
 * (revoke.c)? Sets req->user; answers 401 (or 503) and returns false if
 * not. */
static bool
authorized(struct request *req)
{
	const struct config *cfg = req->w->cfg;
	int64_t jti;
	bool live = false;
	enum db_status st = DB_OK;
	if (token_verify(cfg->jwt_secret, cfg->jwt_secret_len,
			 req->authorization, isotime_now() / 1000000,
			 &req->user, &jti) == 0)
		st = token_live(req->w->revoke, req->w->db, req->user, jti,
				&live);
	if (st != DB_OK) {
		respond_db(req, st);
		return false;
	}
	if (!live)
		respond_error(req, ERR_UNAUTHORIZED,
			      req->authorization
				  ? "the token is invalid, expired or revoked; "
				    "log in again"
				  : "missing Authorization: Bearer token");
	return live;
}

/* The caller's request rate (SPEC 6.1), checked once the token named
 * them. Return true after answering 429. */
static bool
rate_limited(struct request *req)
{
	long wait = ratelimit_take(req->w->limits, req->user, mono_us() * 1000);
	if (!wait)
		return false;
	char s[24];
	snprintf(s, sizeof s, "%ld", wait);
	header_add(req, "Retry-After", s);
	respond_error(req, ERR_RATE_LIMITED,
		      "too many requests from this user; try again in %ld s",
		      wait);
	return true;
}

void
request_handle(struct request *req)
{
	const struct route *found = NULL;
	const char *seg = NULL;
	size_t seglen = 0;
	struct buf allow = {0};
	/* nginx drops the body of a HEAD answer: serve it as a GET. */
	const char *method =
	    strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;

	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		if (!route_match(routes[i].pattern, req->path, &seg, &seglen))
			continue;
		if (strcmp(routes[i].method, method) == 0)
			found = &routes[i];
		buf_printf(&allow, "%s%s", allow.len ? ", " : "",
			   routes[i].method);
	}
	if (!found && allow.len) {
		header_add(req, "Allow", allow.p);
		respond_error(req, ERR_METHOD_NOT_ALLOWED,
			      "%s is not allowed on %s (allowed: %s)",
			      req->method, req->path, allow.p);
		goto done;
	}
	if (!found) {
		respond_error(req, ERR_NOT_FOUND, "no such route: %s %s",
			      req->method, req->path);
		goto done;
	}
	if (req->body_too_large) {
		respond_error(req, ERR_TOO_LARGE,
			      "request body is larger than 1 MiB");
		goto done;
	}
	req->max_values = found->max_values ? found->max_values : VALUES_SMALL;
	if (found->need == USER && !authorized(req))
		goto done;
	if (found->need == USER && rate_limited(req))
		goto done;
	if (seg) {
		req->id = parse_id(seg, seglen);
		if (req->id == 0) {
			respond_error(req, ERR_NOT_FOUND, "no such %s",
				      found->handler == token_delete ? "token"
								     : "test");
			goto done;
		}
	}
	found->handler(req);
done:
	buf_free(&allow);
}

void
request_free(struct request *req)
{
	free(req->body);
	buf_free(&req->headers);
	buf_free(&req->out);
}

/* ---- FastCGI glue (used by pool.c) ----------------------------------- */

/* Every status the tracker answers with and its reason phrase (RFC 9110
 * section 15), for the Status header: the one table. */
static const struct {
	int status;
	const char *reason;
} statuses[] = {
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {413, "Payload Too Large"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {503, "Service Unavailable"},
};

/* The reason phrase of status; a status not in the table is a bug, and
 * the answer says so as 500 does. */
static const char *
reason(int status)
{
	for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++)
		if (statuses[i].status == status)
			return statuses[i].reason;
	return "Internal Server Error";
}

/*
 * What a hostile request can make a worker allocate, each bounded:
 * - the body: at most BODY_MAX (read_body), in a buffer that doubles (up to
 *   2 MiB of address space, of which only what is written is resident);
 * - its JSON tree: the route's max_values (jsonv.c refuses more before
 *   json-c builds anything), strings within the body's bytes;
 * - the FastCGI parameters (query string, headers): libfcgi copies what
 *   nginx sends, and nginx takes at most large_client_header_buffers
 *   (4 x 8 KiB) of request line and headers; request_query copies into the
 *   caller's fixed buffers;
 * - the answer: errors are a line; the largest valid answer is a page of
 *   READ_LIMIT_MAX samples (usage.c): its rows, the json-c tree it is
 *   written from (a few MiB) and about 1 MiB of JSON, as any valid request
 *   may ask for; a streamed answer (CSV, NDJSON) holds one such page at a
 *   time, however many samples it sends.
 * glibc keeps what such a request freed in its arenas, so a worker given
 * a few large requests at once would stay at that size: after a request
 * of more than TRIM_AFTER bytes in or out, malloc_trim gives it back.
 */
#define TRIM_AFTER (32 * 1024)

/* Write req's status line and headers to out; Content-Length (of req->out)
 * only when with_length. Return 0, or -1 when the stream is closed. */
static int
send_head(const struct request *req, FCGX_Stream *out, bool with_length)
{
	/* libfcgi's own printf knows no %zu: format the head ourselves. */
	struct buf head = {0};
	buf_printf(&head, "Status: %d %s\r\n", req->status,
		   reason(req->status));
	/* A 204 has neither (RFC 9110 8.6). */
	if (req->content_type)
		buf_printf(&head, "Content-Type: %s\r\n", req->content_type);
	if (req->content_type && with_length)
		buf_printf(&head, "Content-Length: %zu\r\n", req->out.len);
	buf_printf(&head, "Cache-Control: no-store\r\n%s\r\n",
		   req->headers.p ? req->headers.p : "");
	int r = FCGX_PutStr(head.p, (int)head.len, out);
	buf_free(&head);
	return r < 0 ? -1 : 0;
}

/*
 * A streamed answer goes out as it is made, without Content-Length (nginx
 * sends it chunked). nginx buffers it as any answer (fastcgi_buffering,
 * spilling past its buffers to fastcgi_temp_path) while passing on what the
 * client takes, so the worker writes at the database's pace and its thread
 * is free once the last page is read, not held until a slow client has
 * taken a million samples: no "X-Accel-Buffering: no". Memory is bounded
 * either way (one page here, nginx's buffers there).
 */
int
respond_stream_begin(struct request *req, int status, const char *content_type)
{
	req->status = status;
	req->content_type = content_type;
	req->streamed = true;
	if (!req->fcgi_out)
		return 0; /* outside FastCGI (fuzzing): out keeps it all */
	if (send_head(req, req->fcgi_out, false) == 0)
		return 0;
	req->aborted = true;
	return -1;
}

int
respond_stream_flush(struct request *req)
{
	if (!req->fcgi_out || req->aborted)
		return req->aborted ? -1 : 0;
	int r = req->out.len
		    ? FCGX_PutStr(req->out.p, (int)req->out.len, req->fcgi_out)
		    : 0;
	req->out.len = 0;
	/* Whole pieces out now: a stream cut short ends between them. */
	if (r >= 0)
		r = FCGX_FFlush(req->fcgi_out);
	/* Whatever broke the write, the answer must not look complete. */
	if (r < 0)
		req->aborted = true;
	return r < 0 ? -1 : 0;
}

void
respond_stream_abort(struct request *req)
{
	req->aborted = true;
	req->out.len = 0;
}

/*
 * End a streamed answer that failed after its head so that the client can
 * tell. FastCGI cannot say so, and nginx (without fastcgi_keep_conn) takes
 * a closed connection for the answer's end; a record it refuses (version
 * 0) is an upstream error instead: it logs "upstream sent unsupported
 * FastCGI protocol version: 0" and closes the client's connection without
 * the final chunk.
 */
static void
stream_cut(FCGX_Request *fr)
{
	static const char refused_record[8] = {0};
	FCGX_FFlush(fr->out);
	ssize_t n = write(fr->ipcFd, refused_record, sizeof refused_record);
	(void)n; /* nginx may be gone already: nothing more to tell */
	shutdown(fr->ipcFd, SHUT_RDWR);
	fr->keepConnection = 0;
}

/* Read up to BODY_MAX bytes of body, whatever CONTENT_LENGTH claims. */
static void
read_body(struct request *req, FCGX_Stream *in)
{
	struct buf b = {0};
	char chunk[16384];
	int n;
	while ((n = FCGX_GetStr(chunk, sizeof chunk, in)) > 0) {
		if (b.len + (size_t)n > BODY_MAX) {
			req->body_too_large = true;
			break;
		}
		buf_add(&b, chunk, (size_t)n);
	}
	req->body = b.p;
	req->body_len = b.len;
}

/* Serve one FastCGI request from start to log line. */
void
request_serve(struct worker *w, FCGX_Request *fr)
{
	int64_t t0 = mono_us();
	struct request req = {.w = w};
	char **env = fr->envp;
	const char *uri = FCGX_GetParam("DOCUMENT_URI", env);
	req.method = FCGX_GetParam("REQUEST_METHOD", env);
	req.path = uri ? uri : "";
	req.query = FCGX_GetParam("QUERY_STRING", env);
	req.accept = FCGX_GetParam("HTTP_ACCEPT", env);
	req.authorization = FCGX_GetParam("HTTP_AUTHORIZATION", env);
	if (!req.method)
		req.method = "GET";
	if (req.authorization && !*req.authorization)
		req.authorization = NULL;
	if (strcmp(req.method, "POST") == 0)
		read_body(&req, fr->in);

	req.fcgi_out = fr->out;

	request_handle(&req);

	if (req.aborted) {
		stream_cut(fr);
	} else if (req.streamed) {
		respond_stream_flush(&req);
	} else {
		send_head(&req, fr->out, true);
		FCGX_PutStr(req.out.p, (int)req.out.len, fr->out);
	}

	/* One line per request; never a token, a password or a body. The
	 * path as %XX where a byte is not printable: no forged log lines. */
	struct buf path = {0};
	buf_puts(&path, "");
	for (size_t i = 0; req.path[i] && i < 400; i++) {
		unsigned char c = (unsigned char)req.path[i];
		if (isprint(c) && c != '%')
			buf_add(&path, (const char *)&c, 1);
		else
			buf_printf(&path, "%%%02X", c);
	}
	log_msg(LOG_ACCESS, "%.16s %s %d %lld", req.method, path.p, req.status,
		(long long)(mono_us() - t0));
	buf_free(&path);
	bool large = req.streamed || req.body_len + req.out.len > TRIM_AFTER;
	request_free(&req);
	if (large)
		malloc_trim(0);
}
