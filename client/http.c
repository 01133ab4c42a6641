/*
 * What every request to the tracker shares: how its easy handle is set up
 * (sender.c's requests and login.c's check differ only in their timeouts
 * and how much of an answer they keep).
 */
#include "client.h"

#include <curl/curl.h>

#include "config.h"

_Static_assert(HTTP_ERROR_SIZE >= CURL_ERROR_SIZE,
	       "libcurl's error buffer fits struct http_answer");

/* libcurl's write callback: keep the answer, up to its max; a longer one
 * fails the transfer (CURLE_WRITE_ERROR). */
static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct http_answer *a = arg;
	size_t len = size * n; /* size is always 1 */
	if (a->body.len + len > a->max)
		return 0;
	buf_add(&a->body, p, len);
	return len;
}

void
http_easy_setup(void *easy, struct curl_slist *headers, struct http_answer *a,
		long connect_ms, long total_ms)
{
	CURL *e = easy;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->error);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "grasshopper/" PACKAGE_VERSION);
	/* Never a redirect (libcurl follows none unless asked) nor another
	 * protocol: the token goes to this server and no other. */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
}

void
http_answer_reset(struct http_answer *a)
{
	buf_reset(&a->body);
	a->error[0] = '\0';
}
