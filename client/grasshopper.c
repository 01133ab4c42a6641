/*
 * grasshopper: run a command, sample the machine's CPU usage while it runs
 * and report it to the tracker; exit with the command's status.
 * The options are read whole before anything runs (exit 2 if they are
 * wrong); then loop.c runs the command, or replays a spool file, or
 * login.c logs in or out.
 */
#include "client.h"

#include <stdlib.h>

#include "config.h"

int
main(int argc, char **argv)
{
	struct options o;
	char err[512];
	int status;

	enum options_result what =
	    options_parse(&o, argc, argv, err, sizeof err);
	/* Whatever happens next, nothing started from here inherits it. */
	options_scrub_env();
	switch (what) {
	case OPTIONS_HELP:
		options_help(stdout);
		status = 0;
		break;
	case OPTIONS_VERSION:
		printf("grasshopper %s\n", PACKAGE_VERSION);
		status = 0;
		break;
	case OPTIONS_USAGE:
		fprintf(stderr, "grasshopper: %s\n", err);
		status = 2;
		break;
	case OPTIONS_LOGIN:
		status = login(&o);
		break;
	case OPTIONS_LOGOUT:
		status = logout(&o);
		break;
	case OPTIONS_RUN:
	default:
		status = o.replay ? replay(&o) : run(&o);
		break;
	}
	options_free(&o);
	if (fflush(stdout) != 0 && status == 0)
		status = 1; /* --help > /dev/full must not look fine */
	return status;
}
