/*
 * The sender: samples wait in a queue in memory and go to the tracker in the
 * background, one request at a time over one kept-alive connection (libcurl
 * multi, driven by the event loop, so the network never blocks sampling).
 *
 * The requests follow the test's life: create it (with the client's own
 * start time) once the tracker answers; post the queue in batches; once
 * finished and drained, stop it. A failed request is retried with backoff;
 * resending samples is safe because the tracker dedups them by timestamp.
 * A refusal that retrying cannot cure (401, 404, ...) is reported once and
 * ends delivery; what is left goes to the spool file.
 *
 * Once the test is stopped, one GET asks for its baseline (SPEC 6.4): tried
 * once, never retried, so that a tracker gone after the stop costs the
 * run's end at most the flush timeout.
 */
#include "client.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "isotime.h"

#define BATCH_MAX 1000 /* the API's limit on one usage array */
#define BACKOFF_MIN_US 250000
#define BACKOFF_MAX_US 5000000
#define CONNECT_TIMEOUT_MS 3000
#define REQUEST_TIMEOUT_MS 10000
#define RESPONSE_MAX (1024 * 1024) /* the API's answers are far smaller */
#define FIND_LIMIT "50"		   /* newest tests to look through for ours */
/* While sampling, samples go out at most once a second, together: a request
 * per sample would cost more than the sampling (20 a second at -i 0.05). */
#define SEND_GAP_US 1000000

enum request {
	REQ_NONE,
	REQ_FIND,     /* look for a test created by an unanswered request */
	REQ_CREATE,   /* the test, with the client's own start time */
	REQ_USAGE,    /* a batch of samples */
	REQ_STOP,     /* the test, with the client's own end time */
	REQ_GET,      /* the stopped test's figures, for the summary */
	REQ_BASELINE, /* the medians of its earlier runs, once */
};

/* Where the baseline GET is. */
enum baseline_state {
	BASELINE_UNWANTED, /* not asked for */
	BASELINE_DUE,	   /* to ask once the test is stopped */
	BASELINE_DONE,	   /* asked: an answer, or why there is none */
};

struct sender {
	CURLM *multi;
	CURL *easy; /* one handle, reused: its connection stays alive */
	struct curl_slist *headers;
	struct http_answer answer; /* to the request in flight */

	char *server, *name, *description;
	char *tags; /* the create's "tags" as JSON, NULL for none */
	struct command_usage command; /* reported with the stop */
	int exit_status;	      /* reported with the stop; -1: none */
	double threshold;
	int64_t start_us, end_us;
	bool quiet;

	int64_t test_id;
	bool find;	  /* a create may have arrived unanswered: look first */
	struct sample *q; /* undelivered samples are q[head..len) */
	size_t head, len, cap;

	enum request inflight;
	size_t batch; /* samples in the usage request in flight */
	struct buf url, body;

	int64_t retry_at;  /* monotonic us; no request before then */
	int64_t next_send; /* no samples before then (but when finishing) */
	int64_t backoff;
	unsigned long progress;

	bool finishing; /* no more samples; stop once drained */
	bool stopped;
	bool fetch;	   /* stopped earlier: GET the test for the summary */
	bool gave_up;	   /* a refusal retrying cannot cure */
	bool warned;	   /* the tracker being unreachable was reported */
	bool no_mem;	   /* a tracker older than mem_usage: CPU only */
	bool no_exit;	   /* a tracker older than exit_status: none */
	struct buf result; /* the test object from stop (or GET) */

	int baseline_runs; /* ?runs= of the baseline GET */
	enum baseline_state baseline;
	struct buf baseline_body; /* its 200 answer, else empty */
	struct buf baseline_why;  /* else why there is none */
};

/* The tags as a JSON object, NULL when there are none. */
static char *
tags_json(const struct tags *t)
{
	if (!t || t->n == 0)
		return NULL;
	struct buf b = {0};
	for (size_t i = 0; i < t->n; i++) {
		buf_puts(&b, i ? "," : "{");
		json_put_string(&b, t->item[i].key);
		buf_puts(&b, ":");
		json_put_string(&b, t->item[i].value);
	}
	buf_puts(&b, "}");
	return b.p;
}

