# GH::Client: run the grasshopper client in end-to-end tests, and judge its
# samples. Shared by the t/client-*.t files and t/load-faults.t.
package GH::Client;
use strict;
use warnings;

use Exporter 'import';
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);
use GH::Util qw(parse_ts scale);

our @EXPORT_OK = qw(client_bin gh_run tiles_ok wait_for slurp summary_fields outputs_clean_ok);

my $runs = 0;

# client_bin(): the grasshopper under test, $GH_BUILDDIR/grasshopper; dies
# when it is not built.
sub client_bin {
	my $bin = ($ENV{GH_BUILDDIR} || '.') . '/grasshopper';
	-x $bin or die "no client at $bin (build first; GH_BUILDDIR)\n";
	return $bin;
}

# outputs_clean_ok(\@outputs, $token): two tests, that nothing grasshopper
# printed (gh_run's outputs) holds the token or a sanitizer's report.
sub outputs_clean_ok {
	my ($outputs, $token) = @_;
	Test::More::ok(!grep({ index($_, $token) >= 0 } @$outputs),
		'the token never appears in any output');
	Test::More::ok(!grep({ /Sanitizer|runtime error:/ } @$outputs),
		'no sanitizer report from grasshopper');
}

# slurp($file): GH::Util::slurp, but '' for a file that cannot be read.
sub slurp { GH::Util::slurp($_[0]) // '' }

# gh_run(bin => PATH, tmp => DIR, server => URL, token => JWT,
#        spool => DIR, outputs => \@all, args => [...], env => {...},
#        during => sub { $pid }, pgrp => 1, setup => sub { in the child },
#        stdin => TEXT (else /dev/null)):
# run grasshopper to its end (scale(60) s at most) with only the GRASSHOPPER_*
# variables given (and XDG_CONFIG_HOME, TMP/config unless given); → {status, signal, pid, elapsed, start (us), stdout,
# stderr}. What it printed is pushed onto @all (to look for the token).
sub gh_run {
	my %o = @_;
	my ($out, $err, $in) = map { "$o{tmp}/run" . ++$runs . ".$_" } qw(out err in);
	if (defined $o{stdin}) {
		open my $fh, '>', $in or die "$in: $!";
		print $fh $o{stdin};
		close $fh;
	}
	# XDG_CONFIG_HOME: never the credentials file of whoever runs the tests.
	my %env = (GRASSHOPPER_SERVER => $o{server}, GRASSHOPPER_JWT => $o{token},
		GRASSHOPPER_SPOOL_DIR => $o{spool}, XDG_CONFIG_HOME => "$o{tmp}/config",
		%{ $o{env} || {} });
	my $t0 = time;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		setpgrp(0, 0) if $o{pgrp};
		# What a shell would hand over: default dispositions.
		$SIG{$_} = 'DEFAULT' for qw(INT QUIT PIPE TERM HUP CHLD);
		$o{setup}->() if $o{setup};
		delete $ENV{$_} for grep /^GRASSHOPPER_/, keys %ENV;
		# Tests run in CI too: never into that job's own summary.
		delete $ENV{GITHUB_STEP_SUMMARY};
		defined $env{$_} and $ENV{$_} = $env{$_} for keys %env;
		open STDIN, '<', defined $o{stdin} ? $in : '/dev/null';
		open STDOUT, '>', $out;
		open STDERR, '>', $err;
		exec $o{bin}, @{ $o{args} } or POSIX::_exit(99);
	}
	$o{during}->($pid) if $o{during};
	my $limit = scale(60);
	my $deadline = time + $limit;
	while (waitpid($pid, WNOHANG) == 0) {
		if (time > $deadline) {
			kill 'KILL', $pid;
			waitpid $pid, 0;
			Test::More::fail("grasshopper @{ $o{args} } did not end in $limit s");
			last;
		}
		sleep 0.01;
	}
	my $st = $?;
	my %r = (status => $st >> 8, signal => $st & 127, pid => $pid,
		elapsed => time - $t0, start => int($t0 * 1e6),
		stdout => slurp($out), stderr => slurp($err));
	push @{ $o{outputs} }, $r{stdout}, $r{stderr} if $o{outputs};
	return \%r;
}

