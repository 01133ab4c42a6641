/*
 * The spool file: what could not be delivered, kept for `--replay FILE`.
 * JSON lines, one header line describing the test, then one line per sample:
 *
 *   {"grasshopper_spool":1,"server":"http://...","test_id":null,...}
 *   {"timestamp":"2024-05-01T12:00:00.5Z","cpu_usage":0.250000,...}
 *
 * What came with SPEC 6.3 is optional in both, so that files written
 * before it still replay: the command's user_cpu, system_cpu and max_rss
 * and the test's tags (["KEY=VALUE", ...]) in the header, a sample's
 * mem_usage.
 *
 * The token is never in it: --replay takes it, and the server, as a run
 * does (-j, GRASSHOPPER_JWT, the credentials); the file's server only
 * tells whether the test it names is on that tracker.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isotime.h"

#define SPOOL_VERSION 1

void
spool_format(struct buf *b, const struct spool *sp)
{
	buf_printf(b, "{\"grasshopper_spool\":%d,\"server\":", SPOOL_VERSION);
	json_put_string(b, sp->server);
	if (sp->test_id > 0)
		buf_printf(b, ",\"test_id\":%" PRId64, sp->test_id);
	else
		buf_puts(b, ",\"test_id\":null");
	buf_puts(b, ",\"name\":");
	json_put_string(b, sp->name);
	buf_puts(b, ",\"description\":");
	json_put_string(b, sp->description);
	buf_printf(b, ",\"threshold\":%.15g,\"start_time\":", sp->threshold);
	json_put_time(b, sp->start_us);
	buf_puts(b, ",\"end_time\":");
	json_put_time(b, sp->end_us);
	buf_printf(b, ",\"stopped\":%s", sp->stopped ? "true" : "false");
	if (sp->exit_status >= 0)
		buf_printf(b, ",\"exit_status\":%d", sp->exit_status);
	else
		buf_puts(b, ",\"exit_status\":null");
	if (sp->command.known)
		buf_printf(b,
			   ",\"user_cpu\":%.6f,\"system_cpu\":%.6f,"
			   "\"max_rss\":%" PRId64,
			   sp->command.user_cpu, sp->command.system_cpu,
			   sp->command.max_rss_kib);
	for (size_t i = 0; i < sp->tags.n; i++) {
		buf_puts(b, i ? "," : ",\"tags\":[");
		struct buf kv = {0};
		buf_printf(&kv, "%s=%s", sp->tags.item[i].key,
			   sp->tags.item[i].value);
		json_put_string(b, kv.p);
		buf_free(&kv);
	}
	if (sp->tags.n)
		buf_puts(b, "]");
	buf_puts(b, "}\n");
	for (size_t i = 0; i < sp->n; i++) {
		const struct sample *x = &sp->samples[i];
		buf_puts(b, "{\"timestamp\":");
		json_put_time(b, x->stamp);
		buf_printf(b, ",\"cpu_usage\":%.6f", x->cpu);
		if (x->has_mem)
			buf_printf(b, ",\"mem_usage\":%.6f", x->mem);
		buf_puts(b, "}\n");
	}
}

/* Member key of line as a timestamp; return 0 or -1. */
static int
get_time(const char *line, size_t len, const char *key, int64_t *us)
{
	struct json_value v;
	if (jsonscan_get(line, len, key, &v) || v.type != JSON_STRING)
		return -1;
	return isotime_parse(v.p + 1, v.len - 2, us);
}

/* Member key of line as an allocated string; return it or NULL. */
static char *
get_string(const char *line, size_t len, const char *key)
{
	struct json_value v;
	return jsonscan_get(line, len, key, &v) ? NULL : jsonscan_string(&v);
}

/* The command's resources, when the header has them, into *use; return
 * 0 (also when it has none) or -1. */
static int
parse_command(struct command_usage *use, const char *line, size_t len)
{
	struct json_value v;
	*use = (struct command_usage){0};
	if (jsonscan_get(line, len, "user_cpu", &v))
		return 0;
	if (jsonscan_number(&v, &use->user_cpu) || use->user_cpu < 0 ||
	    jsonscan_get(line, len, "system_cpu", &v) ||
	    jsonscan_number(&v, &use->system_cpu) || use->system_cpu < 0 ||
	    jsonscan_get(line, len, "max_rss", &v) ||
	    jsonscan_int64(&v, &use->max_rss_kib) || use->max_rss_kib < 0)
		return -1;
	use->known = true;
	return 0;
}

