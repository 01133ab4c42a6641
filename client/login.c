/*
 * `grasshopper login` and `grasshopper logout` (SPEC 6.2). Login reads a
 * token without echo (or the first line of standard input when it is not
 * a terminal), asks the tracker whether it takes it, and only then keeps
 * it with that server in the credentials file (credentials.c). Logout
 * removes the file; the token itself stays valid on the tracker until it
 * expires or is revoked there.
 */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* An authenticated GET that version-1 trackers have too. */
#define CHECK_PATH "/api/v1/test?limit=1"
#define CHECK_CONNECT_TIMEOUT_MS 5000
#define CHECK_TIMEOUT_MS 15000
/* A list of one test; room for what later versions add to a test. */
#define CHECK_RESPONSE_MAX (1024 * 1024)
/* Room for blanks around a pasted token, trimmed before it is checked. */
#define LINE_MAX_BYTES (TOKEN_MAX + 64)

/* The signal that came while the token was being typed, or 0. */
static volatile sig_atomic_t interrupted;

/* Only note the signal: the reader turns echo back on, then dies of it. */
static void
on_signal(int sig)
{
	interrupted = sig;
}

/* The signals that end (or, SIGTSTP, stop) a program at the terminal. */
static const int reading_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT,
				      SIGTSTP};
#define READING_SIGNALS (sizeof reading_signals / sizeof *reading_signals)

/* Catch the reading signals (keeping those we were started ignoring
 * ignored), without SA_RESTART so that read() returns; save the old. */
static void
signals_catch(struct sigaction saved[READING_SIGNALS])
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < READING_SIGNALS; i++) {
		sigaction(reading_signals[i], NULL, &saved[i]);
		if (saved[i].sa_handler != SIG_IGN)
			sigaction(reading_signals[i], &sa, NULL);
	}
}

/* Put back the dispositions signals_catch saved. */
static void
signals_restore(const struct sigaction saved[READING_SIGNALS])
{
	for (size_t i = 0; i < READING_SIGNALS; i++)
		sigaction(reading_signals[i], &saved[i], NULL);
}

/* Read one line from fd into line[0..size), without its newline; return
 * its length, or -1 with errno (EINTR: a signal came; EMSGSIZE: longer
 * than size). End of input ends the line. */
static ssize_t
line_read(int fd, char *line, size_t size)
{
	size_t n = 0;
	while (n < size) {
		ssize_t r = read(fd, line + n, size - n);
		if (r < 0 && errno == EINTR && !interrupted)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return (ssize_t)n;
		char *nl = memchr(line + n, '\n', (size_t)r);
		if (nl)
			return nl - line;
		n += (size_t)r;
	}
	errno = EMSGSIZE;
	return -1;
}

/* Read a line from the terminal on stdin with echo off (the newline still
 * echoed), with echo back on however it ends. A signal that ends us is
 * re-raised once echo is on; Ctrl-Z stops us with echo on, and once
 * continued we hide the typing again and ask again. */
static ssize_t
tty_read_hidden(const char *server, char *line, size_t size)
{
	struct termios saved, quiet;
	struct sigaction sigs[READING_SIGNALS];
	if (tcgetattr(STDIN_FILENO, &saved) < 0)
		return -1;
	quiet = saved;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	for (;;) {
		ssize_t n = -1;
		/* Signals first: no moment with echo off uncaught. The prompt
		 * once echo is off: all typed after it is hidden. */
		signals_catch(sigs);
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0) {
			fprintf(stderr,
				"Token for %s (typing is not shown): ", server);
			fflush(stderr);
			n = line_read(STDIN_FILENO, line, size);
		}
		int e = errno, sig = interrupted;
		/* TCSAFLUSH: lines pasted after the token go nowhere, not to
		 * the shell that reads the terminal next. */
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		signals_restore(sigs);
		interrupted = 0;
		if (sig) {
			fputc('\n', stderr);
			raise(sig); /* with its own disposition again */
		}
		if (sig != SIGTSTP) {
			errno = e;
			return n;
		}
	}
}

/* The token typed or piped in, into line (trimmed of blanks, NUL-ended).
 * Return 0, or a login_status after saying why. */
static int
token_read(const char *server, char *line, size_t size)
{
	bool tty = isatty(STDIN_FILENO);
	ssize_t n = tty ? tty_read_hidden(server, line, size - 1)
			: line_read(STDIN_FILENO, line, size - 1);
	if (n < 0) {
		fprintf(stderr, "grasshopper: login: %s\n",
			errno == EMSGSIZE
			    ? "that line is too long to be a token"
			    : strerror(errno));
		return LOGIN_USAGE;
	}
	line[n] = '\0';
	size_t start = strspn(line, " \t\r");
	while (n > (ssize_t)start && strchr(" \t\r", line[n - 1]))
		line[--n] = '\0';
	memmove(line, line + start, (size_t)n - start + 1);
	if (!line[0]) {
		fprintf(stderr, "grasshopper: login: no token %s\n",
			tty ? "typed" : "on standard input");
		return LOGIN_USAGE;
	}
	if (!token_ok(line) || strlen(line) > TOKEN_MAX) {
		fputs("grasshopper: login: that is not a token (printable "
		      "ASCII without blanks, as the web page shows it)\n",
		      stderr);
		return LOGIN_USAGE;
	}
	return 0;
}

/* The answer to the check, judged: LOGIN_SAVED when the tracker took the
 * token (200 and a list of tests), else why not, in why. */
