/*
 * The client's HTTP: one request at a time to the tracker, over one
 * kept-alive connection, never blocking (the event loop polls it).
 *
 * Plain http:// is spoken here, over a socket: HTTP/1.1, a request with a
 * Content-Length, an answer framed by Content-Length, chunks or the end of
 * the connection. Everything else -- https://, and any URL while a proxy
 * variable is set, or one this file does not take apart (user:password@,
 * a query) -- goes through libcurl (curl.c), loaded only then: Debian's
 * libcurl needs 30 other libraries and initialises OpenSSL whatever the URL,
 * which alone is 8 MiB of a client that otherwise needs under 2.
 *
 * What libcurl did for plain http is done the same way here: names are
 * resolved in a thread (a DNS timeout never delays sampling), each address
 * is tried in turn within the connect timeout, Nagle is off, a kept-alive
 * connection the tracker closed meanwhile is replaced, and a request that
 * finds it dead before any answer is sent once more on a fresh one.
 */
#include "grasshopper.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 16384
/* The header block may come on top of the answer limit. */
#define HEAD_MAX 65536

enum state {
	ST_IDLE,       /* no request (the connection may be kept alive) */
	ST_RESOLVING,  /* the host name, in a thread */
	ST_CONNECTING, /* to addr */
	ST_SENDING,
	ST_RECEIVING,
	ST_ENDED, /* the outcome waits in res for http_step to hand it on */
};

/* A name being resolved in its own thread. Both the thread and the
 * request hold it; whoever lets go last frees it, so a request cancelled
 * while getaddrinfo runs leaves it nothing freed to write to. */
struct resolve {
	atomic_int refs;
	atomic_bool done;
	int pipe[2]; /* a byte arrives on pipe[0] when done */
	char *host, *port;
	int rc; /* getaddrinfo's */
	struct addrinfo *res;
};

struct http {
	struct lcurl *curl;	     /* not NULL: libcurl does everything */
	char why_curl[HTTP_WHY_MAX]; /* libcurl was needed and did not load */

	char *host, *port; /* to resolve and connect to */
	char *prefix;	   /* the server URL's path, "" for none */
	struct buf head;   /* Host and the caller's header lines */

	enum state st;
	int fd;	      /* the connection, kept between requests */
	bool reused;  /* the request went out on a kept connection */
	bool retried; /* and was sent once more on a fresh one */
	struct resolve *job;
	struct addrinfo *addrs, *addr; /* addr: the one being tried */
	int last_errno;		       /* of the last address that failed */
	int64_t connect_at;	       /* monotonic us, and deadlines: */
	int64_t attempt_by, connect_by, done_by;

	struct buf out; /* the request */
	size_t sent;
	struct buf in; /* the answer as it arrives */
	bool eof;
	struct http_answer ans;
	struct http_result res;
};

/* ---- the answer ------------------------------------------------------- */

/* The next line of p[from..len) without its CR LF (or bare LF): return
 * its length and set *next past it, or -1 if it has not all arrived. */
static long
line_at(const char *p, size_t len, size_t from, size_t *next)
{
	if (from >= len)
		return -1;
	const char *lf = memchr(p + from, '\n', len - from);
	if (!lf)
		return -1;
	size_t end = (size_t)(lf - p);
	*next = end + 1;
	if (end > from && p[end - 1] == '\r')
		end--;
	return (long)(end - from);
}

/* Whether the comma-separated header value v[0..n) holds token t. */
static bool
has_token(const char *v, size_t n, const char *t)
{
	size_t tl = strlen(t);
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && !strncasecmp(v + s, t, tl))
			return true;
	}
	return false;
}

/* The chunked body from p[from..len) into a->body: return 1 and set
 * a->consumed when the last chunk and trailers are in, 0 if more is
 * needed, -1 if it is not chunked encoding. */
