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
# The stack is one object made of parts, each in its own module with its
# methods listed in its header: GH::Postgres (the cluster, psql),
# GH::Tracker (init-db, the pool, its workers), GH::Nginx (the front,
# url) and GH::API (api, raw, user, as, jwt).  This file builds the
# object (new), starts and stops the whole (start, stop, wait_healthy),
# reads the logs at teardown (log_problems) and knows dir, srcdir, slow
# and scale.
#
# Test files call only public names (no leading underscore).  Exported on
# request: GH::Assert's is_error, is_json_ok, is_num, is_bool, fresh, and
# GH::Util's slurp, alive, free_port, wait_until, wait_exit, ts, parse_ts,
# now_us, json_encode, json_decode (described in their modules' headers).
#
# Timing: every duration a test waits for or limits by goes through
# $s->scale($seconds) (GH::Util's scale; wait_until and wait_exit use it):
# the seconds a native run needs, times $GH_SLOW, times 4 when the tracker
# runs under a wrapper such as valgrind ($s->slow is the factor).  Methods
# that take a timeout (wait_tracker, stop_tracker, wait_workers, wait_gone,
# wait_healthy) take native seconds and scale them themselves.  Not
# scaled: what the client alone promises (its sampling schedule, the
# durations it measures, the bound of a flush timeout it is given) and
# lower bounds.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Exporter qw(import);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Scalar::Util qw(refaddr);
use Time::HiRes qw(sleep time);
use Test::More ();

use GH::Assert qw(is_error is_json_ok is_num is_bool fresh);
use GH::Util qw(slurp json_encode json_decode ts parse_ts now_us alive free_port
    spawn run_logged repo_root wait_until wait_exit);

use GH::Tracker qw(memcheck default_wrapper);
use parent qw(GH::Postgres GH::Tracker GH::Nginx GH::API);

our @EXPORT_OK = qw(is_error is_json_ok is_num is_bool fresh
    ts parse_ts now_us json_encode json_decode slurp alive free_port
    wait_until wait_exit);

my %LIVE;             # refaddr => stack not yet stopped, for END

$SIG{PIPE} = 'IGNORE';

# ---------------------------------------------------------------------------
# Construction

# new(%opts): dir (persistent when given), port, workers, auth_rate,
# auth_burst, token_ttl, env (extra tracker environment), secret_file (pass
# the secret as TRACKER_JWT_SECRET_FILE), wrapper (a command prefixed to
# every run of the tracker binary; default $GH_TRACKER_WRAPPER, else
# memcheck() when $GH_VALGRIND is set), quiet.
sub new {
	my ($class, %o) = @_;
	my $root = repo_root();
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
	# valgrind: 20-50 times slower than native; waits 4 times as long do.
	GH::Util::set_slow(4) if $self->{wrapper};
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

# slow: the factor scale() multiplies by; scale($seconds): a duration to
# wait for or to allow, scaled for slow runs (see GH::Util's header).
sub slow { GH::Util::slow() }
sub scale { GH::Util::scale($_[1]) }

sub dir { $_[0]{dir} }
sub srcdir { $_[0]{srcdir} }

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
	$self->start_nginx;
	$self->wait_healthy or $self->_fail_start('health check did not answer 200');
	return $self;
}

sub _fail_start {
	my ($self, $why) = @_;
	$self->{failed} = 1;
	croak "$why (stack in $self->{dir})";
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

# wait_healthy($timeout): poll /api/v1/health until 200.
sub wait_healthy {
	my ($self, $timeout) = @_;
	my $deadline = time + $self->scale($timeout // 30);
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
	my @ng = $self->nginx_problems;
	my @san;
	for my $f ('tracker.log', 'setup.log', map { s{.*/}{}r } sort glob "$self->{dir}/spawn-*.log") {
		my $text = slurp("$self->{dir}/$f") // next;
		push @san, map { "$f: $_" } GH::Tracker::sanitizer_reports($text);
	}
	return (\@ng, \@san);
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

	$self->stop_nginx;
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