static int
check_verdict(CURLcode rc, long code, const struct http_answer *a,
	      struct buf *why)
{
	struct json_value v;
	if (rc != CURLE_OK) {
		const char *e = a->error[0] ? a->error : curl_easy_strerror(rc);
		printable_add(why, e, strlen(e));
		return LOGIN_UNREACHABLE;
	}
	if (code == 200 && a->body.p &&
	    !jsonscan_get(a->body.p, a->body.len, "tests", &v) &&
	    v.type == JSON_ARRAY)
		return LOGIN_SAVED;
	buf_printf(why, "%ld", code);
	tracker_error_add(why, a->body.p, a->body.len);
	if (code == 200)
		buf_puts(why, ", not a list of tests: is it a grasshopper "
			      "tracker?");
	return code == 408 || code == 429 || code >= 500 ? LOGIN_UNREACHABLE
							 : LOGIN_REJECTED;
}

/* Ask the tracker at server whether it takes token: an authenticated GET.
 * Return LOGIN_SAVED if it does, else a login_status with why set. */
static int
token_check(const char *server, const char *token, struct buf *why)
{
	struct buf url = {0}, auth = {0};
	struct http_answer answer = {.max = CHECK_RESPONSE_MAX};
	struct curl_slist *headers = NULL;
	CURL *e = NULL;
	CURLcode rc = CURLE_FAILED_INIT;
	long code = 0;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!(e = curl_easy_init()))
		goto done;
	buf_printf(&url, "%s%s", server, CHECK_PATH);
	buf_printf(&auth, "Authorization: Bearer %s", token);
	headers = curl_slist_append(NULL, auth.p);
	headers = curl_slist_append(headers, "Accept: application/json");
	curl_easy_setopt(e, CURLOPT_URL, url.p);
	http_easy_setup(e, headers, &answer, CHECK_CONNECT_TIMEOUT_MS,
			CHECK_TIMEOUT_MS);
	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
done:;
	int verdict = check_verdict(rc, code, &answer, why);
	curl_easy_cleanup(e);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	explicit_bzero(auth.p, auth.len);
	buf_free(&auth);
	buf_free(&url);
	buf_free(&answer.body);
	return verdict;
}

/* Tell what the check said; the tracker's words made printable. */
static void
check_report(int verdict, const char *server, const struct buf *why)
{
	if (verdict == LOGIN_UNREACHABLE)
		fprintf(stderr,
			"grasshopper: login: cannot reach the tracker at %s "
			"(%s); nothing saved, try again later\n",
			server, why->p);
	else
		fprintf(stderr,
			"grasshopper: login: the tracker at %s rejected the "
			"token (%s); nothing saved\n",
			server, why->p);
}

int
login(const struct options *o)
{
	char line[LINE_MAX_BYTES];
	struct buf dir = {0}, path = {0}, why = {0};
	struct credentials old;
	char err[512];
	int status = LOGIN_NOT_SAVED;
	if (credentials_paths(&dir, &path) < 0) {
		fputs("grasshopper: login: nowhere to keep the token: neither "
		      "XDG_CONFIG_HOME nor HOME is an absolute path\n",
		      stderr);
		goto done;
	}
	if ((status = token_read(o->server, line, sizeof line)) != 0)
		goto done;
	if ((status = token_check(o->server, line, &why)) != LOGIN_SAVED) {
		check_report(status, o->server, &why);
		goto done;
	}
	bool replacing =
	    credentials_load(&old, path.p, err, sizeof err) == CREDENTIALS_OK &&
	    strcmp(old.server, o->server);
	if (replacing)
		fprintf(stderr,
			"grasshopper: login: replacing the token for %s\n",
			old.server);
	credentials_free(&old);
	struct credentials c = {.server = o->server, .token = line};
	if (credentials_save(&c, dir.p, path.p, err, sizeof err) < 0) {
		fprintf(stderr, "grasshopper: login: nothing saved: %s\n", err);
		status = LOGIN_NOT_SAVED;
		goto done;
	}
	fprintf(stderr,
		"grasshopper: logged in to %s; the token is kept in %s\n",
		o->server, path.p);
done:
	explicit_bzero(line, sizeof line);
	buf_free(&dir);
	buf_free(&path);
	buf_free(&why);
	return status;
}

int
logout(const struct options *o)
{
	struct buf dir = {0}, path = {0};
	struct credentials c;
	char err[512];
	int status = 0;
	(void)o;
	if (credentials_paths(&dir, &path) < 0) {
		fputs("grasshopper: logout: not logged in (neither "
		      "XDG_CONFIG_HOME nor HOME is an absolute path)\n",
		      stderr);
		goto done;
	}
	/* Which server, to say so; a broken file is removed all the same. */
	bool known =
	    credentials_load(&c, path.p, err, sizeof err) == CREDENTIALS_OK;
	if (unlink(path.p) == 0)
		fprintf(stderr,
			"grasshopper: logged out%s%s: removed %s (the token "
			"stays valid until it expires or is revoked on the "
			"tracker's page)\n",
			known ? " of " : "", known ? c.server : "", path.p);
	else if (errno == ENOENT)
		fprintf(stderr, "grasshopper: not logged in (no %s)\n", path.p);
	else {
		fprintf(stderr, "grasshopper: logout: %s: %s\n", path.p,
			strerror(errno));
		status = 1;
	}
	credentials_free(&c);
done:
	buf_free(&dir);
	buf_free(&path);
	return status;
}
