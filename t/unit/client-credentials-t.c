/*
 * The credentials file (SPEC 6.2): where it is, its text both ways, the
 * files refused, the mode it is written with, and which token a run uses.
 */
#include "client.h"
#include "tap.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[256];

/* Parse text (a string literal); return credentials_parse's result. */
static int
parse(struct credentials *c, const char *text)
{
	err[0] = '\0';
	return credentials_parse(c, text, strlen(text), err, sizeof err);
}

static void
test_paths(void)
{
	struct buf dir = {0}, file = {0};
	setenv("HOME", "/home/ann", 1);
	setenv("XDG_CONFIG_HOME", "/xdg/conf", 1);
	is_int(credentials_paths(&dir, &file), 0, "paths from XDG_CONFIG_HOME");
	is_str(dir.p, "/xdg/conf/grasshopper", "the directory");
	is_str(file.p, "/xdg/conf/grasshopper/credentials", "the file");
	setenv("XDG_CONFIG_HOME", "rel/conf", 1);
	credentials_paths(&dir, &file);
	is_str(file.p, "/home/ann/.config/grasshopper/credentials",
	       "a relative XDG_CONFIG_HOME is ignored: ~/.config");
	unsetenv("XDG_CONFIG_HOME");
	credentials_paths(&dir, &file);
	is_str(file.p, "/home/ann/.config/grasshopper/credentials",
	       "XDG_CONFIG_HOME unset: ~/.config");
	setenv("XDG_CONFIG_HOME", "", 1);
	credentials_paths(&dir, &file);
	is_str(file.p, "/home/ann/.config/grasshopper/credentials",
	       "XDG_CONFIG_HOME empty: ~/.config");
	setenv("HOME", "nothome", 1);
	is_int(credentials_paths(&dir, &file), -1,
	       "neither absolute: nowhere (-1)");
	unsetenv("HOME");
	is_int(credentials_paths(&dir, &file), -1, "neither set: nowhere");
	buf_free(&dir);
	buf_free(&file);
}

static void
test_format_parse(void)
{
	struct credentials c = {0}, in = {.server = "https://gh.example.org",
					  .token = "eyJ.abc.def"};
	struct buf b = {0};
	credentials_format(&b, &in);
	ok(strstr(b.p, "\nserver https://gh.example.org\ntoken eyJ.abc.def\n"),
	   "the text: a comment, server and token lines");
	is_int(credentials_parse(&c, b.p, b.len, err, sizeof err), 0,
	       "what is written parses back");
	is_str(c.server, in.server, "the server");
	is_str(c.token, in.token, "the token");
	credentials_free(&c);
	ok(!c.server && !c.token, "credentials_free empties it");
	buf_free(&b);

	is_int(parse(&c, "token t1\n\n# hand-edited\nserver http://h:1//\n"), 0,
	       "any order, blank lines, comments");
	is_str(c.server, "http://h:1", "the server normalized");
	credentials_free(&c);
	is_int(parse(&c, "server http://h:1\r\ntoken t1\r\n"), 0,
	       "CRLF line ends");
	is_str(c.token, "t1", "the token without the CR");
	credentials_free(&c);
	is_int(parse(&c, "server http://h:1\ntoken t1"), 0,
	       "no newline at the end");
	credentials_free(&c);
}

