/*
 * The process pool: a master opens the FastCGI socket, forks the workers,
 * restarts any that die (with backoff) and, on SIGTERM or SIGINT, stops
 * accepting and waits for in-flight requests to finish.
 *
 * The master blocks its signals and takes them with sigtimedwait(2): no
 * handlers, no races. Stopping is shutdown(2) on the shared listening
 * socket, which wakes every thread blocked in accept(2) with an error, and
 * SIGTERM to each worker, whose threads then close the connections nginx
 * keeps open to them; a thread busy with a request finishes it first.
 */
#include "tracker.h"
#include "isotime.h"

#include <errno.h>
#include <fcgiapp.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKLOG 1024
#define RESTART_MIN_US 100000LL	  /* first restart delay after a crash */
#define RESTART_MAX_US 10000000LL /* backoff cap */
#define STABLE_US 1000000LL	  /* older than this: not a crash loop */
#define STOP_GRACE_US 30000000LL  /* in-flight requests get this long */

struct slot {
	pid_t pid;
	int64_t started;    /* mono_us */
	int64_t restart_at; /* when pid == 0: when to fork again */
	int64_t backoff;
};

/* Refuse to steal the socket of a tracker that is still running there
 * (FCGX_OpenSocket unlinks whatever is at the path). */
static bool
unix_socket_in_use(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used =
	    fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (fd >= 0)
		close(fd);
	return used;
}

/* Open the listening socket: a unix socket only our user and group may use
 * (mode 0660), or HOST:PORT. Return the fd or -1 (logged). */
static int
open_socket(const char *listen)
{
	if (listen[0] == '/' && unix_socket_in_use(listen)) {
		log_msg(LOG_ERROR, "%s: another process is listening there",
			listen);
		return -1;
	}
	mode_t old = umask(0117);
	int fd = FCGX_OpenSocket(listen, BACKLOG);
	umask(old);
	if (fd < 0)
		log_msg(LOG_ERROR, "cannot listen on %s: %s", listen,
			strerror(errno));
	return fd;
}

/*
 * A worker: cfg->threads threads accept and serve requests on the shared
 * socket, each one request at a time; their statements meet in the
 * worker's db (db.c), which is what lets one commit serve many requests.
 * The main thread only waits: for the threads to end (the master shut the
 * socket down) or for SIGTERM.
 */

#define WAKE_AFTER_US 1000000LL /* a stopping worker's idle threads get */
#define WAKE_EVERY_US 25000LL	/* this long, then SIGUSR1 this often */

struct thread {
	pthread_t id;
	struct worker *w;
	int fd;
	_Atomic bool accepting; /* blocked (or about to block) in accept */
	_Atomic bool ended;
};

static _Atomic bool worker_stopping;

static void
on_wake(int sig)
{
	(void)sig; /* only interrupts accept(2) */
}

/* Has nginx sent nothing we have not read? libfcgi closes a connection by
 * shutting its side down and waiting (up to 2 s) for nginx to close first,
 * so that input left unread cannot make the close a reset that loses the
 * answer. With nothing unread there is no such risk, and FCGX_Detach makes
 * it close at once: per request three system calls and a sleep less (the
 * thread no longer waits for nginx to get round to closing). */
static bool
nothing_unread(int fd)
{
	int n;
	return fd >= 0 && ioctl(fd, FIONREAD, &n) == 0 && n == 0;
}

static void *
serve_thread(void *arg)
{
	struct thread *t = arg;
	FCGX_Request fr;
	FCGX_InitRequest(&fr, t->fd, FCGI_FAIL_ACCEPT_ON_INTR);
	for (;;) {
		t->accepting = true;
		if (worker_stopping)
			break;
		int r = FCGX_Accept_r(&fr);
		t->accepting = false;
		if (r < 0)
			break;
		request_serve(t->w, &fr);
		/* Flush the answer now, outside the stretch SIGUSR1 may
		 * interrupt; a stopping worker closes the kept connection
		 * (nginx opens a fresh one to another worker). */
		if (worker_stopping)
			fr.keepConnection = 0;
		if (!fr.keepConnection && nothing_unread(fr.ipcFd))
			FCGX_Detach(&fr);
		FCGX_Finish_r(&fr);
	}
	t->accepting = false;
	t->ended = true;
	return NULL;
}

