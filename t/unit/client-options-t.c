/*
 * The client's command line and environment (SPEC section 4): defaults,
 * ranges, and a one-line usage error for every bad option.
 */
#include "client.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct options o;
static char err[256];

/* Parse a NULL-terminated list of arguments (argv[0] added). */
#define PARSE(...) parse_args((char *[]){"grasshopper", __VA_ARGS__, NULL})

/* The last parse's argv: writable copies (options_parse overwrites the
 * token in it), kept while o.command points into them. */
static char *argv[64];

static void
argv_free(void)
{
	for (int i = 0; argv[i]; i++) {
		free(argv[i]);
		argv[i] = NULL;
	}
}

static enum options_result
parse_args(char **args)
{
	int argc;
	options_free(&o);
	argv_free();
	for (argc = 0; args[argc] && argc < 63; argc++)
		argv[argc] = strdup(args[argc]);
	argv[argc] = NULL;
	return options_parse(&o, argc, argv, err, sizeof err);
}

/* A directory of our own: never the credentials of whoever runs this. */
static char config_dir[] = "/tmp/gh-options-t-XXXXXX";

/* The environment as the tests start from: no GRASSHOPPER_* and no
 * credentials file (XDG_CONFIG_HOME has none). */
static void
clean_env(void)
{
	char none[sizeof config_dir + 8];
	snprintf(none, sizeof none, "%s/none", config_dir);
	setenv("XDG_CONFIG_HOME", none, 1);
	unsetenv("GRASSHOPPER_JWT");
	unsetenv("GRASSHOPPER_SERVER");
	unsetenv("GRASSHOPPER_FLUSH_TIMEOUT");
	unsetenv("GRASSHOPPER_SPOOL_DIR");
}

static void
test_defaults(void)
{
	is_int(PARSE("-j", "tok", "--", "sleep", "1"), OPTIONS_RUN,
	       "-j TOKEN -- COMMAND runs");
	is_str(o.token, "tok", "the token");
	is_str(o.server, "http://127.0.0.1:5000", "the default server");
	ok(!o.server_given, "the server was not given");
	ok(o.interval == 0.5, "interval defaults to 0.5 s");
	ok(o.threshold == 0.5, "threshold defaults to 0.5");
	is_str(o.name, "sleep", "name defaults to the command's name");
	is_str(o.description, "1", "description to its arguments");
	ok(o.command && !strcmp(o.command[0], "sleep") &&
	       !strcmp(o.command[1], "1") && !o.command[2],
	   "the command and its arguments");
	ok(!o.quiet && !o.no_command && !o.replay, "no flags set");
	ok(o.flush_timeout == 5.0, "the flush waits 5 s by default");
	ok(o.spool_dir == NULL, "no spool directory given");

	is_int(PARSE("-j", "tok", "/usr/bin/make", "-j2", "check"), OPTIONS_RUN,
	       "a command without --");
	is_str(o.name, "make", "the name is the command's base name");
	is_str(o.description, "-j2 check", "the arguments, blank-separated");
	ok(o.command && !strcmp(o.command[1], "-j2"),
	   "the command's own options stay its own");

	is_int(PARSE("-j", "tok", "true"), OPTIONS_RUN, "a bare command");
	is_str(o.description, "", "no arguments: an empty description");

	is_int(PARSE("-j", "tok", "--no-command"), OPTIONS_RUN,
	       "--no-command runs");
	ok(o.no_command && !o.command, "monitor only");
	is_str(o.name, "monitor", "the name is 'monitor'");
	is_str(o.description, "", "the description is empty");
}