static void
test_parse_bad(void)
{
	static const struct {
		const char *text, *why, *what;
	} bad[] = {
	    {"", "no server", "empty"},
	    {"server http://h\n", "no token", "no token"},
	    {"token t\n", "no server", "no server"},
	    {"server http://h\ntoken t\ntoken u\n", "second token",
	     "two tokens"},
	    {"server http://h\nserver http://i\ntoken t\n", "second server",
	     "two servers"},
	    {"server http://h\ntoken t\nuser ann\n", "line 3",
	     "an unknown key"},
	    {"server http://h\ntoken\n", "line 2", "a key without value"},
	    {"server ftp://h\ntoken t\n", "http://", "not an http(s) URL"},
	    {"server http://h\ntoken a b\n", "printable", "a blank in it"},
	    {"server http://h\ntoken \x1b[2Jx\n", "printable",
	     "a control character in it"},
	    {"server http://h\ntoken t\xc3\xa9\n", "printable",
	     "non-ASCII in it"},
	    {"server http://h\ntoken  t\n", "printable", "two blanks"},
	};
	struct credentials c;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		is_int(parse(&c, bad[i].text), -1, "refused: %s", bad[i].what);
		ok(strstr(err, bad[i].why) != NULL, "%s: says '%s' (%s)",
		   bad[i].what, bad[i].why, err);
		ok(!c.server && !c.token, "%s: nothing kept", bad[i].what);
	}
	is_int(credentials_parse(&c, "server http://h\0\ntoken t\n", 24, err,
				 sizeof err),
	       -1, "a NUL byte: refused");

	char big[TOKEN_MAX + 64];
	int n = snprintf(big, sizeof big, "server http://h\ntoken ");
	memset(big + n, 'a', TOKEN_MAX + 1);
	big[n + TOKEN_MAX + 1] = '\0';
	is_int(parse(&c, big), -1, "a token of %d bytes: refused",
	       TOKEN_MAX + 1);
	big[n + TOKEN_MAX] = '\0';
	is_int(parse(&c, big), 0, "one of %d: taken", TOKEN_MAX);
	credentials_free(&c);
	/* The token is never quoted in a message. */
	is_int(parse(&c, "server http://h\ntoken SECRET\x01\n"), -1,
	       "a bad token refused");
	ok(!strstr(err, "SECRET"), "without quoting it (%s)", err);
}

/* Write text to path with mode; return 0 or -1. */
static int
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, text, strlen(text));
	fchmod(fd, mode);
	return close(fd) < 0 || w < 0 ? -1 : 0;
}

static void
test_files(const char *tmp)
{
	struct credentials c, in = {.server = "http://h:1", .token = "tok"};
	struct buf dir = {0}, path = {0};
	struct stat st;
	buf_printf(&dir, "%s/a/b/grasshopper", tmp);
	buf_printf(&path, "%s/credentials", dir.p);
	is_int(credentials_load(&c, path.p, err, sizeof err), CREDENTIALS_NONE,
	       "no file: none");
	umask(0);
	is_int(credentials_save(&in, dir.p, path.p, err, sizeof err), 0,
	       "saved (umask 0 to tempt it)");
	umask(022);
	ok(stat(dir.p, &st) == 0 && (st.st_mode & 0777) == 0700,
	   "its directory made 0700 (%o)", st.st_mode & 0777);
	ok(stat(path.p, &st) == 0 && (st.st_mode & 0777) == 0600,
	   "the file 0600 (%o)", st.st_mode & 0777);
	is_int(credentials_load(&c, path.p, err, sizeof err), CREDENTIALS_OK,
	       "it loads");
	is_str(c.token, "tok", "with its token");
	credentials_free(&c);

	chmod(dir.p, 0755);
	in.token = "tok2";
	is_int(credentials_save(&in, dir.p, path.p, err, sizeof err), 0,
	       "saved again over it");
	ok(stat(dir.p, &st) == 0 && (st.st_mode & 0777) == 0700,
	   "an opened-up directory made 0700 again");
	credentials_load(&c, path.p, err, sizeof err);
	is_str(c.token, "tok2", "the new token replaced the old");
	credentials_free(&c);

	static const mode_t loose[] = {0640, 0604, 0620, 0644, 0660, 0602};
	for (size_t i = 0; i < sizeof loose / sizeof *loose; i++) {
		chmod(path.p, loose[i]);
		is_int(credentials_load(&c, path.p, err, sizeof err),
		       CREDENTIALS_BAD, "mode %04o: refused", loose[i]);
		ok(strstr(err, "others can open it") != NULL,
		   "mode %04o: says why (%s)", loose[i], err);
	}
	chmod(path.p, 0400);
	is_int(credentials_load(&c, path.p, err, sizeof err), CREDENTIALS_OK,
	       "mode 0400: fine");
	credentials_free(&c);
	unlink(path.p);
	is_int(write_file(path.p, "server http://h\n", 0600), 0, "a bad file");
	is_int(credentials_load(&c, path.p, err, sizeof err), CREDENTIALS_BAD,
	       "a malformed file: refused");
	ok(strstr(err, "no token") != NULL, "says why (%s)", err);
	/* A huge file: refused without reading it all. */
	static char huge[1 << 20];
	memset(huge, '#', sizeof huge - 1);
	is_int(write_file(path.p, huge, 0600), 0, "a 1 MiB file");
	is_int(credentials_load(&c, path.p, err, sizeof err), CREDENTIALS_BAD,
	       "refused");
	ok(strstr(err, "too large") != NULL, "as too large (%s)", err);
	unlink(path.p);
	mkdir(path.p, 0700);
	is_int(credentials_load(&c, path.p, err, sizeof err), CREDENTIALS_BAD,
	       "a directory in its place: refused");
	rmdir(path.p);

	/* Nothing left behind but the file itself. */
	credentials_save(&in, dir.p, path.p, err, sizeof err);
	struct buf cmd = {0};
	buf_printf(&cmd, "test \"$(ls -A '%s')\" = credentials", dir.p);
	is_int(system(cmd.p), 0, "no temporary file left in the directory");
	buf_free(&cmd);
	buf_free(&dir);
	buf_free(&path);
}