struct sender *
sender_new(const struct test_meta *m)
{
	struct sender *s = xmalloc(sizeof *s);
	*s = (struct sender){
	    .server = xstrdup(m->server),
	    .name = xstrdup(m->name),
	    .description = xstrdup(m->description),
	    .tags = tags_json(m->tags),
	    .threshold = m->threshold,
	    .start_us = m->start_us,
	    .quiet = m->quiet,
	    .test_id = m->test_id,
	    .find = m->find,
	    .exit_status = -1,
	    .baseline_runs = m->baseline_runs,
	    .baseline = m->baseline_runs > 0 ? BASELINE_DUE : BASELINE_UNWANTED,
	    .backoff = BACKOFF_MIN_US,
	    .answer.max = RESPONSE_MAX};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	s->multi = curl_multi_init();
	s->easy = curl_easy_init();
	if (!s->multi || !s->easy) {
		fputs("grasshopper: cannot start libcurl\n", stderr);
		exit(1);
	}
	struct buf auth = {0};
	buf_printf(&auth, "Authorization: Bearer %s", m->token);
	s->headers = curl_slist_append(NULL, auth.p);
	memset(auth.p, 0, auth.len); /* one copy of the token less */
	buf_free(&auth);
	s->headers =
	    curl_slist_append(s->headers, "Content-Type: application/json");
	s->headers = curl_slist_append(s->headers, "Accept: application/json");
	s->headers = curl_slist_append(s->headers, "Expect:");

	http_easy_setup(s->easy, s->headers, &s->answer, CONNECT_TIMEOUT_MS,
			REQUEST_TIMEOUT_MS);
	return s;
}

void
sender_free(struct sender *s)
{
	if (!s)
		return;
	sender_cancel(s);
	curl_easy_cleanup(s->easy);
	curl_multi_cleanup(s->multi);
	curl_slist_free_all(s->headers);
	curl_global_cleanup();
	free(s->server);
	free(s->name);
	free(s->description);
	free(s->tags);
	free(s->q);
	buf_free(&s->url);
	buf_free(&s->body);
	buf_free(&s->answer.body);
	buf_free(&s->result);
	buf_free(&s->baseline_body);
	buf_free(&s->baseline_why);
	free(s);
}

void
sender_push(struct sender *s, const struct sample *x)
{
	if (s->head > 0 && s->head >= s->len / 2) {
		/* Reclaim the delivered front; a request in flight has its
		 * body already written and only ever moves head on. */
		memmove(s->q, s->q + s->head,
			(s->len - s->head) * sizeof *s->q);
		s->len -= s->head;
		s->head = 0;
	}
	if (s->len == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->q = xrealloc(s->q, s->cap * sizeof *s->q);
	}
	s->q[s->len++] = *x;
}

void
sender_finish(struct sender *s, int64_t end_us, const struct command_usage *cmd,
	      int exit_status)
{
	s->finishing = true;
	s->end_us = end_us;
	s->command = *cmd;
	s->exit_status = exit_status;
}

void
sender_mark_stopped(struct sender *s)
{
	s->stopped = true;
	s->fetch = true;
}

/* Whether the baseline is still to be asked for, the test being stopped
 * and its figures in hand. */
static bool
baseline_due(const struct sender *s)
{
	return s->baseline == BASELINE_DUE && s->stopped && !s->fetch;
}

/* Whether there is a request to make (now or after the backoff). */
static bool
request_due(const struct sender *s)
{
	return !s->test_id || s->head < s->len ||
	       (s->finishing && !s->stopped) || s->fetch || baseline_due(s);
}

/* When the next request may start (monotonic us), INT64_MAX for never. */
static int64_t
request_when(const struct sender *s)
{
	if (s->inflight || s->gave_up || !request_due(s))
		return INT64_MAX;
	bool samples_next = s->test_id && s->head < s->len;
	if (samples_next && !s->finishing && s->next_send > s->retry_at)
		return s->next_send;
	return s->retry_at;
}