static bool
all_ended(const struct thread *ts, int n)
{
	for (int i = 0; i < n; i++)
		if (!ts[i].ended)
			return false;
	return true;
}

/* Stop accepting and let the threads finish what they serve. Threads still
 * waiting for a request after a while (in accept(2), or on a connection
 * nginx keeps open) are woken with SIGUSR1; not at once: a signal that
 * lands just as a request arrives would break its read, and under traffic
 * every thread gets its request and leaves within that while. */
static void
worker_stop(struct thread *ts, int n, int fd, pid_t master)
{
	worker_stopping = true;
	if (getppid() != master) {
		/* The master is gone, and with it every sibling's reason to
		 * run: stop the whole pool's accept at once. */
		shutdown(fd, SHUT_RDWR);
		return;
	}
	int64_t wake_at = mono_us() + WAKE_AFTER_US;
	while (!all_ended(ts, n)) {
		if (mono_us() >= wake_at)
			for (int i = 0; i < n; i++)
				if (ts[i].accepting && !ts[i].ended)
					pthread_kill(ts[i].id, SIGUSR1);
		usleep(WAKE_EVERY_US);
	}
}

/* A worker's life. Never returns. */
static void
worker_main(const struct config *cfg, int fd, pid_t master,
	    struct ratelimit *limits)
{
	/* If the master dies, so do we. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	struct sigaction sa = {.sa_handler = on_wake};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: accept fails */
	signal(SIGINT, SIG_IGN);       /* Ctrl-C is for the master */
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	/* The threads take only SIGUSR1; the main thread waits for
	 * SIGTERM. */
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_SETMASK, &term, NULL);
	if (getppid() != master)
		_exit(0); /* the master died before prctl (it may be PID 1) */

	/* glibc gives threads up to 8 malloc arenas per core, each holding
	 * its own free memory; more arenas than cores buys no parallelism
	 * (only that many threads run at once) and costs RSS. */
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	mallopt(M_ARENA_MAX, cores > 2 ? (int)cores : 2);

	struct worker w = {
	    .cfg = cfg,
	    .db = db_new(cfg->database_url, cfg->db_connections, cfg->db_wait),
	    .revoke = revoke_new(cfg->database_url),
	    .limits = limits,
	};
	int n = cfg->threads;
	struct thread *ts = calloc((size_t)n, sizeof *ts);
	if (!ts)
		abort();
	for (int i = 0; i < n; i++) {
		ts[i].w = &w;
		ts[i].fd = fd;
		int err = pthread_create(&ts[i].id, NULL, serve_thread, &ts[i]);
		if (err) {
			log_msg(LOG_ERROR, "cannot start a thread: %s",
				strerror(err));
			_exit(1);
		}
	}
	while (!all_ended(ts, n)) {
		struct timespec tick = {.tv_nsec = 100000000};
		if (sigtimedwait(&term, NULL, &tick) == SIGTERM) {
			worker_stop(ts, n, fd, master);
			break;
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(ts[i].id, NULL);
	free(ts);
	revoke_free(w.revoke);
	db_free(w.db);
	_exit(0);
}

/* Fork a worker into slot s. */
static void
spawn(struct slot *s, const struct config *cfg, int fd,
      struct ratelimit *limits)
{
	pid_t master = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERROR, "fork: %s", strerror(errno));
		s->restart_at = mono_us() + RESTART_MAX_US;
		return;
	}
	if (pid == 0)
		worker_main(cfg, fd, master, limits);
	s->pid = pid;
	s->started = mono_us();
}