/* The test's tags, when the header has them, into *t; return 0 (also
 * when it has none) or -1. */
static int
parse_tags(struct tags *t, const char *line, size_t len)
{
	struct json_value arr, el;
	size_t pos = 0;
	char why[256];
	if (jsonscan_get(line, len, "tags", &arr))
		return 0;
	if (arr.type != JSON_ARRAY)
		return -1;
	while (jsonscan_next(&arr, &pos, &el) == 0) {
		char *kv = jsonscan_string(&el);
		int rc = kv ? tags_add_arg(t, kv, why, sizeof why) : -1;
		free(kv);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* The header line into sp; return 0 or -1. */
static int
parse_header(struct spool *sp, const char *line, size_t len)
{
	struct json_value v;
	int64_t version, n;
	if (jsonscan_get(line, len, "grasshopper_spool", &v) ||
	    jsonscan_int64(&v, &version) || version != SPOOL_VERSION)
		return -1;
	if (!(sp->server = get_string(line, len, "server")) ||
	    !(sp->name = get_string(line, len, "name")) ||
	    !(sp->description = get_string(line, len, "description")))
		return -1;
	if (jsonscan_get(line, len, "test_id", &v))
		return -1;
	if (v.type != JSON_NULL &&
	    (jsonscan_int64(&v, &sp->test_id) || sp->test_id <= 0))
		return -1;
	if (jsonscan_get(line, len, "threshold", &v) ||
	    jsonscan_number(&v, &sp->threshold) ||
	    get_time(line, len, "start_time", &sp->start_us) ||
	    get_time(line, len, "end_time", &sp->end_us) ||
	    jsonscan_get(line, len, "stopped", &v) || v.type != JSON_BOOL)
		return -1;
	sp->stopped = v.p[0] == 't';
	sp->exit_status = -1;
	if (jsonscan_get(line, len, "exit_status", &v) == 0 &&
	    v.type != JSON_NULL) {
		if (jsonscan_int64(&v, &n) || n < 0 || n > 255)
			return -1;
		sp->exit_status = (int)n;
	}
	if (parse_tags(&sp->tags, line, len) < 0)
		return -1;
	return parse_command(&sp->command, line, len);
}

/* One sample line appended to sp; return 0 or -1. */
static int
parse_sample(struct spool *sp, size_t *cap, const char *line, size_t len)
{
	struct json_value v;
	struct sample x = {0};
	if (get_time(line, len, "timestamp", &x.stamp) ||
	    jsonscan_get(line, len, "cpu_usage", &v) ||
	    jsonscan_number(&v, &x.cpu) || x.cpu < 0 || x.cpu > 1)
		return -1;
	if (jsonscan_get(line, len, "mem_usage", &v) == 0) {
		if (jsonscan_number(&v, &x.mem) || x.mem < 0 || x.mem > 1)
			return -1;
		x.has_mem = true;
	}
	if (sp->n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		sp->samples = xrealloc(sp->samples, *cap * sizeof *sp->samples);
	}
	sp->samples[sp->n++] = x;
	return 0;
}

int
spool_parse(struct spool *sp, const char *text, size_t len, char *err,
	    size_t errlen)
{
	*sp = (struct spool){.exit_status = -1};
	size_t cap = 0, lineno = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		size_t n = (size_t)(eol - p);
		lineno++;
		if (n > 0 && (lineno == 1 ? parse_header(sp, p, n)
					  : parse_sample(sp, &cap, p, n))) {
			snprintf(err, errlen, "line %zu is not a %s", lineno,
				 lineno == 1 ? "grasshopper spool header"
					     : "sample");
			return -1;
		}
		if (lineno == 1 && n == 0)
			break;
		p = eol + 1;
	}
	if (!sp->server) {
		snprintf(err, errlen, "not a grasshopper spool file");
		return -1;
	}
	return 0;
}

int
spool_read(struct spool *sp, const char *path)
{
	struct buf b = {0};
	char chunk[65536], err[128];
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "grasshopper: %s: %s\n", path, strerror(errno));
		*sp = (struct spool){0};
		return -1;
	}
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(&b, chunk, n);
	int rc = ferror(f) ? -1 : 0;
	fclose(f);
	if (rc < 0) {
		fprintf(stderr, "grasshopper: %s: read error\n", path);
		*sp = (struct spool){0};
	} else if ((rc = spool_parse(sp, b.p ? b.p : "", b.len, err,
				     sizeof err)) < 0) {
		fprintf(stderr, "grasshopper: %s: %s\n", path, err);
	}
	buf_free(&b);
	return rc;
}

