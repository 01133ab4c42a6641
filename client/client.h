/*
 * grasshopper, the client: runs a command (or just watches), samples the
 * whole system's CPU usage and reports it to the tracker (SPEC section 4).
 *
 * One header for the client, a section per file:
 *   grasshopper.c  main: options in, exit status out
 *   options.c      command line and environment, --help
 *   sampler.c      /proc/stat, the busy fraction, timestamps
 *   child.c        fork/execvp, signal dispositions, exit statuses
 *   loop.c         the event loop: timer, signals, child, sender
 *   sender.c       the queue and its delivery over HTTP (libcurl multi)
 *   http.c         the setup every request to the tracker shares
 *   spool.c        undelivered samples to a file, and back (--replay)
 *   summary.c      the run's figures and the summary line
 *   json.c         the JSON the client writes (it reads with lib/jsonscan.c)
 *   credentials.c  the token `grasshopper login` keeps, and which token a
 *                  run uses
 *   login.c        `grasshopper login` and `grasshopper logout`
 *   printable.c    text from the tracker made safe for a terminal
 *   baseline.c     the run against its baseline, and --fail-if-slower
 */
#ifndef GH_CLIENT_H
#define GH_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "buf.h"
#include "isotime.h"
#include "jsonscan.h"
#include "metrics.h"
#include "utf8.h"

/* ---- options.c -------------------------------------------------------- */

#define INTERVAL_MIN 0.05
#define INTERVAL_MAX 3600.0
#define INTERVAL_DEFAULT 0.5
#define THRESHOLD_DEFAULT 0.5
#define SERVER_DEFAULT "http://127.0.0.1:5000"
#define FLUSH_TIMEOUT_DEFAULT 5.0
/* The tracker's limits on a test's name and description (code points). */
#define NAME_MAX_CHARS 255
#define DESCRIPTION_MAX_CHARS 4096

struct options {
	char *token;	   /* -j, GRASSHOPPER_JWT or stored; never printed */
	char *server;	   /* -s, GRASSHOPPER_SERVER, stored; no trailing '/' */
	bool server_given; /* -s or the variable, not stored or the default */
	bool token_stored; /* the token is the credentials file's */
	double interval;   /* seconds between samples */
	char *name;
	char *description;
	double threshold; /* a fraction, 0 to 1 */
	bool no_command;
	bool quiet;
	char *replay;	       /* --replay FILE */
	char **command;	       /* argv of the command, NULL-terminated */
	double flush_timeout;  /* GRASSHOPPER_FLUSH_TIMEOUT, seconds */
	char *spool_dir;       /* GRASSHOPPER_SPOOL_DIR, or NULL */
	bool no_auto_tags;     /* --no-auto-tags */
	struct tags tags;      /* detected, then --tag's over them */
	double fail_if_slower; /* --fail-if-slower PCT; 0: no gate */
	int baseline_runs;     /* --baseline-runs N */
};

enum options_result {
	OPTIONS_RUN,	 /* run (or replay) with these options */
	OPTIONS_HELP,	 /* --help: print options_help() and exit 0 */
	OPTIONS_VERSION, /* --version */
	OPTIONS_USAGE,	 /* a usage error, described in err: exit 2 */
	OPTIONS_LOGIN,	 /* `grasshopper login`: o->server is where */
	OPTIONS_LOGOUT,	 /* `grasshopper logout` */
};

/* Fill o from argv and the environment. Return one of options_result; on
 * OPTIONS_USAGE err holds a one-line message (no "grasshopper: " prefix). */
enum options_result options_parse(struct options *o, int argc, char **argv,
				  char *err, size_t errlen);
void options_free(struct options *o);
void options_help(FILE *f);
/* Wipe GRASSHOPPER_JWT's value and take it out of the environment, so the
 * command never inherits the token (call after options_parse). */
void options_scrub_env(void);

/* The server URL without trailing slashes (allocated), or NULL if it is
 * not an http:// or https:// URL of printable ASCII. */
char *server_normalize(const char *url);
/* Whether t can be a token: printable ASCII without blanks, not empty. */
bool token_ok(const char *t);

