package GH::Tracker;

# The tracker part of GH::Stack (sharing its object): its JWT secret,
# `init-db`, the `serve` pool (master and workers) on the stack's unix
# socket, and what runs it (a wrapper such as valgrind).  Core Perl only.
# Its keys: workers, env, secret_file, sock, wrapper (set by
# GH::Stack::new), secret, secret_path, tracker_bin, tracker_pid,
# tracker_status, orphans.  It uses the stack's dir, srcdir, builddir,
# persistent, service_database_url, database_url, service_role, scale,
# _run, _spawn and _fail_start.
#
#   $s->start_tracker(%env), $s->stop_tracker, $s->restart_tracker(%env)
#   $s->init_db(%env), $s->spawn_tracker(\%env, @args)
#   $s->tracker_pid, $s->tracker_status, $s->signal_tracker($sig),
#   $s->wait_tracker($timeout)
#   $s->worker_pids, $s->wait_workers($n, $timeout), $s->kill_worker($sig),
#   $s->wait_gone($timeout, @pids)
#   $s->secret, $s->wrapper, $s->tracker_bin($path), $s->tracker_sanitized
#   memcheck(), default_wrapper()      functions (GH::Stack::memcheck too)
#   sanitizer_reports($log_text)       the sanitizer/valgrind report lines

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);
use GH::Util qw(slurp alive random_base64 repo_root wait_exit);

our @EXPORT_OK = qw(memcheck default_wrapper sanitizer_reports);

# memcheck: a valgrind wrapper for the tracker when valgrind is installed,
# the tracker is not built with AddressSanitizer or ThreadSanitizer (they
# and valgrind exclude each other) and GH_NO_VALGRIND is unset; else undef.  valgrind stays with the
# workers across fork(2) (they never exec) and checks each process for
# leaks when it exits, the workers' _exit(2) included.  Every error and
# every definitely lost block is framed by $VG_BEGIN lines in the log
# (tracker.log, setup.log, spawn-*.log), where stop() looks for them;
# t/valgrind.supp holds the few proven false positives of libraries.
# sanitized($binary): built with AddressSanitizer or ThreadSanitizer (which
# exclude valgrind and make RSS meaningless).
sub sanitized {
	my $image = slurp(shift) // return 0;
	return index($image, '__asan_init') >= 0 || index($image, '__tsan_init') >= 0;
}

# tracker_sanitized: the stack's tracker binary is sanitized().
sub tracker_sanitized { sanitized($_[0]->tracker_bin) }

our $VG_BEGIN = 'VALGRIND-ERROR-BEGIN';
sub memcheck {
	return undef if $ENV{GH_NO_VALGRIND};
	my $bin = ($ENV{GH_BUILDDIR} || repo_root()) . '/grasshopper-tracker';
	return undef if !-e $bin || sanitized($bin);
	my ($vg) = grep { -x "$_/valgrind" } split /:/, $ENV{PATH} // '';
	return undef unless $vg;
	my $supp = ($ENV{GH_SRCDIR} || repo_root()) . '/t/valgrind.supp';
	# --vgdb=no: no gdbserver FIFOs in /tmp, which SIGKILLed workers
	# would leave behind.
	return "$vg/valgrind --quiet --error-exitcode=99 --leak-check=full "
		. '--errors-for-leak-kinds=definite --show-leak-kinds=definite '
		. "--error-markers=$VG_BEGIN,VALGRIND-ERROR-END --num-callers=30 "
		. "--vgdb=no --suppressions=$supp";
}