static void
test_values(void)
{
	is_int(PARSE("-j", "t", "-s", "https://gh.example.org/", "-i", "2",
		     "-n", "nightly", "-d", "the build", "-t", "80%", "-q",
		     "make"),
	       OPTIONS_RUN, "every option at once");
	is_str(o.server, "https://gh.example.org", "trailing '/' dropped");
	ok(o.server_given, "the server was given");
	ok(o.interval == 2.0, "-i 2");
	is_str(o.name, "nightly", "-n");
	is_str(o.description, "the build", "-d");
	ok(fabs(o.threshold - 0.8) < 1e-12, "-t 80%% is 0.8");
	ok(o.quiet, "-q");

	is_int(PARSE("--jwt=t", "--server=http://h:8080", "--interval=0.05",
		     "--name=n", "--description=d", "--threshold=0", "--quiet",
		     "true"),
	       OPTIONS_RUN, "the long forms with =");
	is_str(o.server, "http://h:8080", "--server");
	ok(o.interval == 0.05, "--interval at its minimum");
	ok(o.threshold == 0.0, "--threshold 0");

	double d;
	is_int(parse_interval("3600", &d), 0, "3600 s is the maximum");
	is_int(parse_interval("0.05", &d), 0, "0.05 s the minimum");
	is_int(parse_interval("0.049", &d), -1, "below the minimum");
	is_int(parse_interval("3600.5", &d), -1, "above the maximum");
	is_int(parse_interval("1s", &d), -1, "a unit is not a number");
	is_int(parse_interval("", &d), -1, "empty");
	is_int(parse_interval(" 1", &d), -1, "a leading blank");
	is_int(parse_interval("nan", &d), -1, "NaN");
	is_int(parse_interval("inf", &d), -1, "infinity");
	is_int(parse_threshold("1", &d), 0, "threshold 1");
	is_int(parse_threshold("100%", &d), 0, "threshold 100%%");
	ok(d == 1.0, "100%% is 1");
	is_int(parse_threshold("12.5%", &d), 0, "threshold 12.5%%");
	ok(fabs(d - 0.125) < 1e-12, "12.5%% is 0.125");
	is_int(parse_threshold("1.01", &d), -1, "above 1");
	is_int(parse_threshold("-0.1", &d), -1, "below 0");
	is_int(parse_threshold("101%", &d), -1, "above 100%%");
	is_int(parse_threshold("%", &d), -1, "a bare %%");
	is_int(parse_threshold("80 %", &d), -1, "a blank before %%");
	is_int(parse_threshold("half", &d), -1, "a word");
}

static void
test_env(void)
{
	setenv("GRASSHOPPER_JWT", "from-env", 1);
	setenv("GRASSHOPPER_SERVER", "http://10.0.0.1:5000//", 1);
	is_int(PARSE("true"), OPTIONS_RUN, "token and server from the env");
	is_str(o.token, "from-env", "GRASSHOPPER_JWT");
	is_str(o.server, "http://10.0.0.1:5000", "GRASSHOPPER_SERVER");
	ok(o.server_given, "an env server counts as given");
	is_int(PARSE("-j", "opt", "-s", "http://o", "true"), OPTIONS_RUN,
	       "options and env");
	is_str(o.token, "opt", "-j wins over the env");
	is_str(o.server, "http://o", "-s wins over the env");
	setenv("GRASSHOPPER_JWT", "", 1);
	is_int(PARSE("true"), OPTIONS_USAGE,
	       "an empty GRASSHOPPER_JWT is none");
	setenv("GRASSHOPPER_JWT", "from-env", 1);

	setenv("GRASSHOPPER_FLUSH_TIMEOUT", "0.5", 1);
	setenv("GRASSHOPPER_SPOOL_DIR", "/var/tmp/x", 1);
	is_int(PARSE("true"), OPTIONS_RUN, "flush timeout and spool dir");
	ok(o.flush_timeout == 0.5, "GRASSHOPPER_FLUSH_TIMEOUT");
	is_str(o.spool_dir, "/var/tmp/x", "GRASSHOPPER_SPOOL_DIR");
	setenv("GRASSHOPPER_FLUSH_TIMEOUT", "soon", 1);
	is_int(PARSE("true"), OPTIONS_USAGE, "a flush timeout not a number");
	ok(strstr(err, "GRASSHOPPER_FLUSH_TIMEOUT") != NULL,
	   "the message names the variable");
	clean_env();
}

/* Expect a usage error whose message contains want. */
#define USAGE(want, ...)                                                       \
	do {                                                                   \
		is_int(PARSE(__VA_ARGS__), OPTIONS_USAGE, "usage error: %s",   \
		       want);                                                  \
		ok(strstr(err, want) != NULL && !strchr(err, '\n'),            \
		   "one line naming '%s' (got: %s)", want, err);               \
	} while (0)