/* "0.25" seconds within the allowed range; return 0 or -1. */
int parse_interval(const char *s, double *out);
/* "0.8" or "80%"; return 0 or -1 if not a fraction from 0 to 1. */
int parse_threshold(const char *s, double *out);
/* "20" or "20%": a percentage above 0, at most FAIL_IF_SLOWER_MAX;
 * return 0 or -1. */
int parse_fail_if_slower(const char *s, double *out);
/* A whole number of runs from BASELINE_MIN_RUNS to BASELINE_RUNS_MAX;
 * return 0 or -1. */
int parse_baseline_runs(const char *s, int *out);

/* ---- sampler.c -------------------------------------------------------- */

/* The aggregate "cpu" line of /proc/stat, in clock ticks. Fields an old
 * kernel does not have read as 0. guest/guest_nice are not kept: the kernel
 * already counts them inside user/nice. */
struct cpu_times {
	uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
};

/* Parse the "cpu " line at the start of a /proc/stat text. Return 0, or -1
 * if it is missing or has fewer than the 4 fields every kernel has. */
int stat_parse(const char *text, size_t len, struct cpu_times *out);

/* Busy fraction of the machine between two readings, from 0 to 1. */
double cpu_busy_fraction(const struct cpu_times *prev,
			 const struct cpu_times *cur);

/* The stamp of the next sample: the wall clock, unless it stepped back to
 * or before the previous stamp; then the previous stamp plus the time the
 * monotonic clock says has passed (at least 1 us), so stamps never repeat. */
int64_t stamp_next(int64_t prev_stamp, int64_t wall_now, int64_t mono_elapsed);

/* Microseconds on CLOCK_MONOTONIC. */

struct sample; /* sender.c's section */

struct sampler {
	int fd;	    /* /proc/stat, kept open */
	int mem_fd; /* /proc/meminfo, kept open; -1 without it */
	struct cpu_times prev;
	int64_t prev_stamp; /* wall clock, us */
	int64_t prev_mono;
};

/* Open /proc/stat and take the baseline reading; *start_us is its wall
 * time. Return 0, or -1 with errno set. */
int sampler_open(struct sampler *s, int64_t *start_us);
/* Measure the interval since the previous reading. Return 0 and set the
 * sample's stamp, busy fraction and memory in use (when known), or -1
 * with errno set. */
int sampler_take(struct sampler *s, struct sample *x);
void sampler_close(struct sampler *s);

/* ---- child.c ---------------------------------------------------------- */

/* Signal state as grasshopper found it, handed back to the command. */
struct sigsave {
	sigset_t mask;
	struct sigaction intr, quit, pipe, chld;
};

/* Set up grasshopper's own signals and return a signalfd for them, or -1.
 * With a command: SIGCHLD, SIGTERM and SIGHUP arrive on the fd and SIGINT,
 * SIGQUIT are ignored (the terminal sends them to the command directly, as
 * with time(1)). Without: SIGINT, SIGTERM and SIGHUP arrive on the fd. */
int signals_setup(struct sigsave *save, bool with_command);
/* After the command ended: SIGINT and SIGQUIT arrive on sigfd too, so that
 * Ctrl-C cuts the final flush short. */
void signals_after_child(int sigfd, const struct sigsave *save);

/* Start argv with fork/execvp. Return the pid, or -1 with *exec_errno set
 * to why the command could not run (the child is already reaped). */
pid_t child_start(char **argv, const struct sigsave *save, int *exec_errno);

/* grasshopper's exit status for a wait status: the command's, or 128+N. */
int child_exit_status(int wstatus);
/* 127 when the command was not found, 126 when it could not be run. */
int exec_error_status(int err);

/* ---- json.c: the JSON the client writes (lib/jsonscan.h reads) -------- */

/* Append s as a JSON string: quoted, escaped, invalid UTF-8 as U+FFFD. */
void json_put_string(struct buf *b, const char *s);
/* Append a timestamp (us since the epoch) as a JSON string. */
void json_put_time(struct buf *b, int64_t us);

/* Cut s to at most max code points, on a character boundary. */
void utf8_truncate(char *s, size_t max);

/* ---- summary.c -------------------------------------------------------- */

/* A run's figures: from the tracker's test object when it answered, else
 * computed by the client from its own samples (same rules, SPEC 2). */