static int
parse_chunks(const char *p, size_t len, size_t from, struct http_answer *a)
{
	size_t at = from, next;
	for (;;) {
		long n = line_at(p, len, at, &next);
		if (n < 0)
			return 0;
		size_t size = 0, digits = 0;
		for (const char *c = p + at; c < p + at + n; c++, digits++) {
			int d = *c >= '0' && *c <= '9'	 ? *c - '0'
				: *c >= 'a' && *c <= 'f' ? *c - 'a' + 10
				: *c >= 'A' && *c <= 'F' ? *c - 'A' + 10
							 : -1;
			if (d < 0)
				break; /* ";extension" or blanks */
			if (size > HTTP_ANSWER_MAX)
				return -1;
			size = size * 16 + (size_t)d;
		}
		if (!digits)
			return -1;
		at = next;
		if (size == 0)
			break;
		if (len - at < size + 1)
			return 0;
		buf_add(&a->body, p + at, size);
		at += size;
		if (p[at] == '\r') {
			if (len - at < 2)
				return 0;
			at++;
		}
		if (p[at] != '\n')
			return -1;
		at++;
	}
	for (;;) { /* trailers, up to an empty line */
		long n = line_at(p, len, at, &next);
		if (n < 0)
			return 0;
		at = next;
		if (n == 0)
			break;
	}
	a->consumed = at;
	return 1;
}

int
http_parse(const char *p, size_t len, bool eof, struct http_answer *a)
{
	size_t at = 0, next;
	buf_reset(&a->body);
	for (;;) { /* skip interim 1xx answers */
		long n = line_at(p, len, at, &next);
		if (n < 0)
			return 0;
		const char *l = p + at;
		if (n < 12 || strncmp(l, "HTTP/1.", 7) ||
		    (l[7] != '0' && l[7] != '1') || l[8] != ' ' || l[9] < '1' ||
		    l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' ||
		    l[11] > '9' || (n > 12 && l[12] != ' '))
			return -1;
		a->code = (l[9] - '0') * 100 + (l[10] - '0') * 10 + l[11] - '0';
		bool http11 = l[7] == '1';
		bool chunked = false, close = !http11, has_length = false;
		size_t length = 0;
		at = next;
		for (;;) { /* the header lines */
			n = line_at(p, len, at, &next);
			if (n < 0)
				return 0;
			l = p + at;
			at = next;
			if (n == 0)
				break;
			const char *colon = memchr(l, ':', (size_t)n);
			if (!colon || colon == l)
				return -1;
			size_t name = (size_t)(colon - l);
			const char *v = colon + 1;
			size_t vn = (size_t)(l + n - v);
			if (name == 14 &&
			    !strncasecmp(l, "Content-Length", 14)) {
				size_t x = 0, digits = 0;
				while (vn && (*v == ' ' || *v == '\t'))
					v++, vn--;
				for (; digits < vn && v[digits] >= '0' &&
				       v[digits] <= '9';
				     digits++) {
					if (x > HTTP_ANSWER_MAX)
						return -1;
					x = x * 10 + (size_t)(v[digits] - '0');
				}
				for (size_t i = digits; i < vn; i++)
					if (v[i] != ' ' && v[i] != '\t')
						return -1;
				if (!digits || (has_length && x != length))
					return -1;
				has_length = true;
				length = x;
			} else if (name == 17 &&
				   !strncasecmp(l, "Transfer-Encoding", 17)) {
				chunked = has_token(v, vn, "chunked");
			} else if (name == 10 &&
				   !strncasecmp(l, "Connection", 10)) {
				if (has_token(v, vn, "close"))
					close = true;
				else if (has_token(v, vn, "keep-alive"))
					close = false;
			}
		}
		if (a->code >= 100 && a->code < 200)
			continue;
		a->keep_alive = !close;
		if (a->code == 204 || a->code == 304) {
			a->consumed = at;
			return 1;
		}
		if (chunked)
			return parse_chunks(p, len, at, a);
		if (has_length) {
			if (len - at < length)
				return 0;
			buf_add(&a->body, p + at, length);
			a->consumed = at + length;
			return 1;
		}
		/* Neither: the body runs to the end of the connection. */
		a->keep_alive = false;
		if (!eof)
			return 0;
		buf_add(&a->body, p + at, len - at);
		a->consumed = len;
		return 1;
	}
}