/* Note the death of pid and schedule its restart (unless stopping). */
static void
reap(struct slot *slots, int n, pid_t pid, int status, bool stopping)
{
	for (int i = 0; i < n; i++) {
		struct slot *s = &slots[i];
		if (s->pid != pid)
			continue;
		s->pid = 0;
		if (stopping)
			return;
		int64_t now = mono_us();
		/* Quick deaths double the delay; a long life resets it. */
		if (now - s->started >= STABLE_US || s->backoff == 0)
			s->backoff = RESTART_MIN_US;
		else if ((s->backoff *= 2) > RESTART_MAX_US)
			s->backoff = RESTART_MAX_US;
		s->restart_at = now + s->backoff;
		if (WIFSIGNALED(status))
			log_msg(LOG_WARN,
				"worker %d killed by signal %d; restarting in "
				"%lld ms",
				(int)pid, WTERMSIG(status),
				(long long)s->backoff / 1000);
		else
			log_msg(
			    LOG_WARN,
			    "worker %d exited with status %d; restarting in "
			    "%lld ms",
			    (int)pid, WEXITSTATUS(status),
			    (long long)s->backoff / 1000);
		return;
	}
}

int
pool_serve(const struct config *cfg)
{
	if (FCGX_Init() != 0) {
		log_msg(LOG_ERROR, "FCGX_Init failed");
		return 1;
	}
	int fd = open_socket(cfg->listen);
	if (fd < 0)
		return 1;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* SCHED_BATCH: a worker thread woken (a request, a result) does not
	 * preempt what is running (PostgreSQL, nginx, another request) but
	 * waits for its turn. Measured with make bench's POST run on 2
	 * cores, side by side: 12-23 % more requests per second, p50 lower.
	 * The workers inherit it; the master sleeps. No privilege needed. */
	if (cfg->sched_batch &&
	    sched_setscheduler(0, SCHED_BATCH, &(struct sched_param){0}) != 0)
		log_msg(LOG_WARN,
			"SCHED_BATCH: %s (running under the default policy)",
			strerror(errno));

	/* Before the fork: every worker sees the same table. */
	struct ratelimit *limits =
	    ratelimit_new(cfg->user_rate, cfg->user_burst);
	int n = cfg->workers, alive;
	struct slot *slots = calloc((size_t)n, sizeof *slots);
	if (!slots)
		abort();
	for (int i = 0; i < n; i++)
		spawn(&slots[i], cfg, fd, limits);
	log_msg(LOG_NOTE, "listening on %s with %d workers", cfg->listen, n);

	bool stopping = false;
	int64_t deadline = 0;
	for (;;) {
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			reap(slots, n, pid, status, stopping);

		int64_t now = mono_us(), next = now + 1000000;
		alive = 0;
		for (int i = 0; i < n; i++) {
			struct slot *s = &slots[i];
			if (!s->pid && !stopping && s->restart_at <= now)
				spawn(s, cfg, fd, limits);
			if (s->pid)
				alive++;
			else if (!stopping && s->restart_at < next)
				next = s->restart_at;
		}
		if (stopping && alive == 0)
			break;
		if (stopping && now >= deadline) {
			log_msg(
			    LOG_WARN,
			    "%d workers still busy after %lld s; killing them",
			    alive, STOP_GRACE_US / 1000000);
			for (int i = 0; i < n; i++)
				if (slots[i].pid)
					kill(slots[i].pid, SIGKILL);
			deadline = now + STOP_GRACE_US;
		}

		int64_t wait = next > now ? next - now : 0;
		struct timespec ts = {.tv_sec = wait / 1000000,
				      .tv_nsec = wait % 1000000 * 1000};
		siginfo_t info;
		int sig = sigtimedwait(&set, &info, &ts);
		if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
			log_msg(LOG_NOTE,
				"stopping: finishing in-flight requests");
			stopping = true;
			deadline = mono_us() + STOP_GRACE_US;
			/* Wakes every accept(2) on the shared socket; SIGTERM
			 * tells each worker to let go of the connections nginx
			 * keeps open to it. */
			shutdown(fd, SHUT_RDWR);
			for (int i = 0; i < n; i++)
				if (slots[i].pid)
					kill(slots[i].pid, SIGTERM);
		} else if (sig == SIGHUP) {
			log_msg(
			    LOG_NOTE,
			    "SIGHUP ignored (configuration is read at start)");
		}
	}
	close(fd);
	if (cfg->listen[0] == '/')
		unlink(cfg->listen);
	free(slots);
	ratelimit_free(limits);
	log_msg(LOG_NOTE, "stopped");
	return 0;
}
