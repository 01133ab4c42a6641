/*
 * The event loop: one thread waits on the sample timer (a timerfd on the
 * monotonic clock), grasshopper's signals (a signalfd) and the tracker's
 * connection (libcurl multi) together, so a slow tracker never delays a
 * sample and a sample never waits for the tracker.
 *
 * A run has two phases. While the command runs: sample on every tick,
 * forward SIGTERM/SIGHUP to the command, send in the background. Once it
 * ended: a last sample for the partial interval, then a bounded flush, the
 * stop, the baseline, the spool file for whatever is left, the summary and
 * the comparison (and --fail-if-slower's verdict).
 */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* A last sample closer than this to the previous one measures nothing. */
#define FINAL_SAMPLE_MIN_US 1000
/* Longest single wait; the loop just goes round again. */
#define WAIT_MAX_MS 60000

struct run_state {
	const struct options *o;
	struct sampler smp;
	struct sender *snd;
	struct run_stats st;
	int sigfd, tfd;
	struct sigsave save; /* the signal state we were started with */
	pid_t child;	    /* the command, until reaped; 0 with --no-command */
	bool ended;	    /* the command ended, or monitoring was stopped */
	int exit_status;    /* the command's, as grasshopper exits with it */
	bool sample_warned; /* a failed /proc/stat read was reported */
};

/* x >= 0 to the nearest integer: llround without libm, which the client
 * would load for this alone (300 KiB of peak RSS). */
static int64_t
round_positive(double x)
{
	return (int64_t)(x + 0.5);
}

/* Tick every interval from start_mono on: absolute expiries on the
 * monotonic clock, start + k * interval, so no error accumulates. */
static int
timer_start(int64_t start_mono, double interval)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -1;
	int64_t step = round_positive(interval * 1e9);
	int64_t first = start_mono * 1000 + step;
	struct itimerspec its = {
	    .it_value = {first / 1000000000, first % 1000000000},
	    .it_interval = {step / 1000000000, step % 1000000000},
	};
	if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Take a sample and queue it. */
static void
sample(struct run_state *r)
{
	struct sample x;
	if (sampler_take(&r->smp, &x) < 0) {
		if (!r->sample_warned)
			fprintf(stderr, "grasshopper: /proc/stat: %s\n",
				strerror(errno));
		r->sample_warned = true;
		return;
	}
	stats_add_sample(&r->st, &x);
	sender_push(r->snd, &x);
}

/* The timer fired (maybe more than once, if we were stopped). */
static void
on_timer(struct run_state *r)
{
	uint64_t ticks;
	/* Missed ticks are not made up: one sample covers the whole gap. */
	if (read(r->tfd, &ticks, sizeof ticks) == (ssize_t)sizeof ticks)
		sample(r);
}

/* The command ended or monitoring was told to stop: a last sample for the
 * partial interval, so the samples tile the run up to its end. */
static void
run_end(struct run_state *r)
{
	if (r->st.samples == 0 ||
	    mono_us() - r->smp.prev_mono >= FINAL_SAMPLE_MIN_US)
		sample(r);
	stats_end(&r->st, r->smp.prev_stamp);
	sender_finish(r->snd, r->smp.prev_stamp, &r->st.command,
		      r->o->no_command ? -1 : r->exit_status);
	r->ended = true;
	close(r->tfd);
	r->tfd = -1;
	if (r->child == 0 && !r->o->no_command)
		signals_after_child(r->sigfd, &r->save);
}

/* Reap the command if it has ended. */
static void
child_check(struct run_state *r)
{
	int ws;
	if (child_reap(r->child, &ws, &r->st.command) != r->child)
		return;
	r->child = 0;
	r->exit_status = child_exit_status(ws);
	run_end(r);
}

/* Read the signals that arrived while the command runs. */
static void
on_signals(struct run_state *r)
{
	struct signalfd_siginfo si;
	while (read(r->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD && r->child > 0)
			child_check(r);
		else if (r->child > 0)
			/* Not reaped yet, so the pid is still this child's. */
			kill(r->child, sig);
		else if (r->o->no_command && !r->ended)
			run_end(r);
	}
}

/* Whether a signal arrived that should cut the final flush short. */
static bool
flush_interrupted(int sigfd)
{
	struct signalfd_siginfo si;
	bool stop = false;
	while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si)
		if (si.ssi_signo != SIGCHLD)
			stop = true;
	return stop;
}

/* Deliver what is left until done, until timeout seconds pass without a
 * request succeeding, or until a signal says stop. */
static void
flush(struct sender *snd, int sigfd, double timeout)
{
	int64_t limit = round_positive(timeout * 1e6);
	int64_t last = mono_us();
	unsigned long progress = sender_progress(snd);
	struct curl_waitfd fd = {.fd = sigfd, .events = CURL_WAIT_POLLIN};
	sender_step(snd);
	while (!sender_idle(snd)) {
		int64_t now = mono_us();
		if (sender_progress(snd) != progress) {
			progress = sender_progress(snd);
			last = now;
		}
		int64_t left = last + limit - now;
		if (left <= 0)
			break;
		fd.revents = 0;
		sender_wait(snd, &fd, 1, (int)(left / 1000 + 1));
		if (fd.revents && flush_interrupted(sigfd))
			break;
		sender_step(snd);
	}
	sender_cancel(snd);
}