struct run_stats {
	int64_t test_id; /* 0 while the tracker has not created the test */
	int64_t start_us, end_us;
	double duration;  /* seconds */
	double above;	  /* seconds above threshold */
	double threshold; /* fraction */
	long samples;
	double max_cpu, sum_cpu;
	int64_t last_us; /* stamp of the latest sample counted */
	/* Samples this run took itself; 0 when unknown (a replay). If the
	 * tracker counts otherwise, the summary says so. */
	long taken;
	double max_mem; /* fraction, when mem_known */
	bool mem_known; /* some sample had its memory */
	struct command_usage command;
};

void stats_init(struct run_stats *st, int64_t start_us, double threshold);
/* Count one sample; samples arrive in stamp order. */
void stats_add(struct run_stats *st, int64_t stamp, double cpu);
/* stats_add, and the sample's memory when it has one. */
void stats_add_sample(struct run_stats *st, const struct sample *x);
void stats_end(struct run_stats *st, int64_t end_us);
/* Overwrite the figures with the tracker's test object; return 0 or -1. */
int stats_from_test(struct run_stats *st, const char *js, size_t len);

/* The one summary line (no newline). exit_status < 0 leaves it out; server
 * may be NULL, then there is no URL. */
void summary_format(struct buf *b, const struct run_stats *st, int exit_status,
		    const char *server);

/* ---- sender.c --------------------------------------------------------- */

struct sample {
	int64_t stamp; /* us since the epoch */
	double cpu;
	double mem;   /* memory in use, a fraction, when has_mem */
	bool has_mem; /* false: unknown (an old kernel, an old spool) */
};

/* What the sender needs to know about the test it feeds. */
struct test_meta {
	const char *server, *token;
	const char *name, *description;
	double threshold;
	int64_t start_us;
	const struct tags *tags; /* sent with the create; NULL: none */
	int64_t test_id;	 /* already created (a replay), else 0 */
	bool find;	   /* it may have been created: look before creating */
	bool quiet;	   /* no warnings about an unreachable tracker */
	int baseline_runs; /* ask for the baseline of so many runs; 0: not */
};

struct sender;
struct curl_waitfd;

struct sender *sender_new(const struct test_meta *m);
void sender_free(struct sender *s);
/* Queue a sample; never blocks. */
void sender_push(struct sender *s, const struct sample *x);
/* No more samples: once the queue is delivered, stop the test at end_us,
 * reporting what the command used when cmd knows it and its exit status
 * when it is not negative. */
void sender_finish(struct sender *s, int64_t end_us,
		   const struct command_usage *cmd, int exit_status);
/* For a replay of a test that was already stopped. */
void sender_mark_stopped(struct sender *s);
/* Wait for the network or the extra fds, at most max_ms. */
void sender_wait(struct sender *s, struct curl_waitfd *extra, unsigned n,
		 int max_ms);
/* Do whatever network work is due, never blocking. */
void sender_step(struct sender *s);
/* Nothing left to do: everything delivered, or delivery gave up. */
bool sender_idle(const struct sender *s);
/* Everything delivered and the test stopped. */
bool sender_complete(const struct sender *s);
/* Delivered requests so far, to tell progress. */
unsigned long sender_progress(const struct sender *s);
/* Abandon any request in flight. */
void sender_cancel(struct sender *s);
int64_t sender_test_id(const struct sender *s);
bool sender_stopped(const struct sender *s);
/* The undelivered samples, oldest first. */
const struct sample *sender_queue(const struct sender *s, size_t *n);
/* The tracker's test object from the stop, or NULL. */
const char *sender_result(const struct sender *s, size_t *len);
/* The tracker's baseline answer (SPEC 6.4), or NULL with *why saying
 * why there is none (printable), or NULL with *why NULL when it was not
 * asked for. */
const char *sender_baseline(const struct sender *s, size_t *len,
			    const char **why);

/* ---- http.c ----------------------------------------------------------- */

#define HTTP_ERROR_SIZE                                                        \
	256 /* libcurl's CURL_ERROR_SIZE (checked in http.c)                   \
	     */

/* An answer from the tracker as libcurl writes it: the body, refused past
 * max bytes, and libcurl's words when the transfer fails. */
struct http_answer {
	struct buf body;
	size_t max;
	char error[HTTP_ERROR_SIZE];
};

struct curl_slist;

/* Set up easy (a CURL *) for the tracker: headers, the answer into a, the
 * timeouts, our user agent, http(s) only. */