/* Build the next request's URL and body; return it, or REQ_NONE. */
static enum request
request_next(struct sender *s)
{
	buf_reset(&s->url);
	buf_reset(&s->body);
	buf_puts(&s->url, s->server);
	if (!s->test_id && s->find) {
		buf_puts(&s->url, "/api/v1/test?limit=" FIND_LIMIT);
		return REQ_FIND;
	}
	if (!s->test_id) {
		buf_puts(&s->url, "/api/v1/test");
		buf_puts(&s->body, "{\"name\":");
		json_put_string(&s->body, s->name);
		buf_puts(&s->body, ",\"description\":");
		json_put_string(&s->body, s->description);
		buf_printf(&s->body, ",\"threshold\":%.15g,\"start_time\":",
			   s->threshold);
		json_put_time(&s->body, s->start_us);
		if (s->tags)
			buf_printf(&s->body, ",\"tags\":%s", s->tags);
		buf_puts(&s->body, "}");
		return REQ_CREATE;
	}
	buf_printf(&s->url, "/api/v1/test/%" PRId64, s->test_id);
	if (s->head < s->len) {
		s->batch = s->len - s->head;
		if (s->batch > BATCH_MAX)
			s->batch = BATCH_MAX;
		buf_puts(&s->url, "/usage");
		buf_puts(&s->body, "[");
		for (size_t i = 0; i < s->batch; i++) {
			const struct sample *x = &s->q[s->head + i];
			buf_printf(&s->body, "%s{\"cpu_usage\":%.6f,",
				   i ? "," : "", x->cpu);
			if (x->has_mem && !s->no_mem)
				buf_printf(&s->body, "\"mem_usage\":%.6f,",
					   x->mem);
			buf_puts(&s->body, "\"timestamp\":");
			json_put_time(&s->body, x->stamp);
			buf_puts(&s->body, "}");
		}
		buf_puts(&s->body, "]");
		return REQ_USAGE;
	}
	if (s->finishing && !s->stopped) {
		buf_puts(&s->url, "/stop");
		buf_puts(&s->body, "{\"end_time\":");
		json_put_time(&s->body, s->end_us);
		if (s->exit_status >= 0 && !s->no_exit)
			buf_printf(&s->body, ",\"exit_status\":%d",
				   s->exit_status);
		if (s->command.known)
			buf_printf(&s->body,
				   ",\"user_cpu\":%.6f,\"system_cpu\":%.6f,"
				   "\"max_rss\":%" PRId64,
				   s->command.user_cpu, s->command.system_cpu,
				   s->command.max_rss_kib);
		buf_puts(&s->body, "}");
		return REQ_STOP;
	}
	if (s->fetch)
		return REQ_GET;
	if (baseline_due(s)) {
		buf_printf(&s->url, "/baseline?runs=%d", s->baseline_runs);
		return REQ_BASELINE;
	}
	return REQ_NONE;
}

/* A failure retrying may cure: report the first one, then back off. */
static void
request_retry(struct sender *s, const char *why)
{
	if (!s->warned && !s->quiet) {
		/* libcurl's sentence may quote what the far end sent. */
		struct buf b = {0};
		printable_add(&b, why, strlen(why));
		fprintf(stderr,
			"grasshopper: tracker %s not answering (%s); samples "
			"wait and are retried\n",
			s->server, b.p);
		buf_free(&b);
	}
	s->warned = true;
	s->retry_at = mono_us() + s->backoff;
	s->backoff =
	    s->backoff * 2 > BACKOFF_MAX_US ? BACKOFF_MAX_US : s->backoff * 2;
}

/* Start the next request if one is due; return true if one started. */
static bool
request_start(struct sender *s)
{
	int64_t now = mono_us();
	if (now < request_when(s))
		return false;
	enum request r = request_next(s);
	if (r == REQ_NONE)
		return false;
	if (r == REQ_USAGE)
		s->next_send = now + SEND_GAP_US;
	http_answer_reset(&s->answer);
	curl_easy_setopt(s->easy, CURLOPT_URL, s->url.p);
	if (r == REQ_GET || r == REQ_FIND || r == REQ_BASELINE) {
		curl_easy_setopt(s->easy, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body.p);
		curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE,
				 (long)s->body.len);
	}
	if (curl_multi_add_handle(s->multi, s->easy) != CURLM_OK) {
		request_retry(s, "libcurl would not start the request");
		return false;
	}
	s->inflight = r;
	return true;
}

/* A refusal retrying cannot cure: report it once and stop delivering. */
static void
request_refused(struct sender *s, long code)
{
	struct buf why = {0};
	buf_printf(&why, "%ld", code);
	tracker_error_add(&why, s->answer.body.p, s->answer.body.len);
	if (code == 401)
		fprintf(stderr,
			"grasshopper: the tracker rejected the token (%s); get "
			"a new one on its web page\n",
			why.p);
	else
		fprintf(stderr,
			"grasshopper: the tracker refused the %s (%s)\n",
			s->inflight == REQ_CREATE  ? "new test"
			: s->inflight == REQ_USAGE ? "samples"
			: s->inflight == REQ_STOP  ? "stop"
						   : "request",
			why.p);
	buf_free(&why);
	s->gave_up = true;
}

