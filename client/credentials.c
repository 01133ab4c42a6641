/*
 * The credentials file (SPEC 6.2): the token `grasshopper login` checked,
 * kept with the one server it is for, in
 * $XDG_CONFIG_HOME/grasshopper/credentials:
 *
 *   # grasshopper credentials, written by `grasshopper login`; private.
 *   server https://gh.example.org
 *   token eyJhbGciOi...
 *
 * A run reads it only when neither -j nor GRASSHOPPER_JWT gives a token,
 * refuses it (as ssh refuses a private key) when anyone else could read
 * or change it, and sends its token only to its own server.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file larger than this is not ours: two short lines and a comment. */
#define CREDENTIALS_FILE_MAX (TOKEN_MAX + 4096)

/* Put a message in err; return -1. */
static int fail_with(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail_with(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int
credentials_paths(struct buf *dir, struct buf *file)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	buf_reset(dir);
	buf_reset(file);
	/* XDG: a relative XDG_CONFIG_HOME is invalid and to be ignored. */
	if (xdg && xdg[0] == '/')
		buf_printf(dir, "%s/grasshopper", xdg);
	else if (home && home[0] == '/')
		buf_printf(dir, "%s/.config/grasshopper", home);
	else
		return -1;
	buf_printf(file, "%s/credentials", dir->p);
	return 0;
}

void
credentials_format(struct buf *b, const struct credentials *c)
{
	buf_puts(b, "# grasshopper credentials, written by `grasshopper "
		    "login`; keep it private (0600).\n");
	buf_printf(b, "server %s\ntoken %s\n", c->server, c->token);
}

/* One "key value" line into c; return 0 or -1 with err set. */
static int
parse_line(struct credentials *c, char *line, size_t lineno, char *err,
	   size_t errlen)
{
	char *value = strchr(line, ' ');
	if (!value)
		return fail_with(err, errlen,
				 "line %zu is not 'server URL' or "
				 "'token TOKEN'",
				 lineno);
	*value++ = '\0';
	if (!strcmp(line, "server")) {
		if (c->server)
			return fail_with(err, errlen,
					 "line %zu: a second server", lineno);
		if (!(c->server = server_normalize(value)))
			return fail_with(err, errlen,
					 "line %zu: the server is not an "
					 "http:// or https:// URL",
					 lineno);
	} else if (!strcmp(line, "token")) {
		if (c->token)
			return fail_with(err, errlen,
					 "line %zu: a second token", lineno);
		if (!token_ok(value) || strlen(value) > TOKEN_MAX)
			return fail_with(err, errlen,
					 "line %zu: the token is not printable "
					 "ASCII without blanks",
					 lineno);
		c->token = xstrdup(value);
	} else {
		return fail_with(err, errlen,
				 "line %zu is not 'server URL' or "
				 "'token TOKEN'",
				 lineno);
	}
	return 0;
}

int
credentials_parse(struct credentials *c, const char *text, size_t len,
		  char *err, size_t errlen)
{
	*c = (struct credentials){0};
	if (memchr(text, '\0', len))
		return fail_with(err, errlen, "not a text file");
	/* A copy to cut into lines; wiped, as it holds the token. */
	char *copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	copy[len] = '\0';
	int rc = 0;
	size_t lineno = 0;
	for (char *p = copy, *nl; rc == 0 && *p;
	     p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		size_t n = strlen(p);
		if (n > 0 && p[n - 1] == '\r') /* edited on another system */
			p[--n] = '\0';
		lineno++;
		if (n > 0 && p[0] != '#')
			rc = parse_line(c, p, lineno, err, errlen);
		if (!nl)
			break;
	}
	explicit_bzero(copy, len);
	free(copy);
	if (rc == 0 && (!c->server || !c->token))
		rc = fail_with(err, errlen, "no %s line",
			       !c->server ? "server" : "token");
	if (rc < 0)
		credentials_free(c);
	return rc;
}

/* Whether the open file st describes may hold a secret: a regular file of
 * ours that nobody else can read or change. Return 0, or -1 with err. */
static int
check_private(const struct stat *st, char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode))
		return fail_with(err, errlen, "not a regular file");
	if (st->st_uid != geteuid())
		return fail_with(err, errlen,
				 "owned by uid %ld, not by you (uid %ld)",
				 (long)st->st_uid, (long)geteuid());
	if (st->st_mode & 077)
		return fail_with(err, errlen,
				 "others can open it (mode %04o): the token "
				 "in it must be taken as leaked; run "
				 "grasshopper logout, get a new token and "
				 "grasshopper login",
				 (unsigned)(st->st_mode & 07777));
	return 0;
}