/* ---- the name, in a thread -------------------------------------------- */

static void
resolve_drop(struct resolve *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	if (r->res)
		freeaddrinfo(r->res);
	close(r->pipe[0]);
	close(r->pipe[1]);
	free(r->host);
	free(r->port);
	free(r);
}

static void *
resolve_run(void *arg)
{
	struct resolve *r = arg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM};
	r->rc = getaddrinfo(r->host, r->port, &hints, &r->res);
	atomic_store(&r->done, true);
	/* The pipe only ever holds this one byte: it cannot be full. */
	ssize_t w = write(r->pipe[1], "", 1);
	(void)w;
	resolve_drop(r);
	return NULL;
}

/* Start resolving host in a thread that takes no signal (they belong to
 * the main thread's signalfd). Return it, or NULL with errno set. */
static struct resolve *
resolve_start(const char *host, const char *port)
{
	struct resolve *r = xmalloc(sizeof *r);
	*r = (struct resolve){.host = xstrdup(host), .port = xstrdup(port)};
	atomic_init(&r->refs, 2);
	atomic_init(&r->done, false);
	if (pipe2(r->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		int e = errno;
		free(r->host);
		free(r->port);
		free(r);
		errno = e;
		return NULL;
	}
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&t, &attr, resolve_run, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		atomic_store(&r->refs, 1);
		resolve_drop(r);
		errno = rc;
		return NULL;
	}
	return r;
}

/* ---- the connection --------------------------------------------------- */

/* End the request in flight with an outcome. */
static void end(struct http *h, enum http_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
end(struct http *h, enum http_outcome o, const char *fmt, ...)
{
	h->res.outcome = o;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(h->res.why, sizeof h->res.why, fmt, ap);
		va_end(ap);
	}
	h->st = ST_ENDED;
}

static void
conn_close(struct http *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}

/* Forget the addresses and any resolution in flight. */
static void
addrs_free(struct http *h)
{
	resolve_drop(h->job);
	h->job = NULL;
	if (h->addrs)
		freeaddrinfo(h->addrs);
	h->addrs = h->addr = NULL;
}

/* Try h->addr and the addresses after it until one connects or is
 * connecting; when none is left, the tracker was not reached. */
static void
connect_next(struct http *h)
{
	for (; h->addr; h->addr = h->addr->ai_next) {
		struct addrinfo *a = h->addr;
		h->fd = socket(a->ai_family,
			       a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			       a->ai_protocol);
		if (h->fd < 0) {
			h->last_errno = errno;
			continue;
		}
		int one = 1;
		setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(h->fd, a->ai_addr, a->ai_addrlen) == 0) {
			h->st = ST_SENDING;
			return;
		}
		if (errno == EINPROGRESS) {
			/* With more addresses to go, this one gets half the
			 * time left (as libcurl does). */
			int64_t now = mono_us();
			h->attempt_by = a->ai_next
					    ? now + (h->connect_by - now) / 2
					    : h->connect_by;
			h->st = ST_CONNECTING;
			return;
		}
		h->last_errno = errno;
		conn_close(h);
	}
	end(h, HTTP_UNSENT, "Failed to connect to %s port %s after %lld ms: %s",
	    h->host, h->port, (long long)(mono_us() - h->connect_at) / 1000,
	    strerror(h->last_errno ? h->last_errno : ECONNREFUSED));
}

/* Open a fresh connection for the request in h->out. */
static void
connect_start(struct http *h)
{
	conn_close(h);
	addrs_free(h);
	h->reused = false;
	h->sent = 0;
	buf_reset(&h->in);
	h->eof = false;
	h->last_errno = 0;
	h->connect_at = mono_us();
	h->connect_by = h->connect_at + CONNECT_TIMEOUT_MS * 1000LL;
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	int rc = getaddrinfo(h->host, h->port, &hints, &h->addrs);
	if (rc == 0) { /* an address: nothing to look up */
		h->addr = h->addrs;
		connect_next(h);
		return;
	}
	h->job = resolve_start(h->host, h->port);
	if (!h->job) {
		end(h, HTTP_UNSENT, "cannot resolve %s: %s", h->host,
		    strerror(errno));
		return;
	}
	h->st = ST_RESOLVING;
}

