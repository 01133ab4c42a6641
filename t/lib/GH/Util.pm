package GH::Util;

# Small helpers shared by the test harness (t/lib/GH/*.pm) and the test
# files: files, JSON, timestamps, processes, ports.  Core Perl only.
# Everything is exported on request, and GH::Stack exports the same names
# again, so `use GH::Stack qw(slurp ts)` and `use GH::Util qw(slurp ts)`
# are the same.
#
#   slurp($file)            its bytes, or undef when it cannot be read
#   append_file($file, $t)  append text (croaks on error)
#   json_encode($v), json_decode($text)   canonical UTF-8 JSON
#   ts($us), parse_ts($rfc3339), now_us   timestamps as integer
#                           microseconds since the epoch (UTC)
#   alive($pid)             the process exists and is not a zombie
#   free_port()             a loopback TCP port free right now
#   random_hex($n), random_base64($n)     $n random bytes, encoded
#   as_root()               the tests run as root
#   repo_root()             the source tree this file is in
#   spawn($dir, $log, \%env, @cmd), run_logged(...)   see below
#   wait_until($seconds, sub { ... }, $interval)   poll until true
#   wait_exit($pid, $seconds)   reap a child, → its wait status
#
# Timing: every duration a test waits for or limits by goes through
# scale($seconds) (also $stack->scale): $seconds times the process's slow
# factor, slow().  The factor is $GH_SLOW (default 1; set it on a loaded
# machine), times 4 once a stack of this process runs the tracker under a
# wrapper such as valgrind (GH::Stack sets that with set_slow).  Only the
# slack of a timing check is scaled, never the contract it checks (a
# flush timeout the client is given, a drift it promises) nor a lower
# bound.

use strict;
use warnings;

use Carp qw(croak);
use Cwd ();
use File::Basename ();
use Exporter qw(import);
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 ();
use POSIX ();
use Time::HiRes ();

our @EXPORT_OK = qw(slurp append_file json_encode json_decode ts parse_ts
    now_us alive free_port random_hex random_base64 spawn run_logged
    scale slow as_root repo_root wait_until wait_exit);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

sub slurp {
	my $f = shift;
	open my $fh, '<:raw', $f or return undef;
	local $/;
	return scalar <$fh>;
}

sub append_file {
	my ($f, $text) = @_;
	open my $fh, '>>', $f or croak "$f: $!";
	print $fh $text;
	close $fh;
}

sub json_encode { $JSON->encode($_[0]) }
sub json_decode { $JSON->decode($_[0]) }

# ---------------------------------------------------------------------------
# Slow runs

my $SLOW;

# slow: the factor scale() multiplies by; see the header.
sub slow {
	return $SLOW if defined $SLOW;
	my $env = $ENV{GH_SLOW} // 1;
	$env =~ /^(?:\d+(?:\.\d*)?|\.\d+)$/ && $env > 0
		or croak "GH_SLOW must be a positive number, not '$env'";
	return $SLOW = $env;
}