static void
test_errors(void)
{
	USAGE("GRASSHOPPER_JWT", "true");
	USAGE("GRASSHOPPER_JWT", "--no-command");
	USAGE("--interval", "-j", "t", "-i", "0.01", "true");
	USAGE("--interval", "-j", "t", "-i", "abc", "true");
	USAGE("--threshold", "-j", "t", "-t", "2", "true");
	USAGE("--threshold", "-j", "t", "-t", "90 percent", "true");
	USAGE("--server", "-j", "t", "-s", "ftp://x", "true");
	USAGE("--server", "-j", "t", "-s", "http://", "true");
	USAGE("not both", "-j", "t", "--no-command", "true");
	USAGE("no command", "-j", "t");
	USAGE("unknown option --frobnicate", "-j", "t", "--frobnicate", "true");
	USAGE("unknown option -x", "-j", "t", "-x", "true");
	USAGE("needs a value", "-j", "t", "-n");
	USAGE("needs a value", "-j");
	USAGE("--replay", "-j", "t", "--replay", "f", "true");
	USAGE("GRASSHOPPER_JWT", "--replay", "f");

	char longname[300];
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	USAGE("--name", "-j", "t", "-n", longname, "true");

	is_int(PARSE("-j", "se cret", "true"), OPTIONS_USAGE,
	       "a token with a blank is refused");
	ok(!strstr(err, "se cret") && !strstr(err, "cret"),
	   "and the message does not show it");
	is_int(PARSE("-j", "a\r\nX-Evil: 1", "true"), OPTIONS_USAGE,
	       "a token with CR LF is refused (no header injection)");

	is_int(PARSE("-h"), OPTIONS_HELP, "-h needs no token");
	is_int(PARSE("--help", "-i", "0"), OPTIONS_HELP, "--help comes first");
	is_int(PARSE("-V"), OPTIONS_VERSION, "-V");
	is_int(PARSE("--version"), OPTIONS_VERSION, "--version");
	is_int(PARSE("-j", "t", "true", "--help"), OPTIONS_RUN,
	       "--help after the command is the command's");
}

static void
test_limits(void)
{
	/* A default description longer than the tracker takes is cut on a
	 * character boundary, not refused: the command still runs. */
	static char arg[5000 * 2 + 1];
	for (int i = 0; i < 5000; i++)
		memcpy(arg + 2 * i, "\xc3\xa9", 2); /* é */
	is_int(PARSE("-j", "t", "echo", arg), OPTIONS_RUN,
	       "a huge argument still runs");
	is_int(utf8_chars(o.description, strlen(o.description)),
	       DESCRIPTION_MAX_CHARS,
	       "the description is cut to 4096 characters");
	is_int(strlen(o.description), 2 * DESCRIPTION_MAX_CHARS,
	       "on a character boundary");
}