/* The connection failed under the request (err, or 0 for closed). A kept
 * connection the tracker had closed before reading it: once more on a
 * fresh one. */
static void
conn_failed(struct http *h, int err)
{
	conn_close(h);
	if (h->reused && !h->retried && h->in.len == 0) {
		h->retried = true;
		connect_start(h);
		return;
	}
	if (err)
		end(h, HTTP_FAILED, "%s %s: %s",
		    h->st == ST_SENDING ? "Send failure to"
					: "Recv failure from",
		    h->host, strerror(err));
	else
		end(h, HTTP_FAILED,
		    "the tracker closed the connection without a whole answer");
}

/* Whether a kept-alive connection is still open and quiet: anything to
 * read on it now is the tracker closing it (or garbage). */
static bool
conn_alive(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 0;
}

/* Readiness of fd for events, without waiting. */
static short
ready(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	return poll(&p, 1, 0) > 0 ? p.revents : 0;
}

/* One step of the request; return false when it must wait. */
static bool
advance(struct http *h)
{
	int64_t now = mono_us();
	if (h->st != ST_IDLE && h->st != ST_ENDED && now >= h->done_by) {
		end(h, HTTP_FAILED, "Operation timed out after %d milliseconds",
		    REQUEST_TIMEOUT_MS);
		conn_close(h);
		addrs_free(h);
		return true;
	}
	switch (h->st) {
	case ST_IDLE:
	case ST_ENDED:
		return false;
	case ST_RESOLVING: {
		char c;
		if (read(h->job->pipe[0], &c, 1) != 1 ||
		    !atomic_load(&h->job->done)) {
			if (now < h->connect_by)
				return false;
			addrs_free(h);
			end(h, HTTP_UNSENT,
			    "Resolving timed out after %d milliseconds",
			    CONNECT_TIMEOUT_MS);
			return true;
		}
		if (h->job->rc != 0) {
			end(h, HTTP_UNSENT, "Could not resolve host: %s (%s)",
			    h->host, gai_strerror(h->job->rc));
			addrs_free(h);
			return true;
		}
		h->addrs = h->job->res; /* the request takes them over */
		h->job->res = NULL;
		resolve_drop(h->job);
		h->job = NULL;
		h->addr = h->addrs;
		connect_next(h);
		return true;
	}
	case ST_CONNECTING: {
		if (!ready(h->fd, POLLOUT)) {
			if (now < h->attempt_by)
				return false;
			h->last_errno = ETIMEDOUT;
		} else {
			int err = 0;
			socklen_t len = sizeof err;
			getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err == 0) {
				h->st = ST_SENDING;
				return true;
			}
			h->last_errno = err;
		}
		conn_close(h);
		h->addr = h->addr->ai_next;
		if (now >= h->connect_by)
			h->addr = NULL;
		connect_next(h);
		return true;
	}
	case ST_SENDING: {
		ssize_t n = send(h->fd, h->out.p + h->sent,
				 h->out.len - h->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return false;
			conn_failed(h, errno);
			return true;
		}
		h->sent += (size_t)n;
		if (h->sent == h->out.len)
			h->st = ST_RECEIVING;
		return true;
	}
	case ST_RECEIVING: {
		if (h->in.len + READ_CHUNK > HTTP_ANSWER_MAX + HEAD_MAX) {
			conn_close(h);
			end(h, HTTP_FAILED, "the answer is over %d bytes",
			    HTTP_ANSWER_MAX);
			return true;
		}
		char chunk[READ_CHUNK];
		ssize_t n = recv(h->fd, chunk, sizeof chunk, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return false;
			conn_failed(h, errno);
			return true;
		}
		if (n == 0)
			h->eof = true;
		else
			buf_add(&h->in, chunk, (size_t)n);
		int r = http_parse(h->in.p, h->in.len, h->eof, &h->ans);
		if (r == 0 && !h->eof)
			return true;
		if (r == 0) { /* closed before the whole answer */
			conn_failed(h, 0);
			return true;
		}
		if (r < 0) {
			conn_close(h);
			end(h, HTTP_FAILED, "the answer is not HTTP/1.x");
			return true;
		}
		if (h->ans.body.len > HTTP_ANSWER_MAX) {
			conn_close(h);
			end(h, HTTP_FAILED, "the answer is over %d bytes",
			    HTTP_ANSWER_MAX);
			return true;
		}
		if (!h->ans.keep_alive || h->eof ||
		    h->ans.consumed != h->in.len)
			conn_close(h);
		h->res.code = h->ans.code;
		h->res.body = h->ans.body.p ? h->ans.body.p : "";
		h->res.len = h->ans.body.len;
		end(h, HTTP_ANSWERED, NULL);
		return true;
	}
	}
	return false;
}

