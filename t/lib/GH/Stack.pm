package GH::Stack;

# A private grasshopper stack for end-to-end tests and script/server:
# a PostgreSQL 15 cluster, the tracker's FastCGI pool and nginx, all in one
# directory, all on loopback.  Core Perl only.  As in production, init-db
# runs as the schema's owner and `serve` as the role grasshopper_service,
# which may read and write the tables but not change them: every
# end-to-end file proves those grants are enough.
#
#   my $s = GH::Stack->new->start;
#   my $alice = $s->user;                       # registered and logged in
#   my $r = $alice->api(POST => 'test', {name => 'x'});
#   is $r->{status}, 201;
#   ...
#   $s->stop;                                   # teardown + log checks (TAP)
#   done_testing;
#
# Teardown also happens in END/DESTROY when a test dies; the directory is
# removed on success and kept (and its logs shown) on failure.
#
# Test files call only public names (no leading underscore).  Exported on
# request: GH::Assert's is_error, is_json_ok, is_num, is_bool, fresh, and
# GH::Util's slurp, alive, free_port, ts, parse_ts, now_us, json_encode,
# json_decode (described in their modules' headers).

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path getcwd);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util qw(refaddr);
use Time::HiRes qw(sleep time);
use Test::More ();

use GH::Assert qw(is_error is_json_ok is_num is_bool fresh);
use GH::Util qw(slurp append_file json_encode json_decode ts parse_ts now_us
    alive free_port random_hex random_base64 spawn run_logged as_root);

use parent qw(GH::Postgres GH::API);

our @EXPORT_OK = qw(is_error is_json_ok is_num is_bool fresh
    ts parse_ts now_us json_encode json_decode slurp alive free_port);

my %LIVE;             # refaddr => stack not yet stopped, for END

$SIG{PIPE} = 'IGNORE';

# The repository root, from this file's location (t/lib/GH/Stack.pm).
sub _repo_root { abs_path(dirname(__FILE__) . '/../../..') }

# ---------------------------------------------------------------------------
# Construction

# new(%opts): dir (persistent when given), port, workers, auth_rate,
# auth_burst, token_ttl, env (extra tracker environment), secret_file (pass
# the secret as TRACKER_JWT_SECRET_FILE), wrapper (a command prefixed to
# every run of the tracker binary; default $GH_TRACKER_WRAPPER, else
# memcheck() when $GH_VALGRIND is set), quiet.
sub new {
	my ($class, %o) = @_;
	my $root = _repo_root();
	my $self = bless {
		srcdir => $ENV{GH_SRCDIR} || $root,
		builddir => $ENV{GH_BUILDDIR} || $root,
		workers => $o{workers} // 2,
		auth_rate => $o{auth_rate} // '1000r/s',
		auth_burst => $o{auth_burst} // 1000,
		host => $o{host} // '127.0.0.1',
		port => $o{port},
		env => $o{env} || {},
		secret_file => $o{secret_file},
		persistent => defined $o{dir},
		quiet => $o{quiet},
		owner => $$,
		wrapper => exists $o{wrapper} ? $o{wrapper} : default_wrapper(),
	}, $class;
	$self->{env}{TRACKER_TOKEN_TTL} = $o{token_ttl} if defined $o{token_ttl};
	$self->{slow} = $self->{wrapper} ? 4 : 1;
	if ($self->{persistent}) {
		make_path($o{dir});
		$self->{dir} = abs_path($o{dir});
	} else {
		my $base = $ENV{GH_TMPDIR} || '/tmp';
		$self->{dir} = tempdir('gh-e2e-XXXXXX', DIR => $base, CLEANUP => 0);
	}
	# PostgreSQL may run as nobody: it must be able to reach its directory.
	chmod 0755, $self->{dir};
	$self->{pgdir} = "$self->{dir}/pg";
	$self->{pgdata} = "$self->{pgdir}/data";
	$self->{sock} = "$self->{dir}/tracker.sock";
	$self->{dbname} = 'grasshopper';
	$self->reconnect;
	# A strong reference: when a test dies, Perl frees the file's lexicals
	# before END runs, and DESTROY could not tell a death from a success.
	$LIVE{refaddr $self} = $self;
	return $self;
}