/* Whether the n bytes at p are all zero. */
static bool
wiped(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void
test_token_hidden(void)
{
	is_int(PARSE("-j", "secret", "true"), OPTIONS_RUN, "-j TOKEN");
	is_str(o.token, "secret", "the token is taken");
	ok(wiped(argv[2], 6), "and overwritten in argv (ps shows it no more)");
	is_int(PARSE("--jwt=secret", "true"), OPTIONS_RUN, "--jwt=TOKEN");
	is_str(o.token, "secret", "the token is taken");
	ok(!strncmp(argv[1], "--jwt=", 6) && wiped(argv[1] + 6, 6),
	   "its value overwritten, the option name left");
	is_int(PARSE("-jsecret", "--jwt", "other", "true"), OPTIONS_RUN,
	       "-jTOKEN, then --jwt TOKEN");
	is_str(o.token, "other", "the last one counts");
	ok(!strcmp(argv[1], "-j") && wiped(argv[1] + 3, 6) && wiped(argv[3], 5),
	   "both overwritten");
	is_int(PARSE("-j", "t", "--", "echo", "-j", "cmdarg"), OPTIONS_RUN,
	       "the command's own -j");
	is_str(argv[6], "cmdarg", "is the command's: left alone");

	setenv("GRASSHOPPER_JWT", "from-env", 1);
	is_int(PARSE("true"), OPTIONS_RUN, "a token from the environment");
	options_scrub_env();
	ok(getenv("GRASSHOPPER_JWT") == NULL,
	   "options_scrub_env takes it out of the environment");
	is_str(o.token, "from-env", "the options keep their copy");
	clean_env();
}

static void
test_account(void)
{
	is_int(PARSE("login"), OPTIONS_LOGIN, "login needs no token");
	is_str(o.server, SERVER_DEFAULT, "the default server");
	is_int(PARSE("login", "-s", "http://h:1/"), OPTIONS_LOGIN, "login -s");
	is_str(o.server, "http://h:1", "the server, normalized");
	is_int(PARSE("login", "--server=https://h"), OPTIONS_LOGIN,
	       "login --server=URL");
	is_str(o.server, "https://h", "the server");
	setenv("GRASSHOPPER_SERVER", "http://env:2", 1);
	is_int(PARSE("login"), OPTIONS_LOGIN, "login, GRASSHOPPER_SERVER");
	is_str(o.server, "http://env:2", "its server");
	is_int(PARSE("login", "-s", "http://opt:3"), OPTIONS_LOGIN,
	       "login -s and GRASSHOPPER_SERVER");
	is_str(o.server, "http://opt:3", "-s first");
	clean_env();
	is_int(PARSE("logout"), OPTIONS_LOGOUT, "logout");
	is_int(PARSE("login", "-h"), OPTIONS_HELP, "login -h");

	USAGE("--server", "login", "-s", "ftp://h");
	USAGE("needs a value", "login", "-s");
	USAGE("takes only --server", "login", "-j", "t");
	USAGE("takes no arguments", "login", "tok");
	USAGE("takes no options", "logout", "-s", "http://h");
	USAGE("takes no arguments", "logout", "now");
	USAGE("put -- before it", "-s", "http://h", "login");
	USAGE("put -- before it", "-j", "t", "logout");
	is_int(PARSE("-j", "t", "--", "login", "x"), OPTIONS_RUN,
	       "after --, login is a command to run");
	is_str(o.command[0], "login", "the command");
}

/* Write the credentials file of the directory dir with mode. */
static void
stored_write(const char *dir, const char *text, mode_t mode)
{
	char path[512];
	snprintf(path, sizeof path, "%s/grasshopper", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/grasshopper/credentials", dir);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(path, mode);
}

static void
test_stored(const char *dir)
{
	setenv("XDG_CONFIG_HOME", dir, 1);
	stored_write(dir, "server http://a:1\ntoken stored\n", 0600);
	is_int(PARSE("true"), OPTIONS_RUN, "a stored token");
	is_str(o.token, "stored", "used when neither -j nor the variable");
	is_str(o.server, "http://a:1", "with its own server");
	ok(o.token_stored && !o.server_given, "marked stored");
	is_int(PARSE("--replay", "f"), OPTIONS_RUN, "--replay uses it too");
	is_str(o.server, "http://a:1", "with its server");
	is_int(PARSE("-s", "http://a:1/", "true"), OPTIONS_RUN,
	       "-s naming its server");
	is_str(o.token, "stored", "the stored token");
	USAGE("grasshopper login --server http://b:2", "-s", "http://b:2",
	      "true");
	setenv("GRASSHOPPER_SERVER", "http://b:2", 1);
	USAGE("grasshopper login --server http://b:2", "true");
	USAGE("grasshopper login --server http://b:2", "--replay", "f");
	is_int(PARSE("-j", "given", "true"), OPTIONS_RUN,
	       "-j with another server");
	is_str(o.token, "given", "the given token");
	is_str(o.server, "http://b:2", "to the given server");
	clean_env();
	setenv("XDG_CONFIG_HOME", dir, 1);

	stored_write(dir, "server http://a:1\ntoken stored\n", 0644);
	USAGE("others can open it", "true");
	ok(strstr(err, "/grasshopper/credentials") != NULL,
	   "the message names the file");
	is_int(PARSE("-j", "t", "true"), OPTIONS_RUN,
	       "a token given: the file is not read at all");
	stored_write(dir, "server http://a:1\n", 0600);
	USAGE("no token line", "true");
}

int
main(void)
{
	if (!mkdtemp(config_dir))
		return 1;
	clean_env();
	test_defaults();
	test_values();
	test_env();
	test_errors();
	test_limits();
	test_token_hidden();
	test_account();
	test_stored(config_dir);
	options_free(&o);
	argv_free();
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", config_dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", config_dir);
	return done_testing();
}