/* ---- the interface ---------------------------------------------------- */

/* Whether libcurl must carry requests to server: https, a URL this file
 * does not take apart, or a proxy variable libcurl would act on. */
static bool
needs_curl(const char *server)
{
	if (strncmp(server, "http://", 7))
		return true;
	const char *vars[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
	for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return true;
	}
	return false;
}

/* Take http://HOST[:PORT][/PATH] apart into h; return -1 for anything
 * else (user:password@, a query, a fragment, an IPv6 zone: libcurl's). */
static int
url_split(struct http *h, const char *server)
{
	const char *host = server + 7, *p = host;
	const char *allowed = *p == '['
				  ? "0123456789abcdefABCDEF:."
				  : "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
	if (*p == '[')
		p++;
	while (*p && strchr(allowed, *p))
		p++;
	if (*host == '[' && *p++ != ']')
		return -1;
	const char *host_end = p; /* the brackets stay in Host: */
	if (host_end == host || (*host == '[' && host_end - host < 3))
		return -1;
	long port = 80;
	if (*p == ':') {
		const char *digits = ++p;
		for (port = 0; *p >= '0' && *p <= '9' && port <= 65535; p++)
			port = port * 10 + (*p - '0');
		if (p == digits || port < 1 || port > 65535)
			return -1;
	}
	if ((*p && *p != '/') || strpbrk(p, "?#@"))
		return -1;
	size_t n = (size_t)(host_end - host);
	char num[8];
	snprintf(num, sizeof num, "%ld", port);
	h->port = xstrdup(num);
	h->prefix = xstrdup(p);
	/* getaddrinfo wants an IPv6 address without its brackets. */
	size_t bare = *host == '[' ? n - 2 : n;
	h->host = xmalloc(bare + 1);
	memcpy(h->host, *host == '[' ? host + 1 : host, bare);
	h->host[bare] = '\0';
	/* Host: as in the URL, with the port unless it is 80 (as libcurl). */
	buf_printf(&h->head, "Host: %.*s", (int)n, host);
	if (port != 80)
		buf_printf(&h->head, ":%ld", port);
	buf_puts(&h->head, "\r\n");
	return 0;
}

struct http *
http_new(const char *server, const char *const *headers)
{
	struct http *h = xmalloc(sizeof *h);
	*h = (struct http){.fd = -1};
	if (needs_curl(server) || url_split(h, server) < 0) {
		h->curl =
		    lcurl_new(server, headers, h->why_curl, sizeof h->why_curl);
		return h;
	}
	for (const char *const *l = headers; *l; l++)
		buf_printf(&h->head, "%s\r\n", *l);
	return h;
}