/* Read all of fd (at most max bytes) into b; return 0, or -1 (errno;
 * EFBIG when longer). */
static int
read_small(int fd, struct buf *b, size_t max)
{
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (b->len + (size_t)n > max) {
			errno = EFBIG;
			return -1;
		}
		buf_add(b, chunk, (size_t)n);
	}
	explicit_bzero(chunk, sizeof chunk);
	return 0;
}

enum credentials_status
credentials_load(struct credentials *c, const char *path, char *err,
		 size_t errlen)
{
	struct buf text = {0};
	struct stat st;
	enum credentials_status rc = CREDENTIALS_BAD;
	*c = (struct credentials){0};
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return CREDENTIALS_NONE;
	if (fd < 0) {
		fail_with(err, errlen, "%s", strerror(errno));
		return CREDENTIALS_BAD;
	}
	if (fstat(fd, &st) < 0) {
		fail_with(err, errlen, "%s", strerror(errno));
		goto done;
	}
	if (check_private(&st, err, errlen) < 0)
		goto done;
	if (read_small(fd, &text, CREDENTIALS_FILE_MAX) < 0) {
		fail_with(err, errlen, "%s",
			  errno == EFBIG ? "too large to be a credentials file"
					 : strerror(errno));
		goto done;
	}
	if (credentials_parse(c, text.p ? text.p : "", text.len, err, errlen) ==
	    0)
		rc = CREDENTIALS_OK;
done:
	close(fd);
	if (text.p)
		explicit_bzero(text.p, text.cap);
	buf_free(&text);
	return rc;
}

/* Make dir (and its parents) and leave it 0700, ours; return 0 or -1. */
static int
dir_private(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	if (dirs_make(dir) < 0 || lstat(dir, &st) < 0)
		return fail_with(err, errlen, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return fail_with(err, errlen, "%s: not a directory of yours",
				 dir);
	/* Made by something else, more open: the file's name and its
	 * changes are nobody else's business either. */
	if ((st.st_mode & 077) && chmod(dir, 0700) < 0)
		return fail_with(err, errlen, "%s: %s", dir, strerror(errno));
	return 0;
}

/* Flush dir's entries (the rename) to disk; errors do not matter here:
 * the file is in place either way. */
static void
dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int
credentials_save(const struct credentials *c, const char *dir, const char *path,
		 char *err, size_t errlen)
{
	struct buf text = {0}, tmp = {0};
	int rc = -1;
	bool made = false;
	if (dir_private(dir, err, errlen) < 0)
		return -1;
	credentials_format(&text, c);
	buf_printf(&tmp, "%s/.credentials.XXXXXX", dir);
	/* mkostemp creates it 0600 at most: private from its first byte;
	 * the rename then swaps it in whole. */
	int fd = mkostemp(tmp.p, O_CLOEXEC);
	if (fd < 0) {
		fail_with(err, errlen, "%s: %s", dir, strerror(errno));
		goto done;
	}
	made = true;
	if (fchmod(fd, 0600) < 0 || fd_write_all(fd, &text) < 0) {
		fail_with(err, errlen, "%s: %s", tmp.p, strerror(errno));
		close(fd);
		goto done;
	}
	if (close(fd) < 0 || rename(tmp.p, path) < 0) {
		fail_with(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	dir_sync(dir);
	rc = 0;
done:
	if (rc < 0 && made)
		unlink(tmp.p);
	explicit_bzero(text.p, text.cap);
	buf_free(&text);
	buf_free(&tmp);
	return rc;
}

void
credentials_free(struct credentials *c)
{
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->server);
	*c = (struct credentials){0};
}

int
token_resolve(const struct token_sources *in, struct token_choice *out,
	      char *err, size_t errlen)
{
	*out = (struct token_choice){0};
	if (in->option || in->env) {
		/* A token given for this run: sent where this run says, as
		 * in version 1; the credentials file plays no part. */
		out->token = in->option ? in->option : in->env;
		out->server = in->server ? in->server : SERVER_DEFAULT;
		return 0;
	}
	if (!in->stored)
		return fail_with(err, errlen,
				 "no token: run grasshopper login, pass -j "
				 "TOKEN or set GRASSHOPPER_JWT (get one on the "
				 "tracker's web page)");
	if (in->server && strcmp(in->server, in->stored->server))
		return fail_with(
		    err, errlen,
		    "the token in %s is for %s, not %s: run grasshopper login "
		    "--server %s, or pass a token with -j or GRASSHOPPER_JWT",
		    in->path ? in->path : "the credentials file",
		    in->stored->server, in->server, in->server);
	out->token = in->stored->token;
	out->server = in->stored->server;
	out->stored = true;
	return 0;
}
