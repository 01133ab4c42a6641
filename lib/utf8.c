/* UTF-8, checked the same way by the client and the service. */
#include "utf8.h"

size_t
utf8_seq(const unsigned char *s, size_t len)
{
	if (len == 0)
		return 0;
	unsigned c = s[0], need, cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 1, cp = c & 0x1F, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		need = 2, cp = c & 0x0F, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		need = 3, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (need >= len)
		return 0;
	for (unsigned k = 1; k <= need; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return need + 1;
}

bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0, k; i < len; i += k)
		if ((k = utf8_seq(p + i, len - i)) == 0)
			return false;
	return true;
}

size_t
utf8_chars(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;
	for (size_t i = 0; i < len; n++) {
		size_t k = utf8_seq(p + i, len - i);
		i += k ? k : 1;
	}
	return n;
}