# The summary line (grasshopper(1)), parsed.
# (Each piece with ^ or $ has its own /m: a qr// keeps its flags inside.)
my $SUMMARY = qr{^grasshopper: test (\d+): (\d+\.\d\d) s, (\d+\.\d\d) s above }m
	. qr{([\d.]+)% \((\d+\.\d)%\), peak (\d+\.\d)%, mean (\d+\.\d)%, }
	. qr{(?:peak memory (\d+\.\d)%, )?}
	. qr{(?:command (\d+\.\d\d) s user \+ (\d+\.\d\d) s system, max RSS (\d+\.\d) MiB, )?}
	. qr{(\d+) samples?(?: \(the client took (\d+)\))?(?:, exit (\d+))?, (\S+)$}m;
$SUMMARY = qr/$SUMMARY/;

# summary_fields($stderr): the summary line's figures {id, duration,
# above, threshold, pct, peak, mean, mem (peak memory, %), user, system
# (the command's CPU seconds), rss (its max RSS, MiB), samples, taken,
# exit, url}, absent ones undef; undef without a summary line.
sub summary_fields {
	my @f = $_[0] =~ $SUMMARY or return undef;
	my %h;
	@h{qw(id duration above threshold pct peak mean mem user system rss samples taken exit url)} = @f;
	return \%h;
}

# wait_for($pid, @names): wait (scale(10) s at most) until process $pid has a
# child running $names[0], which has one running $names[1], and so on:
# grasshopper is set up once its command runs.
sub wait_for {
	my ($pid, @names) = @_;
	my $limit = scale(10);
	my $deadline = time + $limit;
	while (time < $deadline) {
		my $p = $pid;
		for my $name (@names) {
			($p) = grep { slurp("/proc/$_/comm") eq "$name\n" }
				split ' ', slurp("/proc/$p/task/$p/children");
			last unless $p;
		}
		return 1 if $p;
		sleep 0.01;
	}
	Test::More::fail("no @names under $pid after $limit s");
	return 0;
}

# tiles_ok($test, $samples, $interval, $name): nothing lost, nothing
# doubled: the samples cover the run from start to end, one per interval
# (no gap above 1.5 intervals, no repeat), the last at the end time.
sub tiles_ok {
	my ($t, $xs, $iv, $name) = @_;
	my @ts = map { parse_ts($_->{timestamp}) } @$xs;
	my $start = parse_ts($t->{start_time});
	my $end = parse_ts($t->{end_time} // '');
	my @why;
	push @why, 'no samples' unless @ts;
	push @why, 'the test is not stopped' unless defined $end;
	if (@ts && defined $end) {
		my $slack = 0.1 * 1e6;    # a loaded machine wakes us late
		push @why, sprintf('first sample %.3f s after the start', ($ts[0] - $start) / 1e6)
			if $ts[0] <= $start || $ts[0] - $start > 1.5 * $iv * 1e6 + $slack;
		for my $i (1 .. $#ts) {
			my $gap = $ts[$i] - $ts[$i - 1];
			push @why, sprintf('gap of %.3f s before sample %d', $gap / 1e6, $i)
				if $gap <= 0 || $gap > 1.5 * $iv * 1e6 + $slack;
		}
		push @why, "the last sample ($xs->[-1]{timestamp}) is not at the end ($t->{end_time})"
			unless $ts[-1] == $end;
		my $want = ($end - $start) / 1e6 / $iv;
		push @why, sprintf('%d samples for %.2f intervals', scalar @ts, $want)
			if abs(@ts - $want) > 1;
	}
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	Test::More::ok(!@why, $name) or Test::More::diag join "\n", @why;
}

1;