void http_easy_setup(void *easy, struct curl_slist *headers,
		     struct http_answer *a, long connect_ms, long total_ms);
/* Empty a for the next request. */
void http_answer_reset(struct http_answer *a);

/* ---- spool.c ---------------------------------------------------------- */

/* Everything needed to deliver a run later; never the token. */
struct spool {
	char *server;
	int64_t test_id; /* 0: not created yet */
	char *name, *description;
	double threshold;
	int64_t start_us, end_us;
	bool stopped;
	int exit_status; /* the command's, -1 for none */
	struct command_usage command;
	struct tags tags; /* for the create, when the test is not created */
	struct sample *samples;
	size_t n;
};

/* Write sp to a new file in dir (or the default directory when NULL) and
 * return its path (allocated), or NULL after printing why. */
char *spool_write_new(const struct spool *sp, const char *dir);
/* Replace the file at path with sp; return 0, or -1 after printing why. */
int spool_rewrite(const struct spool *sp, const char *path);
/* Read a spool file; return 0, or -1 after printing why. */
int spool_read(struct spool *sp, const char *path);
void spool_free(struct spool *sp);
/* The spool file's text for sp (what spool_write_* put in the file). */
void spool_format(struct buf *b, const struct spool *sp);
/* Parse a spool file's text; return 0 or -1 with err set. */
int spool_parse(struct spool *sp, const char *text, size_t len, char *err,
		size_t errlen);
/* mkdir -p dir, mode 0700 for what it creates; return 0 or -1 (errno). */
int dirs_make(const char *dir);
/* Write all of b to fd and flush it to disk; return 0 or -1 (errno). */
int fd_write_all(int fd, const struct buf *b);

/* ---- credentials.c --------------------------------------------------- */

/* Longest token accepted (a line of a terminal in canonical mode is 4095
 * bytes); the tracker's are a few hundred. */
#define TOKEN_MAX 4000

/* What `grasshopper login` keeps: a token and the one server it is for. */
struct credentials {
	char *server; /* normalized, as server_normalize() gives it */
	char *token;
};

enum credentials_status {
	CREDENTIALS_OK,	  /* read, private, well-formed */
	CREDENTIALS_NONE, /* no file */
	CREDENTIALS_BAD,  /* unusable (err says why); never used */
};

/* The credentials directory and file: $XDG_CONFIG_HOME/grasshopper (when
 * XDG_CONFIG_HOME is absolute) or $HOME/.config/grasshopper. Return 0, or
 * -1 when neither variable is an absolute path. */
int credentials_paths(struct buf *dir, struct buf *file);
/* The file's text for c. */
void credentials_format(struct buf *b, const struct credentials *c);
/* Parse the file's text; return 0, or -1 with err set (never quoting the
 * token). */
int credentials_parse(struct credentials *c, const char *text, size_t len,
		      char *err, size_t errlen);
/* Read the file at path, refusing it, as ssh refuses a private key, when
 * it is not a regular file of ours that only we can read and write. */
enum credentials_status credentials_load(struct credentials *c,
					 const char *path, char *err,
					 size_t errlen);
/* Replace the file with c, atomically, private from its first byte; create
 * dir 0700 if needed. Return 0, or -1 with err set. */
int credentials_save(const struct credentials *c, const char *dir,
		     const char *path, char *err, size_t errlen);
/* Wipe the token and free c. */
void credentials_free(struct credentials *c);

/* Everything a run's token may come from, in order of precedence. */
struct token_sources {
	const char *option; /* -j / --jwt, or NULL */
	const char *env;    /* GRASSHOPPER_JWT when set and not empty */
	const struct credentials *stored; /* the credentials file, or NULL */
	const char *server; /* -s or GRASSHOPPER_SERVER, normalized, or NULL */
	const char *path;   /* the credentials file's, for messages */
};

/* The token and server a run uses. */
struct token_choice {
	const char *token, *server; /* pointing into the sources */
	bool stored;		    /* the token is the stored one */
};

/* Pick the token (-j, else GRASSHOPPER_JWT, else the stored one) and the
 * server (-s or GRASSHOPPER_SERVER, else the stored token's, else the
 * default). The stored token goes only to its own server. Return 0, or
 * -1 with a usage error in err. */
