/* fcgi/auth.c: tokens (HS256 only, exp required, sub parsed whole) and
 * passwords. Forged tokens are made with libjwt itself. */
#include "tracker.h"
#include "tap.h"

#include <jwt.h>
#include <sodium.h>
#include <stdlib.h>

static const char secret[] = "0123456789abcdef0123456789abcdef-unit";
#define SLEN (sizeof secret - 1)
#define NOW 1796014371L

/* A token with the given alg/key and claims (a JSON object text). */
static char *
forge(jwt_alg_t alg, const char *key, const char *claims)
{
	jwt_t *jwt;
	if (jwt_new(&jwt))
		abort();
	if (jwt_add_grants_json(jwt, claims))
		abort();
	if (jwt_set_alg(jwt, alg, (const unsigned char *)key,
			key ? (int)strlen(key) : 0))
		abort();
	char *t = jwt_encode_str(jwt);
	jwt_free(jwt);
	return t;
}

/* token_verify on "Bearer <tok>"; returns the user id or -1, and sets
 * *jti when given. */
static long long
verify_jti(const char *tok, int64_t *jti)
{
	char h[8192];
	int64_t user = 0, id = -1;
	snprintf(h, sizeof h, "Bearer %s", tok);
	int rc = token_verify(secret, SLEN, h, NOW, &user, &id);
	if (jti)
		*jti = rc ? -1 : id;
	return rc ? -1 : user;
}

static long long
verify_tok(const char *tok)
{
	return verify_jti(tok, NULL);
}

static void
claims_case(jwt_alg_t alg, const char *key, const char *claims, long long want,
	    const char *name)
{
	char *t = forge(alg, key, claims);
	is_int(verify_tok(t), want, "%s", name);
	free(t);
}

static void
test_issue_and_verify(void)
{
	int64_t user = 0, jti = 0;
	char *t = token_issue(secret, SLEN, 42, 99, NOW, NOW + 3600);
	ok(t != NULL, "token issued");
	is_int(verify_jti(t, &jti), 42, "our own token verifies to its user");
	is_int(jti, 99, "... and to its row (jti)");

	char h[4096];
	snprintf(h, sizeof h, "bearer   %s", t);
	is_int(token_verify(secret, SLEN, h, NOW, &user, &jti), 0,
	       "scheme is case-insensitive, spaces tolerated");
	is_int(token_verify(secret, SLEN, h, NOW + 3600, &user, &jti), -1,
	       "expired at exp");
	is_int(token_verify("another-secret-another-secret-xx", 32, h, NOW,
			    &user, &jti),
	       -1, "wrong key");
	is_int(token_verify(secret, 0, h, NOW, &user, &jti), -1,
	       "never verified without a key");

	/* Swap the payload for user 1's: the signature no longer fits. */
	char *other = token_issue(secret, SLEN, 1, 98, NOW, NOW + 3600);
	char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
	char *odot1 = strchr(other, '.'), *odot2 = strchr(odot1 + 1, '.');
	snprintf(h, sizeof h, "Bearer %.*s%.*s%s", (int)(dot1 - t), t,
		 (int)(odot2 - odot1), odot1, dot2);
	is_int(token_verify(secret, SLEN, h, NOW, &user, &jti), -1,
	       "tampered payload");
	free(other);
	free(t);
}

static void
test_forged(void)
{
	const char *good = "{\"sub\":\"7\",\"iat\":1796014000,"
			   "\"exp\":1796099999}";
	claims_case(JWT_ALG_HS256, secret, good, 7, "well-formed HS256");
	claims_case(JWT_ALG_NONE, NULL, good, -1, "alg none");
	claims_case(JWT_ALG_HS512, secret, good, -1, "HS512 with the secret");
	claims_case(JWT_ALG_HS384, secret, good, -1, "HS384 with the secret");
	claims_case(JWT_ALG_HS256, "not-the-secret-not-the-secret-xx", good, -1,
		    "HS256 with another key");
	claims_case(JWT_ALG_HS256, secret, "{\"sub\":\"7\"}", -1,
		    "missing exp");
	claims_case(JWT_ALG_HS256, secret,
		    "{\"sub\":\"7\",\"exp\":\"1796099999\"}", -1, "string exp");
	claims_case(JWT_ALG_HS256, secret,
		    "{\"sub\":\"7\",\"exp\":1796099999.5}", -1, "float exp");
	claims_case(JWT_ALG_HS256, secret, "{\"sub\":\"7\",\"exp\":0}", -1,
		    "zero exp");
	claims_case(JWT_ALG_HS256, secret, "{\"sub\":\"7\",\"exp\":-5}", -1,
		    "negative exp");
	claims_case(JWT_ALG_HS256, secret, "{\"sub\":\"7\",\"exp\":1796014371}",
		    -1, "exp == now is expired");
	claims_case(JWT_ALG_HS256, secret, "{\"exp\":1796099999}", -1,
		    "missing sub");
	claims_case(JWT_ALG_HS256, secret, "{\"sub\":7,\"exp\":1796099999}", -1,
		    "numeric sub");
	claims_case(JWT_ALG_HS256, secret,
		    "{\"sub\":\"7x\",\"exp\":1796099999}", -1, "sub 7x");
	claims_case(JWT_ALG_HS256, secret,
		    "{\"sub\":\"07\",\"exp\":1796099999}", -1, "sub 07");
	claims_case(JWT_ALG_HS256, secret,
		    "{\"sub\":\"-7\",\"exp\":1796099999}", -1, "sub -7");
	claims_case(JWT_ALG_HS256, secret,
		    "{\"sub\":\" 7\",\"exp\":1796099999}", -1, "sub ' 7'");
	claims_case(JWT_ALG_HS256, secret, "{\"sub\":\"\",\"exp\":1796099999}",
		    -1, "empty sub");
	claims_case(JWT_ALG_HS256, secret,
		    "{\"sub\":\"99999999999999999999\",\"exp\":1796099999}", -1,
		    "sub beyond int64");
}

