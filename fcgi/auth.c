/*
 * Passwords (libsodium argon2id) and tokens (libjwt 1.10, HS256 only).
 * LIBRARY-NOTES lists what libjwt 1.10 does not check; token_verify does.
 */
#include "tracker.h"

#include <ctype.h>
#include <errno.h>
#include <jwt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* OWASP's argon2id minimum: t=2, m=19 MiB, about 0.05 s here. */
#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024 * 1024)

/* One argon2 computation at a time per worker process, whatever its thread
 * count: each takes PW_MEMLIMIT (or what the stored hash asks for) of
 * memory, so a burst of logins costs workers x that, not threads x that. */
static pthread_mutex_t pw_mu = PTHREAD_MUTEX_INITIALIZER;

int
password_hash(const char *pw, size_t len, char *out, size_t outlen)
{
	if (outlen < crypto_pwhash_STRBYTES)
		return -1;
	pthread_mutex_lock(&pw_mu);
	int r = crypto_pwhash_str(out, pw, len, PW_OPSLIMIT, PW_MEMLIMIT);
	pthread_mutex_unlock(&pw_mu);
	return r == 0 ? 0 : -1;
}

int
password_verify(const char *hash, const char *pw, size_t len)
{
	pthread_mutex_lock(&pw_mu);
	int r = crypto_pwhash_str_verify(hash, pw, len);
	pthread_mutex_unlock(&pw_mu);
	return r == 0;
}

int
password_needs_rehash(const char *hash)
{
	return crypto_pwhash_str_needs_rehash(hash, PW_OPSLIMIT, PW_MEMLIMIT) !=
	       0;
}

char *
token_issue(const char *secret, size_t secret_len, int64_t user, int64_t jti,
	    int64_t now, int64_t exp)
{
	jwt_t *jwt = NULL;
	char *out = NULL, sub[24], id[24];
	snprintf(sub, sizeof sub, "%lld", (long long)user);
	snprintf(id, sizeof id, "%lld", (long long)jti);
	if (jwt_new(&jwt))
		goto fail;
	if (jwt_add_grant(jwt, "sub", sub) || jwt_add_grant(jwt, "jti", id) ||
	    jwt_add_grant_int(jwt, "iat", (long)now) ||
	    jwt_add_grant_int(jwt, "exp", (long)exp) ||
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret,
			(int)secret_len))
		goto fail;
	out = jwt_encode_str(jwt);
fail:
	jwt_free(jwt);
	return out;
}

/* Point *tok at the token of "Bearer TOKEN" (scheme case-insensitive).
 * Return 0, or -1 when the header is not a bearer token of sane size. */
static int
bearer_token(const char *header, const char **tok)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return -1;
	const char *t = header + 7;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	if (n == 0 || n > TOKEN_MAX)
		return -1;
	/* Three base64url parts: libjwt 1.10 overruns its buffer on a part
	 * whose length is 1 mod 4 (no such base64 exists), so check first. */
	size_t part = 0, parts = 1;
	for (const char *p = t;; p++) {
		if (*p == '.' || *p == '\0') {
			if (part == 0 || part % 4 == 1)
				return -1;
			if (!*p)
				break;
			parts++;
			part = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-' ||
			   *p == '_') {
			part++;
		} else {
			return -1;
		}
	}
	if (parts != 3)
		return -1;
	*tok = t;
	return 0;
}

/* A positive decimal int64 without sign or leading zero, into *out.
 * Return 0, or -1 for anything else. */
static int
positive_id(const char *s, int64_t *out)
{
	if (!s || *s < '1' || *s > '9')
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v <= 0)
		return -1;
	*out = v;
	return 0;
}

int
token_verify(const char *secret, size_t secret_len, const char *header,
	     int64_t now, int64_t *user, int64_t *jti)
{
	const char *tok;
	jwt_t *jwt = NULL;
	int rc = -1;
	/* With an empty key jwt_decode accepts alg "none": never call it so. */
	if (!secret || secret_len == 0 || bearer_token(header, &tok))
		return -1;
	if (jwt_decode(&jwt, tok, (const unsigned char *)secret,
		       (int)secret_len) ||
	    !jwt)
		goto done;
	/* jwt_decode takes any HMAC signed with the key: HS256 only, spelt
	 * exactly so (libjwt reads "hs256" as HS256 too). */
	const char *alg = jwt_get_header(jwt, "alg");
	if (jwt_get_alg(jwt) != JWT_ALG_HS256 || !alg || strcmp(alg, "HS256"))
		goto done;
	/* libjwt 1.10 does not check exp: a missing, string or float exp
	 * reads as 0 with errno 0. */
	errno = 0;
	long exp = jwt_get_grant_int(jwt, "exp");
	if (errno || exp <= 0 || exp <= now)
		goto done;
	if (positive_id(jwt_get_grant(jwt, "sub"), user))
		goto done;
	/* No jti at all: a token signed before tokens had rows (legacy, 0);
	 * one that is not a row id (a number, "", "07") is no token of ours. */
	char *raw = jwt_get_grants_json(jwt, "jti"); /* NULL: absent */
	*jti = 0;
	if (raw && positive_id(jwt_get_grant(jwt, "jti"), jti)) {
		free(raw);
		goto done;
	}
	free(raw);
	rc = 0;
done:
	jwt_free(jwt);
	return rc;
}