void
spool_free(struct spool *sp)
{
	free(sp->server);
	free(sp->name);
	free(sp->description);
	free(sp->samples);
	tags_free(&sp->tags);
	*sp = (struct spool){0};
}

int
fd_write_all(int fd, const struct buf *b)
{
	for (size_t off = 0; off < b->len;) {
		ssize_t w = write(fd, b->p + off, b->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		off += (size_t)w;
	}
	return fsync(fd);
}

int
dirs_make(const char *dir)
{
	char *d = xstrdup(dir);
	for (char *p = d + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(d, 0700) < 0 && errno != EEXIST) {
			free(d);
			return -1;
		}
		if (!(*p = c))
			break;
	}
	free(d);
	return 0;
}

/* Where spool files go by default: the XDG state directory, else /tmp. */
static void
default_dirs(const char *dirs[3], struct buf *state)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n = 0;
	if (xdg && xdg[0] == '/')
		buf_printf(state, "%s/grasshopper", xdg);
	else if (home && home[0] == '/')
		buf_printf(state, "%s/.local/state/grasshopper", home);
	if (state->len)
		dirs[n++] = state->p;
	dirs[n++] = "/tmp";
	dirs[n] = NULL;
}

/* Create a new spool file in dir; return its fd and set *path, or -1. */
static int
spool_create(const char *dir, const struct spool *sp, struct buf *path)
{
	char t[ISOTIME_MAX];
	isotime_format(sp->start_us - sp->start_us % 1000000, t);
	/* 2024-05-01T12:00:00Z -> 20240501T120000Z: no colons in names */
	char compact[ISOTIME_MAX];
	size_t k = 0;
	for (const char *c = t; *c; c++)
		if (*c != '-' && *c != ':')
			compact[k++] = *c;
	compact[k] = '\0';
	if (dirs_make(dir) < 0)
		return -1;
	for (int i = 0; i < 100; i++) {
		buf_reset(path);
		buf_printf(path, "%s/grasshopper-%s-%ld", dir, compact,
			   (long)getpid());
		if (i > 0) /* taken already: a reused pid, same second */
			buf_printf(path, "-%d", i);
		buf_puts(path, ".jsonl");
		int fd = open(path->p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			      0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

char *
spool_write_new(const struct spool *sp, const char *dir)
{
	const char *dirs[3] = {dir, NULL, NULL};
	struct buf text = {0}, path = {0}, state = {0};
	int err = 0;
	if (!dir)
		default_dirs(dirs, &state);
	spool_format(&text, sp);
	for (int i = 0; dirs[i]; i++) {
		int fd = spool_create(dirs[i], sp, &path);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (fd_write_all(fd, &text) == 0 && close(fd) == 0) {
			buf_free(&text);
			buf_free(&state);
			return path.p;
		}
		err = errno;
		close(fd);
		unlink(path.p);
	}
	fprintf(stderr,
		"grasshopper: cannot save the undelivered samples in %s: %s\n",
		dirs[0], strerror(err));
	buf_free(&text);
	buf_free(&path);
	buf_free(&state);
	return NULL;
}

int
spool_rewrite(const struct spool *sp, const char *path)
{
	struct buf text = {0}, tmp = {0};
	int rc = -1, fd = -1;
	spool_format(&text, sp);
	buf_printf(&tmp, "%s.new", path);
	/* Write the new file whole, then swap it in: never half a spool. */
	fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fd_write_all(fd, &text) < 0)
		goto fail;
	rc = close(fd);
	fd = -1;
	if (rc == 0)
		rc = rename(tmp.p, path);
fail:
	if (rc < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		unlink(tmp.p);
		fprintf(stderr, "grasshopper: cannot update %s: %s\n", path,
			strerror(e));
	}
	buf_free(&text);
	buf_free(&tmp);
	return rc;
}