/* The id of our test in a list of tests (the one with our start time, to
 * the microsecond), 0 if it is not there, -1 if the list is unreadable. */
static int64_t
find_created(const struct sender *s)
{
	struct json_value list, t, v;
	size_t pos = 0;
	int64_t start, id;
	if (jsonscan_get(s->answer.body.p, s->answer.body.len, "tests",
			 &list) ||
	    list.type != JSON_ARRAY)
		return -1;
	while (jsonscan_next(&list, &pos, &t) == 0)
		if (!jsonscan_get(t.p, t.len, "start_time", &v) &&
		    v.type == JSON_STRING &&
		    !isotime_parse(v.p + 1, v.len - 2, &start) &&
		    start == s->start_us &&
		    !jsonscan_get(t.p, t.len, "id", &v) &&
		    !jsonscan_int64(&v, &id) && id > 0)
			return id;
	return 0;
}

/* A 2xx answer: move the test along; return -1 if it makes no sense. */
static int
request_succeeded(struct sender *s)
{
	struct json_value v;
	int64_t id;
	switch (s->inflight) {
	case REQ_FIND:
		if ((id = find_created(s)) < 0)
			return -1;
		s->test_id = id; /* or still 0: create it */
		s->find = false;
		break;
	case REQ_CREATE:
		if (jsonscan_get(s->answer.body.p, s->answer.body.len, "id",
				 &v) ||
		    jsonscan_int64(&v, &id) || id <= 0)
			return -1;
		s->test_id = id;
		break;
	case REQ_USAGE:
		s->head += s->batch;
		if (s->head == s->len)
			s->head = s->len = 0;
		break;
	case REQ_BASELINE: /* answered in baseline_done */
		break;
	case REQ_STOP:
	case REQ_GET:
		s->stopped = true;
		s->fetch = false;
		buf_reset(&s->result);
		buf_add(&s->result, s->answer.body.p ? s->answer.body.p : "",
			s->answer.body.len);
		break;
	case REQ_NONE:
		break;
	}
	return 0;
}

/* Whether the tracker refused request r for naming field: one older than
 * the field answers 400 "unknown field \"FIELD\"" (SPEC 6.3's mem_usage
 * of a sample, exit_status of a stop). */
static bool
refused_field(const struct sender *s, long code, enum request r,
	      const char *field)
{
	return s->inflight == r && code == 400 && s->answer.body.p &&
	       memmem(s->answer.body.p, s->answer.body.len, field,
		      strlen(field));
}

/* Send the request again without field, and from now on (*dropped). */
static void
drop_field(struct sender *s, bool *dropped, const char *field,
	   const char *instead)
{
	if (!s->quiet)
		fprintf(stderr,
			"grasshopper: tracker %s does not take %s (an older "
			"version); %s\n",
			s->server, field, instead);
	*dropped = true;
	s->retry_at = 0;
}

/* The baseline GET ended with rc and code: keep its answer, or why there
 * is none. Never retried (see the top of this file). */
static void
baseline_done(struct sender *s, CURLcode rc, long code)
{
	s->baseline = BASELINE_DONE;
	if (rc != CURLE_OK) {
		const char *e = s->answer.error[0] ? s->answer.error
						   : curl_easy_strerror(rc);
		buf_puts(&s->baseline_why, "no answer from the tracker (");
		printable_add(&s->baseline_why, e, strlen(e));
		buf_puts(&s->baseline_why, ")");
	} else if (code != 200) {
		buf_printf(&s->baseline_why,
			   "the tracker gave no baseline (%ld", code);
		tracker_error_add(&s->baseline_why, s->answer.body.p,
				  s->answer.body.len);
		buf_puts(&s->baseline_why,
			 code == 404 ? "; an older version?)" : ")");
	} else {
		buf_add(&s->baseline_body,
			s->answer.body.p ? s->answer.body.p : "",
			s->answer.body.len);
	}
	s->progress++;
}

/* Whether a failed request may still have been carried out: anything but
 * a connection never made, or a tracker saying it did nothing. */