/* Save what the tracker did not get; print where, or why not. */
static char *
spool_leftovers(const struct run_state *r, const struct spool *base)
{
	struct spool sp = *base;
	sp.test_id = sender_test_id(r->snd);
	sp.stopped = sender_stopped(r->snd);
	sp.samples = (struct sample *)sender_queue(r->snd, &sp.n);
	return spool_write_new(&sp, r->o->spool_dir);
}

/* Tell where the leftovers are and how to send them. */
static void
spool_report(const char *path, size_t n)
{
	fprintf(stderr,
		"grasshopper: %zu sample%s not delivered, saved in %s; send "
		"them later with: grasshopper --replay %s\n",
		n, n == 1 ? "" : "s", path, path);
}

/* The run's final figures: the tracker's when it gave them. */
static void
stats_final(struct run_stats *st, struct sender *snd, bool quiet)
{
	size_t len;
	const char *test = sender_result(snd, &len);
	st->test_id = sender_test_id(snd);
	if (test && stats_from_test(st, test, len) < 0 && !quiet)
		fputs("grasshopper: the tracker's test figures are unreadable; "
		      "these are the client's own\n",
		      stderr);
}

/* The summary line. */
static void
summary_print(const struct run_stats *st, int exit_status, const char *server)
{
	struct buf b = {0};
	summary_format(&b, st, exit_status, server);
	fprintf(stderr, "grasshopper: %s\n", b.p);
	buf_free(&b);
}

/* Whether anything will use the run's baseline: the comparison line, the
 * step summary or the gate. */
static bool
baseline_wanted(const struct options *o)
{
	const char *md = getenv("GITHUB_STEP_SUMMARY");
	return !o->quiet || o->fail_if_slower > 0 || (md && *md);
}

/* The run against its baseline, as the sender got it (see baseline.c). */
static void
compare(struct comparison *c, const struct run_state *r, int status)
{
	size_t len = 0;
	const char *why = NULL, *js = NULL;
	if (!sender_complete(r->snd))
		why = "the tracker does not have the run yet (it is spooled)";
	else
		js = sender_baseline(r->snd, &len, &why);
	comparison_make(c, &r->st, status, js, len, why,
			tags_get(&r->o->tags, "branch"), r->o->fail_if_slower);
}

/* Print the comparison and the gate's verdict (a failing or undecided
 * gate also with --quiet: it was asked for); return the exit status. */
static int
compare_print(const struct comparison *c, const struct options *o, int status)
{
	if (!o->quiet && c->line.len)
		fprintf(stderr, "grasshopper: %s\n", c->line.p);
	if (c->verdict != GATE_OFF && (!o->quiet || c->verdict != GATE_PASSED))
		fprintf(stderr, "grasshopper: %s\n", c->why.p);
	return c->verdict == GATE_SLOWER ? EXIT_SLOWER : status;
}

/* While the command runs: sample, forward signals, send. */
static void
run_loop(struct run_state *r)
{
	struct curl_waitfd fds[2] = {
	    {.fd = r->sigfd, .events = CURL_WAIT_POLLIN},
	    {.fd = r->tfd, .events = CURL_WAIT_POLLIN},
	};
	sender_step(r->snd);
	while (!r->ended) {
		fds[0].revents = fds[1].revents = 0;
		sender_wait(r->snd, fds, 2, WAIT_MAX_MS);
		/* The tick first: a command ending on one still gets it. */
		if (fds[1].revents)
			on_timer(r);
		if (fds[0].revents)
			on_signals(r);
		sender_step(r->snd);
	}
}

/* Start the command (or not), return its pid, 0, or -status on failure. */
static pid_t
command_start(const struct options *o, const struct sigsave *save)
{
	if (o->no_command)
		return 0;
	int e;
	pid_t pid = child_start(o->command, save, &e);
	if (pid > 0)
		return pid;
	fprintf(stderr, "grasshopper: %s: %s\n", o->command[0],
		e == ENOENT ? "command not found" : strerror(e));
	return -exec_error_status(e);
}

