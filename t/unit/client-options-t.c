/*
 * The client's command line and environment (SPEC section 4): defaults,
 * ranges, and a one-line usage error for every bad option.
 */
#include "grasshopper.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct options o;
static char err[256];

/* Parse a NULL-terminated list of arguments (argv[0] added). */
#define PARSE(...) parse_args((char *[]){"grasshopper", __VA_ARGS__, NULL})

static enum options_result
parse_args(char **args)
{
	/* o.command points into argv: keep it past the caller's literal. */
	static char *argv[64];
	int argc;
	for (argc = 0; args[argc] && argc < 63; argc++)
		argv[argc] = args[argc];
	argv[argc] = NULL;
	options_free(&o);
	return options_parse(&o, argc, argv, err, sizeof err);
}

static void
clean_env(void)
{
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

int
main(void)
{
	clean_env();
	test_defaults();
	test_values();
	test_env();
	test_errors();
	test_limits();
	options_free(&o);
	return done_testing();
}
