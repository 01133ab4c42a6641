/*
 * Requests through libcurl (multi interface), for what http.c does not
 * speak itself: https://, proxies, unusual URLs. libcurl is opened with
 * dlopen(3) only then, so a client sending plain http:// never maps the 30
 * libraries nor initialises OpenSSL (libcurl does on any first use).
 *
 * The same request as http.c: the caller's header lines, no
 * "Expect: 100-continue", one kept-alive connection, the same timeouts and
 * answer limit, only http and https.
 */
#include "grasshopper.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

/* libcurl's ABI has been .so.4 since 7.16 (2006), 8.x included. */
#define LIBCURL_SONAME "libcurl.so.4"

/* The libcurl functions used, looked up in the library at run time. */
struct curl_api {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *e);
	CURLcode (*easy_setopt)(CURL *e, CURLoption o, ...);
	CURLcode (*easy_getinfo)(CURL *e, CURLINFO i, ...);
	const char *(*easy_strerror)(CURLcode rc);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *m);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_perform)(CURLM *m, int *running);
	CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd *extra, unsigned n,
				int ms, int *numfds);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};

struct lcurl {
	void *lib;
	struct curl_api f;
	bool inited; /* curl_global_init done: cleanup is due */
	CURLM *multi;
	CURL *easy; /* one handle, reused: its connection stays alive */
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	char *server;
	struct buf url, resp;
	bool inflight;
	bool start_failed; /* the request could not be added: say so next */
};

/* Look name up in lib into *fp (a function pointer); return 0 or -1. */
static int
sym(void *lib, const char *name, void *fp)
{
	void *p = dlsym(lib, name);
	if (!p)
		return -1;
	memcpy(fp, &p, sizeof p);
	return 0;
}

/* Load libcurl's functions into f; return 0, or -1 with why set. */
static int
api_load(void *lib, struct curl_api *f, char *why, size_t whylen)
{
#define SYM(x) sym(lib, "curl_" #x, &f->x)
	if (SYM(global_init) || SYM(global_cleanup) || SYM(easy_init) ||
	    SYM(easy_cleanup) || SYM(easy_setopt) || SYM(easy_getinfo) ||
	    SYM(easy_strerror) || SYM(multi_init) || SYM(multi_cleanup) ||
	    SYM(multi_add_handle) || SYM(multi_remove_handle) ||
	    SYM(multi_perform) || SYM(multi_poll) || SYM(multi_info_read) ||
	    SYM(slist_append) || SYM(slist_free_all)) {
		snprintf(why, whylen, "%s: %s", LIBCURL_SONAME, dlerror());
		return -1;
	}
#undef SYM
	return 0;
}

/* libcurl's write callback: keep the answer, up to HTTP_ANSWER_MAX. */
static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n; /* size is always 1 */
	if (b->len + len > HTTP_ANSWER_MAX)
		return 0;
	buf_add(b, p, len);
	return len;
}

struct lcurl *
lcurl_new(const char *server, const char *const *headers, char *why,
	  size_t whylen)
{
	void *lib = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(why, whylen,
			 "libcurl (for https:// and proxies) would not load: "
			 "%s",
			 dlerror());
		return NULL;
	}
	struct lcurl *c = xmalloc(sizeof *c);
	*c = (struct lcurl){.lib = lib, .server = xstrdup(server)};
	if (api_load(lib, &c->f, why, whylen) < 0)
		goto fail;
	c->f.global_init(CURL_GLOBAL_DEFAULT);
	c->inited = true;
	c->multi = c->f.multi_init();
	c->easy = c->f.easy_init();
	if (!c->multi || !c->easy) {
		snprintf(why, whylen, "libcurl would not start");
		goto fail;
	}
	for (const char *const *l = headers; *l; l++)
		c->headers = c->f.slist_append(c->headers, *l);
	c->headers = c->f.slist_append(c->headers, "Expect:");

	CURL *e = c->easy;
	c->f.easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
	c->f.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	c->f.easy_setopt(e, CURLOPT_WRITEDATA, &c->resp);
	c->f.easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	c->f.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	c->f.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)CONNECT_TIMEOUT_MS);
	c->f.easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)REQUEST_TIMEOUT_MS);
	c->f.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	return c;