int
run(const struct options *o)
{
	struct run_state r = {.o = o, .tfd = -1};
	int64_t start;
	r.sigfd = signals_setup(&r.save, !o->no_command);
	if (r.sigfd < 0) {
		fprintf(stderr, "grasshopper: signalfd: %s\n", strerror(errno));
		return 1;
	}
	/* The baseline is read just before the command starts: the first
	 * sample measures from that moment. */
	if (sampler_open(&r.smp, &start) < 0) {
		fprintf(stderr, "grasshopper: /proc/stat: %s\n",
			strerror(errno));
		return 1;
	}
	r.tfd = timer_start(r.smp.prev_mono, o->interval);
	if (r.tfd < 0) {
		fprintf(stderr, "grasshopper: timerfd: %s\n", strerror(errno));
		return 1;
	}
	r.child = command_start(o, &r.save);
	if (r.child < 0)
		return -r.child;

	/* The network only now, with the command already running. */
	stats_init(&r.st, start, o->threshold);
	struct test_meta meta = {
	    .server = o->server,
	    .token = o->token,
	    .name = o->name,
	    .description = o->description,
	    .threshold = o->threshold,
	    .start_us = start,
	    .tags = &o->tags,
	    .quiet = o->quiet,
	    .baseline_runs = baseline_wanted(o) ? o->baseline_runs : 0,
	};
	r.snd = sender_new(&meta);
	run_loop(&r);
	flush(r.snd, r.sigfd, o->flush_timeout);

	int status = o->no_command ? -1 : r.exit_status;
	if (!sender_complete(r.snd)) {
		struct spool base = {
		    .server = o->server,
		    .name = o->name,
		    .description = o->description,
		    .threshold = o->threshold,
		    .start_us = start,
		    .end_us = r.st.end_us,
		    .exit_status = status,
		    .command = r.st.command,
		    .tags = o->tags,
		};
		char *path = spool_leftovers(&r, &base);
		size_t n;
		sender_queue(r.snd, &n);
		if (path)
			spool_report(path, n);
		free(path);
	}
	stats_final(&r.st, r.snd, o->quiet);
	struct comparison cmp;
	compare(&cmp, &r, status);
	if (!o->quiet)
		summary_print(&r.st, status, o->server);
	int exit_status = compare_print(&cmp, o, o->no_command ? 0 : status);
	step_summary_write(&r.st, o->name, status, o->server, &cmp);
	comparison_free(&cmp);
	sender_free(r.snd);
	sampler_close(&r.smp);
	close(r.sigfd);
	return exit_status;
}

/* The file was recorded for another tracker than the one it goes to: say
 * so, and forget its test, whose id means nothing here (or names another
 * run): the samples make a new test, found by its start time if an earlier
 * replay here created it unanswered. */
static void
replay_elsewhere(struct spool *sp, const char *path, const char *server)
{
	struct buf was = {0};
	printable_add(&was, sp->server, strlen(sp->server));
	fprintf(stderr, "grasshopper: %s was recorded for %s; sending it to %s",
		path, was.p, server);
	if (sp->test_id > 0)
		fprintf(stderr,
			" as a new test (test %" PRId64 " there is left as it "
			"is)",
			sp->test_id);
	fputs("\n", stderr);
	buf_free(&was);
	sp->test_id = 0;
	sp->stopped = false;
}

int
replay(const struct options *o)
{
	struct spool sp;
	struct sigsave save;
	if (spool_read(&sp, o->replay) < 0)
		return 1;
	int sigfd = signals_setup(&save, false);
	if (sigfd < 0) {
		fprintf(stderr, "grasshopper: signalfd: %s\n", strerror(errno));
		spool_free(&sp);
		return 1;
	}
	/* SPEC 6.2: the tracker of -s, GRASSHOPPER_SERVER or the credentials,
	 * never one named only in the file (it would get the token). */
	const char *server = o->server;
	if (strcmp(sp.server, server))
		replay_elsewhere(&sp, o->replay, server);
	struct test_meta meta = {
	    .server = server,
	    .token = o->token,
	    .name = sp.name,
	    .description = sp.description,
	    .threshold = sp.threshold,
	    .start_us = sp.start_us,
	    .tags = &sp.tags,
	    .test_id = sp.test_id,
	    /* The run may have been cut short with its create unanswered. */
	    .find = sp.test_id == 0,
	    .quiet = o->quiet,
	};
	struct sender *snd = sender_new(&meta);
	struct run_stats st;
	stats_init(&st, sp.start_us, sp.threshold);
	for (size_t i = 0; i < sp.n; i++) {
		sender_push(snd, &sp.samples[i]);
		stats_add_sample(&st, &sp.samples[i]);
	}
	st.command = sp.command;
	stats_end(&st, sp.end_us);
	st.taken = 0; /* the run may have delivered others before */
	if (sp.stopped)
		sender_mark_stopped(snd);
	else
		sender_finish(snd, sp.end_us, &sp.command, sp.exit_status);
	flush(snd, sigfd, o->flush_timeout);

	int rc = 0;
	if (sender_complete(snd)) {
		if (unlink(o->replay) < 0)
			fprintf(stderr, "grasshopper: %s: %s\n", o->replay,
				strerror(errno));
	} else {
		/* Keep what is still undelivered, and what was done. */
		struct spool left = sp;
		left.server = (char *)server; /* where its test now is */
		left.test_id = sender_test_id(snd);
		left.stopped = sender_stopped(snd);
		left.samples = (struct sample *)sender_queue(snd, &left.n);
		if (spool_rewrite(&left, o->replay) == 0)
			fprintf(stderr,
				"grasshopper: %zu sample%s still not "
				"delivered, kept in %s\n",
				left.n, left.n == 1 ? "" : "s", o->replay);
		rc = 1;
	}
	stats_final(&st, snd, o->quiet);
	if (!o->quiet)
		summary_print(&st, sp.exit_status, server);
	sender_free(snd);
	spool_free(&sp);
	close(sigfd);
	return rc;
}