# memcheck: a valgrind wrapper for the tracker when valgrind is installed,
# the tracker is not built with AddressSanitizer or ThreadSanitizer (they
# and valgrind exclude each other) and GH_NO_VALGRIND is unset; else undef.  valgrind stays with the
# workers across fork(2) (they never exec) and checks each process for
# leaks when it exits, the workers' _exit(2) included.  Every error and
# every definitely lost block is framed by $VG_BEGIN lines in the log
# (tracker.log, setup.log, spawn-*.log), where stop() looks for them;
# t/valgrind.supp holds the few proven false positives of libraries.
our $VG_BEGIN = 'VALGRIND-ERROR-BEGIN';
sub memcheck {
	return undef if $ENV{GH_NO_VALGRIND};
	my $bin = ($ENV{GH_BUILDDIR} || _repo_root()) . '/grasshopper-tracker';
	my $image = slurp($bin) // return undef;
	return undef if index($image, '__asan_init') >= 0 || index($image, '__tsan_init') >= 0;
	my ($vg) = grep { -x "$_/valgrind" } split /:/, $ENV{PATH} // '';
	return undef unless $vg;
	my $supp = ($ENV{GH_SRCDIR} || _repo_root()) . '/t/valgrind.supp';
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

# slow: how many times slower than native the tracker may be (valgrind:
# 20-50 times): tests multiply their waits for the tracker by it.
sub slow { $_[0]{slow} }
sub wrapper { $_[0]{wrapper} }    # what the tracker runs under (valgrind...), or undef

sub dir { $_[0]{dir} }
sub srcdir { $_[0]{srcdir} }
sub secret { $_[0]{secret} }
sub host { $_[0]{host} }
sub port { $_[0]{port} }
sub url { "http://$_[0]{host}:$_[0]{port}" }
# tracker_bin($path): the tracker binary the stack runs (the build's by
# default); with $path, the one the next start_tracker runs (make bench
# compares builds on one stack).
sub tracker_bin {
	my $self = shift;
	$self->{tracker_bin} = shift if @_;
	return $self->{tracker_bin} // "$self->{builddir}/grasshopper-tracker";
}

# start: PostgreSQL, schema, tracker, nginx; returns $self once the health
# check answers 200 through nginx.
sub start {
	my $self = shift;
	$self->{started} = 1;
	unless ($self->{persistent}) {
		$SIG{INT} = sub { exit 130 } if ($SIG{INT} // 'DEFAULT') eq 'DEFAULT';
		$SIG{TERM} = sub { exit 143 } if ($SIG{TERM} // 'DEFAULT') eq 'DEFAULT';
	}
	-x $self->tracker_bin or croak "no tracker binary at " . $self->tracker_bin
		. " (build first; GH_BUILDDIR=$self->{builddir})";
	Test::More->builder->note("the tracker runs under: $self->{wrapper}")
		if $self->{wrapper};
	$self->_init_secret;
	$self->_init_postgres;
	$self->start_postgres;
	$self->_create_database;
	$self->init_db == 0 or $self->_fail_start('grasshopper-tracker init-db failed');
	$self->start_tracker;
	$self->_start_nginx;
	$self->wait_healthy or $self->_fail_start('health check did not answer 200');
	return $self;
}

sub _fail_start {
	my ($self, $why) = @_;
	$self->{failed} = 1;
	croak "$why (stack in $self->{dir})";
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

# ---------------------------------------------------------------------------
# Processes

# _spawn($log, \%env, @cmd), _run(\%env, @cmd): GH::Util's spawn and
# run_logged in the stack's directory, _run logging to setup.log.
sub _spawn {
	my ($self, @rest) = @_;
	return spawn($self->{dir}, @rest);
}

sub _run {
	my ($self, @rest) = @_;
	return run_logged($self->{dir}, "$self->{dir}/setup.log", @rest);
}

# reload_nginx: SIGHUP to nginx's master (the one nginx.pid names, which
# must be ours); true when sent. nginx rereads nginx.conf, starts new
# workers and lets the old ones finish their connections.
sub reload_nginx {
	my $self = shift;
	my $master = slurp("$self->{dir}/nginx.pid") // '';
	$master =~ s/\s+//g;
	return $master =~ /^\d+$/ && $self->{nginx_pid} && $master == $self->{nginx_pid}
		&& kill 'HUP', $master;
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
	my $deadline = time + 30 * $self->{slow};
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
		// $self->{workers}, 10 * $self->{slow});
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
	my $deadline = time + ($timeout // 30) * $self->{slow};
	while (1) {
		my $r = waitpid $pid, WNOHANG;
		if ($r == $pid || $r == -1) {
			$self->{tracker_status} = $r == $pid ? $? : -1;
			delete $self->{tracker_pid};
			return $self->{tracker_status};
		}
		return undef if time > $deadline;
		sleep 0.02;
	}
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
	my $deadline = time + 5 * $self->{slow};
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
	my $deadline = time + ($timeout // 10);
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
	my $deadline = time + $timeout * $self->{slow};
	while (grep { alive($_) } @pids) {
		return 0 if time > $deadline;
		sleep 0.01;
	}
	return 1;
}

# ---------------------------------------------------------------------------
# nginx

sub _write_nginx_conf {
	my $self = shift;
	my $tpl = slurp("$self->{srcdir}/nginx/grasshopper.conf.in")
		// croak "no nginx template in $self->{srcdir}/nginx";
	my %v = (
		PREFIX => $self->{dir},
		LISTEN => "$self->{host}:$self->{port}",
		HTML => "$self->{srcdir}/html",
		FASTCGI => "unix:$self->{sock}",
		USER => as_root() ? 'user root;' : '',
		AUTH_RATE => $self->{auth_rate},
		AUTH_BURST => $self->{auth_burst},
		ERRORS => "$self->{srcdir}/nginx/errors.conf",
	);
	$tpl =~ s/%%(\w+)%%/exists $v{$1} ? $v{$1} : croak "unknown placeholder %%$1%%"/ge;
	open my $fh, '>', "$self->{dir}/nginx.conf" or croak "nginx.conf: $!";
	print $fh $tpl;
	close $fh;
}

sub _start_nginx {
	my $self = shift;
	my $fixed = defined $self->{port};
	for my $try (1 .. 5) {
		$self->{port} = free_port() unless $fixed;
		$self->_write_nginx_conf;
		unlink "$self->{dir}/nginx.pid";
		my $log = "$self->{dir}/error.log";
		my $pid = $self->_spawn("$self->{dir}/nginx.out", {},
			'nginx', '-p', $self->{dir}, '-c', "$self->{dir}/nginx.conf",
			'-e', $log);
		my $deadline = time + 10;
		while (time < $deadline) {
			if (waitpid($pid, WNOHANG) > 0) {
				$pid = undef;
				last;
			}
			if (-s "$self->{dir}/nginx.pid" && IO::Socket::INET->new(
			    PeerAddr => $self->{host}, PeerPort => $self->{port},
			    Proto => 'tcp')) {
				$self->{nginx_pid} = $pid;
				return 1;
			}
			sleep 0.02;
		}
		kill 'KILL', -$pid if $pid;
		waitpid $pid, 0 if $pid;
		# Lost a race for the port: forget the [emerg] and try another.
		my $err = slurp($log) // '';
		last if $fixed || $err !~ /bind\(\) to .* failed/;
		rename $log, "$log.try$try";
	}
	$self->_fail_start('nginx did not start');
}

sub _stop_nginx {
	my $self = shift;
	my $pid = delete $self->{nginx_pid} or return;
	kill 'QUIT', $pid;
	my $deadline = time + 10;
	while (waitpid($pid, WNOHANG) == 0) {
		if (time > $deadline) {
			kill 'KILL', -$pid;
			waitpid $pid, 0;
			last;
		}
		sleep 0.02;
	}
}

# wait_healthy($timeout): poll /api/v1/health until 200.
sub wait_healthy {
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // 30) * $self->{slow};
	while (time < $deadline) {
		my $r = $self->api(GET => '/api/v1/health');
		return 1 if $r->{status} == 200;
		if ($self->{tracker_pid} && waitpid($self->{tracker_pid}, WNOHANG) > 0) {
			$self->{tracker_status} = $?;
			delete $self->{tracker_pid};
			return 0;
		}
		sleep 0.05;
	}
	return 0;
}

# ---------------------------------------------------------------------------
# Teardown

sub _tail {
	my ($file, $n) = @_;
	my $text = slurp($file) // return "($file: missing)";
	my @l = split /\n/, $text;
	@l = @l[-$n .. -1] if @l > $n;
	return join "\n", "--- $file (last lines) ---", @l;
}

# log_problems: [alert]/[emerg] lines of nginx, and the sanitizer or
# valgrind reports of every run of the tracker (serve in tracker.log,
# init-db in setup.log, spawn_tracker's spawn-*.log), as two lists.
sub log_problems {
	my $self = shift;
	my $elog = slurp("$self->{dir}/error.log") // '';
	my @ng = grep /\[(?:alert|emerg)\]/, split /\n/, $elog;
	my @san;
	for my $f ('tracker.log', 'setup.log', map { s{.*/}{}r } sort glob "$self->{dir}/spawn-*.log") {
		my $text = slurp("$self->{dir}/$f") // next;
		push @san, map { "$f: $_" } _reports($text);
	}
	return (\@ng, \@san);
}

# _reports($log): the lines of ASan/UBSan/LSan reports, and each valgrind
# error whole (every process writes its own, lines prefixed ==PID==, and
# workers share the log: they may interleave).  valgrind --quiet prints
# no summaries, so its errors and leaks are found by their markers; the
# patterns after them catch a wrapper without --error-markers.
sub _reports {
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

# stop(%o): stop nginx (QUIT), the tracker (TERM) and PostgreSQL (fast).
# Called explicitly, it reports as TAP tests that the tracker exited with
# status 0, that no worker outlived it, and that the logs are clean.  The
# directory is removed unless a test failed (then its path and the tails of
# the logs are shown).  Idempotent.
sub stop {
	my ($self, %o) = @_;
	return if $self->{stopped} || $$ != $self->{owner};
	$self->{stopped} = 1;
	delete $LIVE{refaddr $self};
	my $checks = !$o{implicit};
	my $tb = Test::More->builder;

	$self->_stop_nginx;
	my $st = $self->{tracker_pid} ? $self->stop_tracker : undef;
	$self->stop_postgres if $self->{pg_running};

	my ($ng, $san) = $self->log_problems;
	if ($checks && $self->{started}) {
		if (defined $st) {
			$tb->is_eq($st, 0, 'teardown: tracker exited with status 0 on SIGTERM');
			$tb->ok(!$self->{orphans}, 'teardown: no worker outlived the master')
				or $tb->diag("orphans: @{ $self->{orphans} }");
		}
		$tb->ok(!@$ng, 'teardown: no [alert]/[emerg] in nginx error.log')
			or $tb->diag(join "\n", @$ng);
		$tb->ok(!@$san, "teardown: no sanitizer or valgrind report in the tracker's logs")
			or $tb->diag(join "\n", @$san[0 .. ($#$san < 80 ? $#$san : 80)]);
	} elsif (@$ng || @$san) {
		$self->{failed} = 1;
		$tb->diag(join "\n", 'log problems:', @$ng, @$san);
	}

	my $failed = $self->{failed} || $o{failed} || !$tb->is_passing;
	if ($self->{persistent}) {
		return;
	}
	if ($failed || $ENV{GH_KEEP}) {
		$tb->diag("stack kept in $self->{dir}");
		if ($failed) {
			$tb->diag(_tail("$self->{dir}/$_", 25))
				for 'setup.log', 'tracker.log', 'error.log';
			$tb->diag(_tail($self->pg_log, 10));
		}
	} else {
		remove_tree($self->{dir});
	}
}

sub DESTROY {
	my $self = shift;
	local ($?, $!, $@);
	$self->stop(implicit => 1) if $$ == ($self->{owner} // 0) && !$self->{stopped};
}

END {
	my $died = $?;
	local $?;
	for my $s (values %LIVE) {
		$s->stop(implicit => 1, failed => $died != 0);
	}
}

1;