static bool
maybe_arrived(CURLcode rc, long code)
{
	if (rc != CURLE_OK)
		return rc != CURLE_COULDNT_CONNECT &&
		       rc != CURLE_COULDNT_RESOLVE_HOST &&
		       rc != CURLE_COULDNT_RESOLVE_PROXY;
	return code != 429 && code != 503;
}

/* The request in flight ended with rc: act on the answer. */
static void
request_done(struct sender *s, CURLcode rc)
{
	long code = 0;
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(s->multi, s->easy);
	if (s->inflight == REQ_BASELINE) {
		baseline_done(s, rc, code);
	} else if (rc != CURLE_OK) {
		request_retry(s, s->answer.error[0] ? s->answer.error
						    : curl_easy_strerror(rc));
	} else if (code >= 200 && code < 300) {
		if (request_succeeded(s) == 0) {
			s->backoff = BACKOFF_MIN_US;
			s->retry_at = 0;
			s->progress++;
		} else {
			request_retry(s, "an answer that is not the API's");
		}
	} else if (s->inflight == REQ_STOP && code == 409) {
		/* already_stopped: an earlier stop arrived but its answer
		 * did not; fetch the test for the summary instead. */
		s->stopped = true;
		s->fetch = true;
		s->progress++;
	} else if (code == 408 || code == 429 || code >= 500) {
		char why[64];
		snprintf(why, sizeof why, "HTTP %ld", code);
		request_retry(s, why);
	} else if (!s->no_mem &&
		   refused_field(s, code, REQ_USAGE, "mem_usage")) {
		drop_field(s, &s->no_mem, "mem_usage", "sending CPU only");
	} else if (!s->no_exit &&
		   refused_field(s, code, REQ_STOP, "exit_status")) {
		/* The command's other figures are still worth keeping. */
		drop_field(s, &s->no_exit, "exit_status",
			   "stopping the test without it");
	} else {
		request_refused(s, code);
	}
	/* Retrying a create that may have been carried out could make a
	 * second test: look for the first one before. */
	if (s->inflight == REQ_CREATE && !s->test_id)
		s->find = maybe_arrived(rc, code);
	s->inflight = REQ_NONE;
}

void
sender_wait(struct sender *s, struct curl_waitfd *extra, unsigned n, int max_ms)
{
	int ms = max_ms;
	int64_t when = request_when(s);
	if (when != INT64_MAX) {
		int64_t left = when - mono_us();
		if (left <= 0)
			ms = 0;
		else if (left / 1000 + 1 < ms)
			ms = (int)(left / 1000 + 1);
	}
	curl_multi_poll(s->multi, extra, n, ms, NULL);
}

void
sender_step(struct sender *s)
{
	int running;
	curl_multi_perform(s->multi, &running);
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(s->multi, &left)))
		if (msg->msg == CURLMSG_DONE && s->inflight)
			request_done(s, msg->data.result);
	if (request_start(s))
		curl_multi_perform(s->multi, &running);
}

bool
sender_complete(const struct sender *s)
{
	return s->test_id && s->head == s->len && s->stopped;
}

bool
sender_idle(const struct sender *s)
{
	return s->gave_up ||
	       (sender_complete(s) && !s->fetch && !baseline_due(s));
}

unsigned long
sender_progress(const struct sender *s)
{
	return s->progress;
}

void
sender_cancel(struct sender *s)
{
	if (s->inflight)
		curl_multi_remove_handle(s->multi, s->easy);
	s->inflight = REQ_NONE;
}

int64_t
sender_test_id(const struct sender *s)
{
	return s->test_id;
}

bool
sender_stopped(const struct sender *s)
{
	return s->stopped;
}

const struct sample *
sender_queue(const struct sender *s, size_t *n)
{
	*n = s->len - s->head;
	return s->q + s->head;
}

const char *
sender_result(const struct sender *s, size_t *len)
{
	*len = s->result.len;
	return s->result.len ? s->result.p : NULL;
}

const char *
sender_baseline(const struct sender *s, size_t *len, const char **why)
{
	*len = s->baseline_body.len;
	*why = s->baseline_why.len	     ? s->baseline_why.p
	       : s->baseline == BASELINE_DUE ? "no answer from the tracker"
					     : NULL;
	return s->baseline_body.len ? s->baseline_body.p : NULL;
}