fail:
	lcurl_free(c);
	return NULL;
}

void
lcurl_free(struct lcurl *c)
{
	if (!c)
		return;
	if (c->inited) {
		lcurl_cancel(c);
		if (c->easy)
			c->f.easy_cleanup(c->easy);
		if (c->multi)
			c->f.multi_cleanup(c->multi);
		c->f.slist_free_all(c->headers);
		c->f.global_cleanup();
	}
	dlclose(c->lib);
	free(c->server);
	buf_free(&c->url);
	buf_free(&c->resp);
	free(c);
}

void
lcurl_start(struct lcurl *c, const char *path, const char *body, size_t len)
{
	buf_reset(&c->url);
	buf_printf(&c->url, "%s%s", c->server, path);
	buf_reset(&c->resp);
	c->errbuf[0] = '\0';
	c->f.easy_setopt(c->easy, CURLOPT_URL, c->url.p);
	if (!body) {
		c->f.easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
	} else {
		c->f.easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
		c->f.easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	c->start_failed = c->f.multi_add_handle(c->multi, c->easy) != CURLM_OK;
	c->inflight = !c->start_failed;
}

void
lcurl_wait(struct lcurl *c, struct pollfd *extra, unsigned n, int max_ms)
{
	struct curl_waitfd fds[HTTP_WAIT_EXTRA_MAX];
	if (n > HTTP_WAIT_EXTRA_MAX)
		n = HTTP_WAIT_EXTRA_MAX;
	for (unsigned i = 0; i < n; i++)
		fds[i] = (struct curl_waitfd){
		    .fd = extra[i].fd,
		    .events =
			(short)((extra[i].events & POLLIN ? CURL_WAIT_POLLIN
							  : 0) |
				(extra[i].events & POLLOUT ? CURL_WAIT_POLLOUT
							   : 0))};
	c->f.multi_poll(c->multi, fds, n, c->start_failed ? 0 : max_ms, NULL);
	for (unsigned i = 0; i < n; i++)
		extra[i].revents =
		    (short)((fds[i].revents & CURL_WAIT_POLLIN ? POLLIN : 0) |
			    (fds[i].revents & CURL_WAIT_POLLOUT ? POLLOUT : 0));
}

bool
lcurl_step(struct lcurl *c, struct http_result *res)
{
	if (c->start_failed) {
		c->start_failed = false;
		*res = (struct http_result){.outcome = HTTP_UNSENT};
		snprintf(res->why, sizeof res->why,
			 "libcurl would not start the request");
		return true;
	}
	int running, left;
	c->f.multi_perform(c->multi, &running);
	CURLMsg *msg;
	while ((msg = c->f.multi_info_read(c->multi, &left)))
		if (msg->msg == CURLMSG_DONE && c->inflight) {
			CURLcode rc = msg->data.result;
			long code = 0;
			c->f.easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE,
					  &code);
			c->f.multi_remove_handle(c->multi, c->easy);
			c->inflight = false;
			*res = (struct http_result){.code = code};
			if (rc == CURLE_OK) {
				res->outcome = HTTP_ANSWERED;
				res->body = c->resp.p ? c->resp.p : "";
				res->len = c->resp.len;
				return true;
			}
			/* Never reached: no name, no connection. */
			res->outcome =
			    rc == CURLE_COULDNT_CONNECT ||
				    rc == CURLE_COULDNT_RESOLVE_HOST ||
				    rc == CURLE_COULDNT_RESOLVE_PROXY
				? HTTP_UNSENT
				: HTTP_FAILED;
			snprintf(res->why, sizeof res->why, "%s",
				 c->errbuf[0] ? c->errbuf
					      : c->f.easy_strerror(rc));
			return true;
		}
	return false;
}

void
lcurl_cancel(struct lcurl *c)
{
	if (c->inflight)
		c->f.multi_remove_handle(c->multi, c->easy);
	c->inflight = false;
	c->start_failed = false;
}
