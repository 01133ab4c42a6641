/*
 * The tracker's one way to say something: a line on standard error.
 * Every line but the per-request one (docs/operations.md) reads
 *   grasshopper-tracker[PID]: LEVEL: message
 * and goes out in one write(2), so that the lines of a worker's threads
 * and of the master never interleave.
 */
#include "tracker.h"

#include <stdio.h>
#include <unistd.h>

/* Longer lines are cut: an access line's path is at most 1200 bytes. */
#define LOG_LINE_MAX 2048

void
log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const words[] = {
	    [LOG_ERROR] = "error", [LOG_WARN] = "warning", [LOG_NOTE] = "note"};
	char line[LOG_LINE_MAX];
	size_t start = 0, len;
	if (level != LOG_ACCESS)
		start = (size_t)snprintf(line, sizeof line,
					 "grasshopper-tracker[%d]: %s: ",
					 (int)getpid(), words[level]);
	va_list ap;
	va_start(ap, fmt);
	/* One byte kept for the newline. */
	int n = vsnprintf(line + start, sizeof line - 1 - start, fmt, ap);
	va_end(ap);
	len = start + (n < 0 ? 0 : (size_t)n);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	/* One line, whatever the message holds: libpq's end in a newline and
	 * some have several. */
	while (len > start && (line[len - 1] == '\n' || line[len - 1] == ' '))
		len--;
	for (size_t i = start; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	(void)!write(STDERR_FILENO, line, len);
}