# default_wrapper: what new() wraps the tracker in unless told: the command
# in $GH_TRACKER_WRAPPER, else memcheck() when $GH_VALGRIND is set (make
# check-valgrind), else nothing.
sub default_wrapper {
	return $ENV{GH_TRACKER_WRAPPER} if defined $ENV{GH_TRACKER_WRAPPER};
	return undef unless ($ENV{GH_VALGRIND} // '') !~ /^(|0|no|false)$/i;
	my $vg = memcheck();
	Test::More->builder->diag('GH_VALGRIND is set, but the tracker runs without '
		. 'valgrind (no valgrind in PATH, a sanitizer build, or GH_NO_VALGRIND)')
		unless $vg;
	return $vg;
}

sub wrapper { $_[0]{wrapper} }    # what the tracker runs under (valgrind...), or undef

sub secret { $_[0]{secret} }

# tracker_bin($path): the tracker binary the stack runs (the build's by
# default); with $path, the one the next start_tracker runs (make bench
# compares builds on one stack).
sub tracker_bin {
	my $self = shift;
	$self->{tracker_bin} = shift if @_;
	return $self->{tracker_bin} // "$self->{builddir}/grasshopper-tracker";
}

sub _init_secret {
	my $self = shift;
	my $file = "$self->{dir}/jwt-secret";
	my $kept = $self->{persistent} && -s $file ? slurp($file) : '';
	$kept =~ s/\n\z//;
	# One an older script/server made in hex may have too few distinct
	# bytes for the tracker now: then it is made again.
	my %distinct = map { $_ => 1 } split //, $kept;
	if (keys %distinct >= 16) {
		$self->{secret} = $kept;
	} else {
		# base64, not hex: the tracker wants 16 distinct bytes, which
		# random hex (16 symbols) would miss now and then.
		$self->{secret} = random_base64(48);
		if ($self->{persistent} || $self->{secret_file}) {
			my $old = umask 0077;
			open my $fh, '>', $file or croak "$file: $!";
			print $fh "$self->{secret}\n";
			close $fh;
			umask $old;
			chmod 0600, $file;
		}
	}
	$self->{secret_path} = $file if $self->{persistent} || $self->{secret_file};
}

sub _tracker_env {
	my ($self, %extra) = @_;
	my %env = (
		TRACKER_DATABASE_URL => $self->service_database_url,
		TRACKER_LISTEN => $self->{sock},
		TRACKER_WORKERS => $self->{workers},
		TRACKER_SCHEMA_DIR => "$self->{srcdir}/schema",
	);
	if ($self->{secret_path}) {
		$env{TRACKER_JWT_SECRET_FILE} = $self->{secret_path};
	} else {
		$env{TRACKER_JWT_SECRET} = $self->{secret};
	}
	%env = (%env, %{ $self->{env} }, %extra);
	delete $env{$_} for grep { !defined $env{$_} } keys %env;
	return \%env;
}

# _tracker_cmd(@args): the tracker binary with @args, in the wrapper if any.
sub _tracker_cmd {
	my ($self, @args) = @_;
	my @cmd = ($self->tracker_bin, @args);
	unshift @cmd, split ' ', $self->{wrapper} if $self->{wrapper};
	return @cmd;
}

# init_db(%env): run `grasshopper-tracker init-db` as the owner, granting
# the service role (extra environment as for start_tracker); returns its
# exit status.
sub init_db {
	my ($self, %extra) = @_;
	my $env = $self->_tracker_env(TRACKER_DATABASE_URL => $self->database_url,
		TRACKER_DB_SERVICE_ROLE => $self->service_role, %extra);
	return $self->_run($env, $self->_tracker_cmd('init-db'));
}

# start_tracker(%env): start `serve`, wait for its socket; extra environment
# (undef deletes a variable) applies to this start only.
sub start_tracker {
	my ($self, %extra) = @_;
	croak "tracker already running" if $self->{tracker_pid};
	unlink $self->{sock};
	my @cmd = $self->_tracker_cmd('serve');
	$self->{tracker_pid} = $self->_spawn("$self->{dir}/tracker.log",
		$self->_tracker_env(%extra), @cmd);
	$self->{tracker_status} = undef;
	my $deadline = time + $self->scale(30);
	until (-S $self->{sock}) {
		if (waitpid($self->{tracker_pid}, WNOHANG) > 0) {
			$self->{tracker_status} = $?;
			delete $self->{tracker_pid};
			$self->_fail_start("tracker exited at start (status $?)");
		}
		$self->_fail_start('tracker socket did not appear') if time > $deadline;
		sleep 0.02;
	}
	# The pool is ready when every worker has been forked.
	$self->wait_workers($extra{TRACKER_WORKERS} // $self->{env}{TRACKER_WORKERS}
		// $self->{workers}, 10);
	return $self->{tracker_pid};
}

# spawn_tracker(\%env, @args): run the tracker binary with the stack's
# environment changed by %env (undef deletes a variable), outside the
# stack's bookkeeping; → ($pid, $logfile).  The caller reaps it.
my $spawn_seq = 0;
sub spawn_tracker {
	my ($self, $extra, @args) = @_;
	my $log = sprintf '%s/spawn-%d.log', $self->{dir}, ++$spawn_seq;
	my $pid = $self->_spawn($log, $self->_tracker_env(%$extra), $self->_tracker_cmd(@args));
	return ($pid, $log);
}

sub tracker_pid { $_[0]{tracker_pid} }

# tracker_status: the wait status of the last tracker that exited.
sub tracker_status { $_[0]{tracker_status} }

# signal_tracker($sig): send a signal to the master.
sub signal_tracker {
	my ($self, $sig) = @_;
	return kill $sig, $self->{tracker_pid} if $self->{tracker_pid};
	return 0;
}

# wait_tracker($timeout): wait for the master to exit; returns its wait
# status, or undef if it is still running after $timeout seconds.
sub wait_tracker {
	my ($self, $timeout) = @_;
	my $pid = $self->{tracker_pid} or return $self->{tracker_status};
	my $st = wait_exit($pid, $timeout // 30) // return undef;
	delete $self->{tracker_pid};
	return $self->{tracker_status} = $st;
}

# stop_tracker: SIGTERM, wait; SIGKILL the process group if it hangs.
# Returns the exit status (as $?), -1 when it had to be killed.
sub stop_tracker {
	my ($self, $timeout) = @_;
	my $pid = $self->{tracker_pid} or return $self->{tracker_status};
	my @workers = $self->worker_pids;
	kill 'TERM', $pid;
	my $st = $self->wait_tracker($timeout // 20);
	unless (defined $st) {
		kill 'KILL', -$pid;
		waitpid $pid, 0;
		delete $self->{tracker_pid};
		$self->{tracker_status} = -1;
		$self->{tracker_hung} = 1;
		return -1;
	}
	# Workers must not outlive their master.
	my $deadline = time + $self->scale(5);
	while (my @left = grep { alive($_) } @workers) {
		if (time > $deadline) {
			$self->{orphans} = [@left];
			kill 'KILL', @left;
			last;
		}
		sleep 0.02;
	}
	return $st;
}

sub restart_tracker {
	my ($self, %extra) = @_;
	my $st = $self->stop_tracker;
	$self->start_tracker(%extra);
	return $st;
}

# _ppids: pid => ppid for every process.
sub _ppids {
	my %pp;
	opendir my $d, '/proc' or return %pp;
	for my $pid (grep /^\d+$/, readdir $d) {
		my $stat = slurp("/proc/$pid/stat") // next;
		# comm may contain spaces and parentheses: split after the last ')'
		my ($rest) = $stat =~ /\)\s+(.*)\z/s or next;
		my (undef, $ppid) = split ' ', $rest;
		$pp{$pid} = $ppid;
	}
	return %pp;
}

# worker_pids: the master's live children, sorted.
sub worker_pids {
	my $self = shift;
	my $master = $self->{tracker_pid} or return ();
	my %pp = _ppids();
	my @w = sort { $a <=> $b } grep { $pp{$_} == $master && alive($_) } keys %pp;
	return @w;
}

# wait_workers($n, $timeout): wait until the pool has $n workers; returns
# the pids (fewer than $n on timeout).
sub wait_workers {
	my ($self, $n, $timeout) = @_;
	my $deadline = time + $self->scale($timeout // 10);
	my @w;
	while (1) {
		@w = $self->worker_pids;
		return @w if @w == $n || time > $deadline;
		sleep 0.05;
	}
}

# kill_worker($sig): kill one worker (default SIGKILL) and wait until it is
# dead (so that a following wait_workers does not count it); returns its pid.
sub kill_worker {
	my ($self, $sig) = @_;
	my ($pid) = $self->worker_pids or croak "no worker to kill";
	kill $sig || 'KILL', $pid;
	$self->wait_gone(5, $pid);
	return $pid;
}

# wait_gone($timeout, @pids): wait until none of @pids is alive (a zombie
# counts as dead); returns true if they all went within $timeout seconds.
sub wait_gone {
	my ($self, $timeout, @pids) = @_;
	my $deadline = time + $self->scale($timeout);
	while (grep { alive($_) } @pids) {
		return 0 if time > $deadline;
		sleep 0.01;
	}
	return 1;
}

# sanitizer_reports($log): the lines of ASan/UBSan/LSan reports, and each valgrind
# error whole (every process writes its own, lines prefixed ==PID==, and
# workers share the log: they may interleave).  valgrind --quiet prints
# no summaries, so its errors and leaks are found by their markers; the
# patterns after them catch a wrapper without --error-markers.
sub sanitizer_reports {
	my @out;
	my %open;    # pid => lines of an unfinished valgrind error
	for my $l (split /\n/, shift) {
		if ($l =~ /^==(\d+)== \Q$VG_BEGIN\E/) {
			$open{$1} = [];
		} elsif ($l =~ /^==(\d+)== VALGRIND-ERROR-END/ && $open{$1}) {
			push @out, @{ delete $open{$1} };
		} elsif ($l =~ /^==(\d+)== / && $open{$1}) {
			push @{ $open{$1} }, $l;
		} elsif ($l =~ m{runtime\ error:|ERROR:\ AddressSanitizer|LeakSanitizer|==\d+==ERROR
		    |WARNING:\ ThreadSanitizer
		    |==\d+==\ (?:Invalid\ (?:read|write|free)|Conditional\ jump|Use\ of\ uninitialised
		    |Syscall\ param|Mismatched\ free|Source\ and\ destination\ overlap
		    |Process\ terminating\ with\ default\ action\ of\ signal\ \d+
		      \ \(SIG(?:SEGV|BUS|ILL|FPE|ABRT|SYS|TRAP)\))
		    |definitely\ lost(?::\ [1-9]|\ in\ loss\ record)|ERROR\ SUMMARY:\ [1-9]}x) {
			push @out, $l;
		}
	}
	# An error cut short (its process killed while writing it) counts too.
	push @out, @$_ for values %open;
	return @out;
}

1;