void
http_free(struct http *h)
{
	if (!h)
		return;
	lcurl_free(h->curl);
	conn_close(h);
	addrs_free(h);
	free(h->host);
	free(h->port);
	free(h->prefix);
	if (h->head.p)
		memset(h->head.p, 0, h->head.len); /* the token */
	buf_free(&h->head);
	if (h->out.p)
		memset(h->out.p, 0, h->out.len);
	buf_free(&h->out);
	buf_free(&h->in);
	buf_free(&h->ans.body);
	free(h);
}

void
http_start(struct http *h, const char *path, const char *body, size_t len)
{
	if (h->curl) {
		lcurl_start(h->curl, path, body, len);
		return;
	}
	h->res = (struct http_result){0};
	if (h->why_curl[0]) {
		end(h, HTTP_UNSENT, "%s", h->why_curl);
		return;
	}
	buf_reset(&h->out);
	buf_printf(&h->out, "%s %s%s HTTP/1.1\r\n%s", body ? "POST" : "GET",
		   h->prefix, path, h->head.p);
	if (body)
		buf_printf(&h->out, "Content-Length: %zu\r\n", len);
	buf_puts(&h->out, "\r\n");
	if (body)
		buf_add(&h->out, body, len);
	int64_t now = mono_us();
	h->done_by = now + REQUEST_TIMEOUT_MS * 1000LL;
	h->retried = false;
	if (h->fd >= 0 && conn_alive(h->fd)) {
		h->reused = true;
		h->sent = 0;
		buf_reset(&h->in);
		h->eof = false;
		h->st = ST_SENDING;
		return;
	}
	connect_start(h);
}

bool
http_step(struct http *h, struct http_result *res)
{
	if (h->curl)
		return lcurl_step(h->curl, res);
	while (advance(h))
		; /* as far as it goes without waiting */
	if (h->st != ST_ENDED)
		return false;
	*res = h->res;
	h->st = ST_IDLE;
	return true;
}

void
http_wait(struct http *h, struct pollfd *extra, unsigned n, int max_ms)
{
	if (h->curl) {
		lcurl_wait(h->curl, extra, n, max_ms);
		return;
	}
	struct pollfd fds[HTTP_WAIT_EXTRA_MAX + 1];
	if (n > HTTP_WAIT_EXTRA_MAX)
		n = HTTP_WAIT_EXTRA_MAX;
	memcpy(fds, extra, n * sizeof *fds);
	unsigned nfds = n;
	int64_t by = INT64_MAX;
	switch (h->st) {
	case ST_RESOLVING:
		fds[nfds++] = (struct pollfd){h->job->pipe[0], POLLIN, 0};
		by = h->connect_by;
		break;
	case ST_CONNECTING:
		fds[nfds++] = (struct pollfd){h->fd, POLLOUT, 0};
		by = h->attempt_by;
		break;
	case ST_SENDING:
		fds[nfds++] = (struct pollfd){h->fd, POLLOUT, 0};
		break;
	case ST_RECEIVING:
		fds[nfds++] = (struct pollfd){h->fd, POLLIN, 0};
		break;
	case ST_ENDED:
		max_ms = 0;
		break;
	case ST_IDLE:
		break;
	}
	if (h->st != ST_IDLE && h->st != ST_ENDED && h->done_by < by)
		by = h->done_by;
	if (by != INT64_MAX) {
		int64_t left = by - mono_us();
		if (left <= 0)
			max_ms = 0;
		else if (left / 1000 + 1 < max_ms)
			max_ms = (int)(left / 1000 + 1);
	}
	if (poll(fds, nfds, max_ms) < 0)
		nfds = n = 0; /* EINTR: the loop goes round */
	for (unsigned i = 0; i < n; i++)
		extra[i].revents = fds[i].revents;
}

void
http_cancel(struct http *h)
{
	if (h->curl) {
		lcurl_cancel(h->curl);
		return;
	}
	if (h->st == ST_IDLE)
		return;
	/* Half a request or an unread answer spoils the connection. */
	if (h->st != ST_ENDED)
		conn_close(h);
	addrs_free(h);
	h->st = ST_IDLE;
}