# set_slow($factor): a wrapped tracker is $factor times slower; scale() is
# then $GH_SLOW times $factor (the largest asked for in this process).
sub set_slow {
	my $f = shift() * ($ENV{GH_SLOW} // 1);
	slow();
	$SLOW = $f if $f > $SLOW;
	return $SLOW;
}

# scale($seconds): how long to wait for, or allow, what takes $seconds on
# a native run.
sub scale { $_[0] * slow() }

# wait_until($seconds, $code, $interval): call $code every $interval
# seconds (default 0.05) until it returns true or scale($seconds) have
# passed; returns its last value.
sub wait_until {
	my ($seconds, $code, $interval) = @_;
	my $deadline = Time::HiRes::time() + scale($seconds);
	while (1) {
		my $v = $code->();
		return $v if $v || Time::HiRes::time() > $deadline;
		Time::HiRes::sleep($interval // 0.05);
	}
}

# wait_exit($pid, $seconds): wait scale($seconds) at most for the child
# $pid to exit; returns its wait status ($?), -1 when it is not our child,
# undef when it still runs (the caller decides whether to kill it).
sub wait_exit {
	my ($pid, $seconds) = @_;
	my $r = wait_until($seconds, sub { waitpid $pid, POSIX::WNOHANG() }, 0.02);
	return $r == $pid ? $? : $r < 0 ? -1 : undef;
}

# ---------------------------------------------------------------------------
# Processes and ports

# spawn($dir, $log, \%env, @cmd): fork and exec @cmd in $dir, in its own
# process group (so a terminal's Ctrl-C reaches only the test, which stops
# things in order), with no TRACKER_* variables but those of %env, its
# output appended to $log; returns the pid.
sub spawn {
	my ($dir, $log, $env, @cmd) = @_;
	my $pid = fork // croak "fork: $!";
	if ($pid == 0) {
		setpgrp(0, 0);
		delete $ENV{$_} for grep /^TRACKER_/, keys %ENV;
		$ENV{$_} = $env->{$_} for keys %$env;
		chdir $dir;
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $log or POSIX::_exit(126);
		open STDERR, '>&', \*STDOUT;
		exec { $cmd[0] } @cmd
			or do { print STDERR "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
	}
	return $pid;
}

# run_logged($dir, $log, \%env, @cmd): spawn, with the command line written
# to $log first, and wait; returns the exit status (0 on success).
sub run_logged {
	my ($dir, $log, $env, @cmd) = @_;
	append_file($log, "\$ @cmd\n");
	my $pid = spawn($dir, $log, $env, @cmd);
	waitpid $pid, 0;
	return $? >> 8 || $? & 127;
}

sub as_root { $> == 0 }

# The repository root, from this file's location (t/lib/GH/Util.pm).
sub repo_root { Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../../..') }

sub alive {
	my $pid = shift;
	return 0 unless kill 0, $pid;
	my $stat = slurp("/proc/$pid/stat") // return 0;
	return $stat !~ /\)\s+Z\s/;    # a zombie is not alive
}

sub free_port {
	for (1 .. 100) {
		my $port = 20000 + int rand 30000;
		my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
			LocalPort => $port, Proto => 'tcp', Listen => 1,
			ReuseAddr => 1) or next;
		close $sock;
		return $port;
	}
	croak "no free port found";
}

sub _random_bytes {
	my $n = shift;
	open my $fh, '<:raw', '/dev/urandom' or croak "/dev/urandom: $!";
	read($fh, my $buf, $n) == $n or croak "short read from /dev/urandom";
	return $buf;
}

sub random_hex { unpack 'H*', _random_bytes(shift) }
sub random_base64 { MIME::Base64::encode_base64(_random_bytes(shift), '') }

# ---------------------------------------------------------------------------
# Timestamps as integer microseconds since the epoch (UTC), years 1-9999.

sub _days_from_civil {
	my ($y, $m, $d) = @_;
	$y -= $m <= 2;
	my $era = int(($y >= 0 ? $y : $y - 399) / 400);
	my $yoe = $y - $era * 400;
	my $doy = int((153 * ($m + ($m > 2 ? -3 : 9)) + 2) / 5) + $d - 1;
	my $doe = $yoe * 365 + int($yoe / 4) - int($yoe / 100) + $doy;
	return $era * 146097 + $doe - 719468;
}

sub _civil_from_days {
	my $z = shift() + 719468;
	my $era = int(($z >= 0 ? $z : $z - 146096) / 146097);
	my $doe = $z - $era * 146097;
	my $yoe = int(($doe - int($doe / 1460) + int($doe / 36524) - int($doe / 146096)) / 365);
	my $y = $yoe + $era * 400;
	my $doy = $doe - (365 * $yoe + int($yoe / 4) - int($yoe / 100));
	my $mp = int((5 * $doy + 2) / 153);
	my $d = $doy - int((153 * $mp + 2) / 5) + 1;
	my $m = $mp + ($mp < 10 ? 3 : -9);
	return ($y + ($m <= 2), $m, $d);
}

# parse_ts($str): RFC 3339 → microseconds, or undef.
sub parse_ts {
	my $s = shift // return undef;
	my ($y, $mo, $d, $h, $mi, $se, $frac, $z, $sign, $oh, $om) = $s =~
		/^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([Zz])|([+-])(\d\d):(\d\d))?$/
		or return undef;
	my $us = ((_days_from_civil($y, $mo, $d) * 24 + $h) * 60 + $mi) * 60 + $se;
	$us = $us * 1_000_000 + ($frac ? substr($frac . '00000', 0, 6) : 0);
	$us -= ($sign eq '+' ? 1 : -1) * ($oh * 3600 + $om * 60) * 1_000_000 if $sign;
	return $us;
}

# ts($us): microseconds → "YYYY-MM-DDTHH:MM:SS.ffffffZ".
sub ts {
	my $us = shift;
	my $frac = $us % 1_000_000;
	my $s = ($us - $frac) / 1_000_000;
	my $sod = $s % 86400;
	my $days = ($s - $sod) / 86400;
	my ($y, $m, $d) = _civil_from_days($days);
	return sprintf '%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', $y, $m, $d,
		int($sod / 3600), int($sod % 3600 / 60), $sod % 60, $frac;
}

sub now_us { int(Time::HiRes::time() * 1_000_000) }

1;