int token_resolve(const struct token_sources *in, struct token_choice *out,
		  char *err, size_t errlen);

/* ---- login.c ---------------------------------------------------------- */

/* Exit statuses of `grasshopper login` (grasshopper.1 lists them). */
enum login_status {
	LOGIN_SAVED = 0,       /* checked and saved */
	LOGIN_REJECTED = 1,    /* the tracker refused the token */
	LOGIN_USAGE = 2,       /* bad option, no token given */
	LOGIN_UNREACHABLE = 3, /* no answer from the tracker: try later */
	LOGIN_NOT_SAVED = 4,   /* the credentials file could not be written */
};

/* `grasshopper login`: read a token (without echo on a terminal), check it
 * with the tracker at o->server, keep it. Return a login_status. */
int login(const struct options *o);
/* `grasshopper logout`: remove the credentials file. Return 0 (also when
 * there was none), or 1 if it could not be removed. */
int logout(const struct options *o);

/* ---- printable.c ------------------------------------------------------ */

/* At most this many bytes of one text from the tracker are printed. */
#define PRINTABLE_MAX 512

/* Append s[0..len) to b safe for a terminal: printable ASCII and
 * well-formed UTF-8 stay; C0 controls, DEL, C1 controls (U+0080-U+009F)
 * and bytes that are not UTF-8 become \xNN; beyond PRINTABLE_MAX bytes,
 * "..." ends it. */
void printable_add(struct buf *b, const char *s, size_t len);
/* Append what an API error body says, made printable: " ERROR: MESSAGE",
 * " ERROR" or ": MESSAGE", or nothing when the body has neither. */
void tracker_error_add(struct buf *b, const char *js, size_t len);

/* ---- baseline.c ------------------------------------------------------- */

/* --baseline-runs: how many earlier runs a baseline is the median of
 * (SPEC 6.4 allows 1-100; fewer than BASELINE_MIN_RUNS never compare). */
#define BASELINE_RUNS_DEFAULT 10
#define BASELINE_RUNS_MAX 100
/* A baseline of fewer runs is too noisy to compare with. */
#define BASELINE_MIN_RUNS 3
/* --fail-if-slower's own exit status (grasshopper.1): below 125, which
 * `git bisect run` takes as "skip", and none a shell or wait gives. */
#define EXIT_SLOWER 122
/* The largest --fail-if-slower PCT: a hundred times the median. */
#define FAIL_IF_SLOWER_MAX 10000.0

/* One median of a baseline; not known when no earlier run has it. */
struct baseline_figure {
	bool known;
	double value;
};

/* The tracker's baseline of a test (GET /test/:id/baseline). */
struct baseline {
	long count; /* earlier runs found */
	struct baseline_figure duration, above, max_mem, user_cpu, system_cpu,
	    max_rss;
};

/* Read the tracker's answer; return 0, or -1 when it is not a baseline. */
int baseline_parse(struct baseline *bl, const char *js, size_t len);

/* What --fail-if-slower decides. */
enum gate_verdict {
	GATE_OFF,      /* not asked for, or the command failed */
	GATE_PASSED,   /* within PCT of the baseline */
	GATE_SLOWER,   /* beyond it: exit EXIT_SLOWER */
	GATE_UNJUDGED, /* no baseline, or one too small */
};

/* A run against its baseline: what to print and what the gate says. */
struct comparison {
	struct buf line; /* the sentence after "grasshopper: ", or empty */
	bool compared;	 /* the baseline had BASELINE_MIN_RUNS runs */
	enum gate_verdict verdict;
	struct buf why; /* the gate's sentence, but with GATE_OFF */
};

/* Compare the run st (ended with exit_status, -1 for none) with the
 * baseline answer js (NULL: none, and no_baseline says why) of the runs
 * of branch (NULL: none), gating at pct percent (0: no gate). */
void comparison_make(struct comparison *c, const struct run_stats *st,
		     int exit_status, const char *js, size_t len,
		     const char *no_baseline, const char *branch, double pct);
void comparison_free(struct comparison *c);

/* ---- loop.c ----------------------------------------------------------- */

/* Run the command (or monitor) and report it; return the exit status. */
int run(const struct options *o);
/* Deliver a spool file; return 0 when all of it arrived, else 1. */
int replay(const struct options *o);

#endif
