/*
 * The command: started with fork/execvp (never a shell), its signals
 * arranged as time(1) arranges them, its end turned into an exit status.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

int
signals_setup(struct sigsave *save, bool with_command)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (with_command)
		sigaddset(&set, SIGCHLD);
	else
		sigaddset(&set, SIGINT);

	/* Block first, so nothing is lost between here and the signalfd. */
	if (sigprocmask(SIG_BLOCK, &set, &save->mask) < 0)
		return -1;
	struct sigaction ign = {.sa_handler = SIG_IGN};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&ign.sa_mask);
	sigemptyset(&dfl.sa_mask);
	/* libcurl may write to a socket the tracker closed. */
	sigaction(SIGPIPE, &ign, &save->pipe);
	/* An inherited SIG_IGN would discard SIGCHLD (and reap the command
	 * before we could learn its status). */
	sigaction(SIGCHLD, &dfl, &save->chld);
	sigaction(SIGINT, NULL, &save->intr);
	sigaction(SIGQUIT, NULL, &save->quit);
	if (with_command) {
		/* Ctrl-C and Ctrl-\ are the command's to act on; we outlive
		 * it to report, as time(1) does. */
		sigaction(SIGINT, &ign, NULL);
		sigaction(SIGQUIT, &ign, NULL);
	}
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

void
signals_after_child(int sigfd, const struct sigsave *save)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signalfd(sigfd, &set, 0);
	/* A blocked signal stays pending only if it is not ignored; one we
	 * were started ignoring (a background job's) stays ignored. */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	if (save->intr.sa_handler != SIG_IGN)
		sigaction(SIGINT, &dfl, NULL);
	if (save->quit.sa_handler != SIG_IGN)
		sigaction(SIGQUIT, &dfl, NULL);
}

/* In the child: give back the signal state grasshopper was started with
 * (normally the defaults and an empty mask; under nohup, SIGHUP ignored),
 * then exec; on failure send errno up the pipe and exit 127. */
static void
child_exec(char **argv, const struct sigsave *save, int errfd)
{
	sigaction(SIGCHLD, &save->chld, NULL);
	sigaction(SIGINT, &save->intr, NULL);
	sigaction(SIGQUIT, &save->quit, NULL);
	sigaction(SIGPIPE, &save->pipe, NULL);
	sigprocmask(SIG_SETMASK, &save->mask, NULL);
	execvp(argv[0], argv);
	int e = errno;
	ssize_t w = write(errfd, &e, sizeof e);
	(void)w;
	_exit(127);
}

pid_t
child_start(char **argv, const struct sigsave *save, int *exec_errno)
{
	/* exec closes the pipe's write end: EOF means the command runs. */
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		*exec_errno = errno;
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		*exec_errno = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		child_exec(argv, save, pfd[1]);
	}
	close(pfd[1]);
	int e;
	ssize_t n;
	do
		n = read(pfd[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n != (ssize_t)sizeof e)
		return pid;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	*exec_errno = e;
	return -1;
}

/* A struct timeval as seconds. */
static double
timeval_seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

pid_t
child_reap(pid_t pid, int *wstatus, struct command_usage *use)
{
	/* wait4 rather than waitpid: the rusage of the command with every
	 * descendant it waited for added in (Linux: ru_maxrss is the
	 * largest of theirs, in KiB); a process it left running is not. */
	struct rusage ru;
	pid_t p;
	do
		p = wait4(pid, wstatus, WNOHANG, &ru);
	while (p < 0 && errno == EINTR);
	if (p == pid)
		*use = (struct command_usage){
		    .known = true,
		    .user_cpu = timeval_seconds(ru.ru_utime),
		    .system_cpu = timeval_seconds(ru.ru_stime),
		    .max_rss_kib = ru.ru_maxrss,
		};
	return p;
}

int
child_exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 1;
}

int
exec_error_status(int err)
{
	/* As the shells do: 127 for "not found", 126 for "found, can't". */
	return err == ENOENT ? 127 : 126;
}
