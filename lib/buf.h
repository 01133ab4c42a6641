/*
 * Growable buffers, and allocation that cannot return NULL (client and
 * service alike): callers never check for NULL.
 */
#ifndef GH_BUF_H
#define GH_BUF_H

#include <stddef.h>

/* A growable byte string, always NUL-terminated once anything is added. */
struct buf {
	char *p;
	size_t len, cap;
};

/* Allocation that aborts with a message instead of returning NULL. */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

void buf_add(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Forget the contents but keep the memory. */
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