static void
test_resolve(void)
{
	struct credentials stored = {.server = "http://a:1", .token = "st"};
	struct token_choice out;
	struct token_sources in;
#define RESOLVE(...)                                                           \
	(in = (struct token_sources){__VA_ARGS__},                             \
	 token_resolve(&in, &out, err, sizeof err))

	is_int(RESOLVE(.option = "opt", .env = "env", .stored = &stored), 0,
	       "-j, the variable and a stored token");
	is_str(out.token, "opt", "-j first");
	is_str(out.server, SERVER_DEFAULT,
	       "a token given for the run goes to -s or the default, not the "
	       "stored server");
	ok(!out.stored, "not the stored token");
	is_int(RESOLVE(.env = "env", .stored = &stored, .server = "http://b:2"),
	       0, "the variable and a stored token for another server");
	is_str(out.token, "env", "the variable before the file");
	is_str(out.server, "http://b:2", "to the server given");

	is_int(RESOLVE(.stored = &stored), 0, "only a stored token");
	is_str(out.token, "st", "the stored token");
	is_str(out.server, "http://a:1", "to its own server");
	ok(out.stored, "marked stored");
	is_int(RESOLVE(.stored = &stored, .server = "http://a:1"), 0,
	       "a stored token and its own server given");
	is_str(out.server, "http://a:1", "used");

	is_int(RESOLVE(.stored = &stored, .server = "http://evil:1",
		       .path = "/c/credentials"),
	       -1, "a stored token and another server: refused");
	ok(strstr(err, "grasshopper login --server http://evil:1") &&
	       strstr(err, "-j") && strstr(err, "http://a:1"),
	   "says to log in there or pass a token (%s)", err);
	ok(!strstr(err, "st,") && !strstr(err, " st "), "without the token");
	is_int(RESOLVE(.stored = &stored, .server = "https://a:1"), -1,
	       "https instead of http is another server");

	is_int(RESOLVE(.server = "http://a:1"), -1, "no token at all: refused");
	ok(strstr(err, "no token") && strstr(err, "grasshopper login") &&
	       strstr(err, "GRASSHOPPER_JWT"),
	   "says how to give one (%s)", err);
#undef RESOLVE
}

int
main(void)
{
	char tmp[] = "/tmp/gh-cred-t-XXXXXX";
	if (!mkdtemp(tmp))
		return 1;
	test_paths();
	test_format_parse();
	test_parse_bad();
	test_files(tmp);
	test_resolve();
	struct buf cmd = {0};
	buf_printf(&cmd, "rm -rf '%s'", tmp);
	if (system(cmd.p) != 0)
		printf("# could not remove %s\n", tmp);
	buf_free(&cmd);
	return done_testing();
}
