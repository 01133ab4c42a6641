/*
 * fcgi/auth.c: token_verify, the Authorization header check, with libjwt
 * 1.10 under it. The first byte picks a mode:
 *   0  the rest is the header value as nginx would pass it;
 *   1  the rest is a JOSE header and a claims set, split at the first NUL,
 *      made into "Bearer h.p.s" signed with the service's secret, so the
 *      fuzzer reaches the checks behind the signature (alg, exp, sub,
 *      jti);
 *   2  the same signed with another key: it must never verify.
 * Whatever verifies must satisfy every rule of SPEC section 3, read here
 * from the token itself with json-c.
 */
#include "fuzz.h"
#include "tracker.h"

#include <sodium.h>
#include <string.h>

static const char secret[] = "fuzz-secret-0123456789abcdef-0123456789";
static const char other[] = "fuzz-secret-0123456789abcdef-0123456789x";
#define NOW 1767225600 /* 2026-01-01T00:00:00Z */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

/* Append the base64url of p[0..n) (no padding) to out at *at. */
static void
b64url(char *out, size_t *at, const void *p, size_t n)
{
	sodium_bin2base64(out + *at,
			  sodium_base64_ENCODED_LEN(
			      n, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
			  p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	*at += strlen(out + *at);
}

/* "Bearer " + JWS of head and claims, HS256 with key. Caller frees. */
static char *
sign(const char *head, size_t hlen, const char *claims, size_t clen,
     const char *key)
{
	size_t cap = 16 + 2 * (hlen + clen) + 64;
	char *out = malloc(cap);
	size_t at = 0;
	memcpy(out, "Bearer ", 7);
	at = 7;
	b64url(out, &at, head, hlen);
	out[at++] = '.';
	b64url(out, &at, claims, clen);
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key,
				    strlen(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)out + 7,
				      at - 7);
	crypto_auth_hmacsha256_final(&st, mac);
	out[at++] = '.';
	b64url(out, &at, mac, sizeof mac);
	return out;
}

/* Parse n bytes of JSON with json-c (lenient; NULL when it cannot). */
static struct json_object *
parse(const char *s, size_t n)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *v = json_tokener_parse_ex(tok, s, (int)n);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(v);
		v = NULL;
	}
	json_tokener_free(tok);
	return v;
}

/* A token that verified: the claims it was made of obey the rules. */
static void
check_accepted(const char *head, size_t hlen, const char *claims, size_t clen,
	       int64_t user, int64_t jti)
{
	FUZZ_ASSERT(user > 0);
	struct json_object *h = parse(head, hlen), *c = parse(claims, clen);
	struct json_object *v;
	if (h) {
		FUZZ_ASSERT(json_object_object_get_ex(h, "alg", &v));
		FUZZ_ASSERT(json_object_is_type(v, json_type_string));
		FUZZ_ASSERT(strcmp(json_object_get_string(v), "HS256") == 0);
	}
	if (c) {
		FUZZ_ASSERT(json_object_object_get_ex(c, "exp", &v));
		FUZZ_ASSERT(json_object_is_type(v, json_type_int));
		FUZZ_ASSERT(json_object_get_int64(v) > NOW);
		FUZZ_ASSERT(json_object_object_get_ex(c, "sub", &v));
		FUZZ_ASSERT(json_object_is_type(v, json_type_string));
		char want[24];
		snprintf(want, sizeof want, "%lld", (long long)user);
		FUZZ_ASSERT(strcmp(json_object_get_string(v), want) == 0);
		/* No jti is a legacy token (0); else the decimal of a row
		 * id. */
		bool has = json_object_object_get_ex(c, "jti", &v);
		FUZZ_ASSERT(has == (jti != 0));
		if (has) {
			FUZZ_ASSERT(json_object_is_type(v, json_type_string));
			snprintf(want, sizeof want, "%lld", (long long)jti);
			FUZZ_ASSERT(strcmp(json_object_get_string(v), want) ==
				    0);
		}
	}
	json_object_put(h);
	json_object_put(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 2 * TOKEN_MAX)
		return 0;
	int mode = data[0] % 3;
	const char *rest = (const char *)data + 1;
	size_t n = size - 1;
	int64_t user = 0, jti = -1;

	if (mode == 0) {
		char *header = malloc(n + 1);
		memcpy(header, rest, n);
		header[n] = '\0';
		if (token_verify(secret, sizeof secret - 1, header, NOW, &user,
				 &jti) == 0)
			FUZZ_ASSERT(user > 0 && jti >= 0);
		/* No key, no token: libjwt would take alg "none". */
		FUZZ_ASSERT(token_verify(secret, 0, header, NOW, &user, &jti) !=
			    0);
		free(header);
		return 0;
	}
	const char *nul = memchr(rest, '\0', n);
	size_t hlen = nul ? (size_t)(nul - rest) : n;
	const char *claims = nul ? nul + 1 : "";
	size_t clen = nul ? n - hlen - 1 : 0;
	char *header =
	    sign(rest, hlen, claims, clen, mode == 1 ? secret : other);
	int rc =
	    token_verify(secret, sizeof secret - 1, header, NOW, &user, &jti);
	if (mode == 2)
		FUZZ_ASSERT(rc != 0);
	else if (rc == 0)
		check_accepted(rest, hlen, claims, clen, user, jti);
	free(header);
	return 0;
}
