/* UTF-8 checks shared by the client and the service. */
#ifndef GH_UTF8_H
#define GH_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at s[0..len) (1 for ASCII), 0
 * when it is not one: overlong forms, surrogates, > U+10FFFF, cut short. */
size_t utf8_seq(const unsigned char *s, size_t len);
/* Is s[0..len) well-formed UTF-8 throughout (utf8_seq at every step)? */
bool utf8_valid(const char *s, size_t len);

/* Number of code points in s[0..len), each invalid byte counting as one. */
size_t utf8_chars(const char *s, size_t len);

#endif
