/*
 * GitHub Actions' job summary (SPEC 6.3): when GITHUB_STEP_SUMMARY names a
 * file, the run is appended to it as a short Markdown table with a link
 * to its page, which GitHub shows on the job's page, and under it the
 * comparison with its baseline (SPEC 6.4). A file that cannot be written
 * costs a warning, never the run.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What means something inside a line of GitHub's Markdown: emphasis,
 * code, links, HTML, entities, cells ('|'), strikethrough, math ('$'),
 * emoji (":x:") and mentions ('@'). The rest of ASCII's punctuation only
 * matters at the start of a line, where md_text never writes. */
static const char md_special[] = "\\`*_[]<>|#~!&$:@";

/* Append s as Markdown text inside a line (a table cell, a paragraph):
 * md_special escaped with a backslash, control characters (newlines too)
 * as blanks, bytes that are not UTF-8 as U+FFFD. */
static void
md_text(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		size_t k = c < 0x80 ? 1 : utf8_seq(p + i, len - i);
		if (c < 0x20 || c == 0x7f)
			buf_puts(b, " ");
		else if (k == 0)
			buf_puts(b, "\xef\xbf\xbd");
		else if (strchr(md_special, c))
			buf_printf(b, "\\%c", c);
		else
			buf_add(b, p + i, k);
		i += k ? k : 1;
	}
}

/* Append url as a Markdown link destination: what could end it or break
 * the table ( ) < > | blanks and controls, percent-encoded. */
static void
md_url(struct buf *b, const char *url)
{
	for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || strchr("()<>|\\`[]\"'", *p))
			buf_printf(b, "%%%02X", *p);
		else
			buf_add(b, p, 1);
	}
}

/* Append the comparison with the baseline (when it had enough runs) and
 * the gate's verdict (when one was asked for), a paragraph each: a blank
 * line first ends the table. */
static void
md_comparison(struct buf *b, const struct comparison *cmp)
{
	if (cmp->compared) {
		buf_puts(b, "\nThis run ");
		md_text(b, cmp->line.p);
		buf_puts(b, "\n");
	}
	if (cmp->verdict == GATE_SLOWER || cmp->verdict == GATE_UNJUDGED ||
	    cmp->verdict == GATE_PASSED) {
		buf_puts(b, cmp->verdict == GATE_SLOWER ? "\n**" : "\n");
		md_text(b, cmp->why.p);
		buf_puts(b, cmp->verdict == GATE_SLOWER ? "**\n" : "\n");
	}
}

void
step_summary_format(struct buf *b, const struct run_stats *st, const char *name,
		    int exit_status, const char *server,
		    const struct comparison *cmp)
{
	double pct = st->duration > 0 ? 100.0 * st->above / st->duration : 0;
	/* A blank line first, also when the file does not end with a
	 * newline: the table must not join a paragraph written before it
	 * (by this step: GitHub gives each step a file of its own). */
	buf_printf(b,
		   "\n\n| grasshopper | duration | above %.4g%% | peak CPU | "
		   "mean CPU | peak memory | command CPU | max RSS | exit |\n"
		   "|:--|--:|--:|--:|--:|--:|--:|--:|--:|\n| ",
		   100.0 * st->threshold);
	if (server && st->test_id > 0) {
		buf_puts(b, "[");
		md_text(b, name);
		buf_puts(b, "](");
		struct buf url = {0};
		buf_printf(&url, "%s/#/test/%" PRId64, server, st->test_id);
		md_url(b, url.p);
		buf_free(&url);
		buf_puts(b, ")");
	} else {
		md_text(b, name);
		buf_puts(b, " (not recorded)");
	}
	buf_printf(b, " | %.2f s | %.2f s (%.1f%%) | ", st->duration, st->above,
		   pct);
	if (st->samples > 0)
		buf_printf(b, "%.1f%% | %.1f%% | ", 100.0 * st->max_cpu,
			   100.0 * st->sum_cpu / (double)st->samples);
	else
		buf_puts(b, "- | - | ");
	if (st->mem_known)
		buf_printf(b, "%.1f%% | ", 100.0 * st->max_mem);
	else
		buf_puts(b, "- | ");
	if (st->command.known)
		buf_printf(b, "%.2f s user + %.2f s system | %.1f MiB | ",
			   st->command.user_cpu, st->command.system_cpu,
			   (double)st->command.max_rss_kib / 1024.0);
	else
		buf_puts(b, "- | - | ");
	if (exit_status >= 0)
		buf_printf(b, "%d |\n", exit_status);
	else
		buf_puts(b, "- |\n");
	if (cmp)
		md_comparison(b, cmp);
}

/* Append b to the file at path in one write; return 0 or -1 (errno). */
static int
append_once(const char *path, const struct buf *b)
{
	/* O_NONBLOCK: a FIFO nobody reads fails (ENXIO) instead of hanging
	 * the end of the run. */
	int fd = open(path,
		      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY |
			  O_NONBLOCK,
		      0644);
	if (fd < 0)
		return -1;
	ssize_t w;
	do
		w = write(fd, b->p, b->len);
	while (w < 0 && errno == EINTR);
	bool whole = w == (ssize_t)b->len;
	int e = w < 0 ? errno : EIO; /* a short write: the disk is full */
	if (close(fd) < 0 && whole)
		return -1;
	if (whole)
		return 0;
	errno = e;
	return -1;
}

void
step_summary_write(const struct run_stats *st, const char *name,
		   int exit_status, const char *server,
		   const struct comparison *cmp)
{
	const char *path = getenv("GITHUB_STEP_SUMMARY");
	if (!path || !*path)
		return;
	struct buf b = {0};
	step_summary_format(&b, st, name, exit_status, server, cmp);
	if (append_once(path, &b) < 0) {
		struct buf shown = {0};
		printable_add(&shown, path, strlen(path));
		fprintf(stderr,
			"grasshopper: warning: GITHUB_STEP_SUMMARY %s: %s; no "
			"step summary written\n",
			shown.p, strerror(errno));
		buf_free(&shown);
	}
	buf_free(&b);
}