/* jti: absent is a legacy token (0), else a row id as a decimal string. */
static void
jti_case(const char *jti, long long want, const char *name)
{
	char claims[256];
	int64_t got;
	snprintf(claims, sizeof claims,
		 "{\"sub\":\"7\",\"exp\":1796099999%s%s}",
		 jti ? ",\"jti\":" : "", jti ? jti : "");
	char *t = forge(JWT_ALG_HS256, secret, claims);
	verify_jti(t, &got);
	is_int(got, want, "%s", name);
	free(t);
}

static void
test_jti(void)
{
	jti_case(NULL, 0, "no jti: legacy");
	jti_case("\"5\"", 5, "jti \"5\"");
	jti_case("\"9223372036854775807\"", INT64_MAX, "jti INT64_MAX");
	jti_case("5", -1, "numeric jti");
	jti_case("\"\"", -1, "empty jti");
	jti_case("\"05\"", -1, "jti 05");
	jti_case("\"0\"", -1, "jti 0");
	jti_case("\"-5\"", -1, "jti -5");
	jti_case("\"5x\"", -1, "jti 5x");
	jti_case("null", -1, "jti null");
	jti_case("[\"5\"]", -1, "jti array");
	jti_case("\"99999999999999999999\"", -1, "jti beyond int64");
}

/* A token signed with the secret by hand, with the header text given:
 * what libjwt would never write, e.g. "alg":"hS256". */
static char *
forge_raw(const char *header, const char *claims)
{
	static char tok[2048];
	char h[512], c[512];
	sodium_bin2base64(h, sizeof h, (const unsigned char *)header,
			  strlen(header),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2base64(c, sizeof c, (const unsigned char *)claims,
			  strlen(claims),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(tok, sizeof tok, "%s.%s", h, c);
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, SLEN);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok,
				      strlen(tok));
	crypto_auth_hmacsha256_final(&st, mac);
	size_t n = strlen(tok);
	tok[n++] = '.';
	sodium_bin2base64(tok + n, sizeof tok - n, mac, sizeof mac,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return tok;
}

static void
test_alg_spelling(void)
{
	const char *claims = "{\"sub\":\"7\",\"exp\":1796099999}";
	is_int(verify_tok(
		   forge_raw("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims)),
	       7, "a hand-made HS256 token verifies");
	is_int(verify_tok(
		   forge_raw("{\"alg\":\"hS256\",\"typ\":\"JWT\"}", claims)),
	       -1, "alg hS256 (libjwt reads it as HS256) is refused");
	is_int(verify_tok(forge_raw("{\"alg\":\"hs256\"}", claims)), -1,
	       "alg hs256 is refused");
	is_int(verify_tok(forge_raw("{\"typ\":\"JWT\"}", claims)), -1,
	       "no alg is refused");
}

static void
test_headers(void)
{
	int64_t user, jti;
	const char *bad[] = {NULL,
			     "",
			     "Bearer",
			     "Bearer ",
			     "Basic dXNlcjpwYXNz",
			     "Bearer a.b.c d",
			     "Bearer a.b.c\t",
			     "Token a.b.c",
			     "Bearer a+b/c=.d.e",
			     "Bearer a.b.c",
			     "Bearer abcde.abcd.abcd",
			     "Bearer abcd.abcde.abcd",
			     "Bearer abcd.abcd.abcde",
			     "Bearer abcd..abcd",
			     "Bearer .abcd.abcd",
			     "Bearer abcd.abcd.",
			     "Bearer abcd.abcd.abcd.abcd",
			     "Bearer abcd.abcd"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		is_int(token_verify(secret, SLEN, bad[i], NOW, &user, &jti), -1,
		       "header '%s'", bad[i] ? bad[i] : "(none)");
	char *huge = malloc(TOKEN_MAX + 16);
	strcpy(huge, "Bearer ");
	memset(huge + 7, 'a', TOKEN_MAX + 1);
	huge[7 + TOKEN_MAX + 1] = '\0';
	is_int(token_verify(secret, SLEN, huge, NOW, &user, &jti), -1,
	       "a token over %d bytes", TOKEN_MAX);
	free(huge);
}

static void
test_passwords(void)
{
	char h[crypto_pwhash_STRBYTES];
	is_int(password_hash("correct horse", 13, h, sizeof h), 0, "hash");
	ok(strncmp(h, "$argon2id$", 10) == 0, "argon2id PHC string");
	is_int(password_verify(h, "correct horse", 13), 1, "right password");
	is_int(password_verify(h, "correct hors", 12), 0, "wrong password");
	is_int(password_verify(h, "correct horse\0x", 15), 0,
	       "bytes after a NUL count");
	char h2[crypto_pwhash_STRBYTES];
	password_hash("correct horse", 13, h2, sizeof h2);
	ok(strcmp(h, h2) != 0, "salted: two hashes differ");
	is_int(password_needs_rehash(h), 0, "fresh hash needs no rehash");
	char weak[crypto_pwhash_STRBYTES];
	ok(crypto_pwhash_str(weak, "x", 1, crypto_pwhash_OPSLIMIT_MIN,
			     crypto_pwhash_MEMLIMIT_MIN) == 0,
	   "a weak hash for comparison");
	is_int(password_needs_rehash(weak), 1, "weaker hash needs rehash");
	is_int(password_verify("not a hash", "x", 1), 0, "garbage hash");
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_issue_and_verify();
	test_forged();
	test_jti();
	test_alg_spelling();
	test_headers();
	test_passwords();
	return done_testing();
}
