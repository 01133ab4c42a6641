# grasshopper against its baseline (SPEC 6.4, the client's side), on a
# real stack: the comparison line after the summary (and not with -q), a
# baseline too small to compare with, --fail-if-slower within and beyond
# PCT, a failing command keeping its status, the step summary's
# comparison, the exit status the stop reports (SPEC 6.3); and a tracker
# gone or stalled between the stop and the baseline GET (through a relay
# in front of the real stack that drops or holds that one request), or
# down for the whole run: the status unchanged, the end prompt.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Client qw(client_bin outputs_clean_ok gh_run slurp summary_fields);
use GH::Stack qw(ts now_us);

my $GH = client_bin();

my $s = GH::Stack->new(env => {TRACKER_USER_RATE => 0})->start;
my $u = $s->user;
my $tmp = tempdir('gh-client-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @outputs;

# gh(args => [...], env => {...}, ...): the client on this stack, the
# branch tag given (not what CI running these tests would detect); it
# waits for the tracker at the end as long as scale() says (its default is
# 5 s), as a tracker under valgrind answers slowly.
sub gh {
	my %o = @_;
	gh_run(bin => $GH, tmp => $tmp, server => $s->url, token => $u->token,
		spool => "$tmp/spool", outputs => \@outputs, %o,
		args => ['--tag', 'branch=main', @{ $o{args} }],
		env => {GRASSHOPPER_FLUSH_TIMEOUT => $s->scale(5), %{ $o{env} || {} }});
}
sub summary { summary_fields($_[0]{stderr}) }

# history($name, $branch, @durations): stopped runs through the API, one
# of each duration (seconds), started a minute ago, no samples (so no time
# above the threshold: only their durations can be judged).
sub history {
	my ($name, $branch, @d) = @_;
	my $t0 = now_us() - 60e6;
	for my $d (@d) {
		my $c = $u->api(POST => 'test', {name => $name, start_time => ts($t0),
			$branch ? (tags => {branch => $branch}) : ()});
		$c->{status} == 201 or die "create: $c->{status}";
		my $st = $u->api(POST => "test/$c->{json}{id}/stop", {end_time => ts($t0 + int($d * 1e6))});
		$st->{status} == 200 or die "stop: $st->{status}";
	}
}

# The comparison line: {count, duration, pct (its change), line}.
sub comparison {
	my $e = $_[0]{stderr};
	$e =~ /^grasshopper: (against (\d+) earlier runs \(branch main\): duration (\d+\.\d\d) s \(([-+]\d+\.\d)%\).*)$/m
		or return undef;
	return {line => $1, count => $2, duration => $3, pct => $4};
}

# --- the exit status the stop reports ---------------------------------------

my $r = gh(args => ['sh', '-c', 'exit 3']);
is($r->{status}, 3, 'a command exiting 3');
my $sum = summary($r);
is($sum && $u->api(GET => "test/$sum->{id}")->{json}{command}{exit_status}, 3, 'the tracker has its exit status');
$r = gh(args => ['sh', '-c', 'kill -TERM $$']);
$sum = summary($r);
is($r->{status}, 143, 'a command killed by SIGTERM: 143');
is($sum && $u->api(GET => "test/$sum->{id}")->{json}{command}{exit_status}, 143, '... and so the tracker has it');
unlike(join('', $r->{stderr}), qr/exit_status/, 'nothing said of exit_status to a tracker that takes it');

# --- too small a baseline ---------------------------------------------------

history('small', 'main', 1, 1);
$r = gh(args => ['-n', 'small', '--fail-if-slower', '20', 'sleep', '0.1']);
is($r->{status}, 0, '2 earlier runs, --fail-if-slower 20: the command\'s status');
like($r->{stderr}, qr/^grasshopper: only 2 earlier runs \(branch main\); 3 are needed to compare$/m,
	'the line says there are too few') or diag $r->{stderr};
like($r->{stderr}, qr/^grasshopper: --fail-if-slower 20%: could not judge the run: 2 earlier runs, 3 are needed; the exit status is the command's$/m,
	'the gate says it could not judge');
ok(index($r->{stderr}, 'test ') < index($r->{stderr}, 'only 2 earlier'), 'after the summary line');

# The other branch's runs are not this one's.
history('small', 'other', 1, 1, 1);
$r = gh(args => ['-n', 'small', 'true']);
like($r->{stderr}, qr/^grasshopper: against 3 earlier runs \(branch main\)/m,
	'three runs on main now (the other branch\'s are not counted)')
	or diag $r->{stderr};

# --- within and beyond PCT --------------------------------------------------

history('bench', 'main', 0.95, 1, 1, 1, 1.05);
$r = gh(args => ['-n', 'bench', '--fail-if-slower', '50', 'sleep', '0.9']);
is($r->{status}, 0, 'within 50% of a median of 1 s: exit 0');
my $c = comparison($r);
ok($c, 'the comparison line') or diag $r->{stderr};
is($c && $c->{count}, 5, 'against the 5 earlier runs');
$sum = summary($r);
# The line rounds the duration to 10 ms: 0.5% of the median of 1 s.
ok($c && abs($c->{pct} - 100 * ($c->{duration} - 1)) <= 0.5 + 0.051,
	"its duration's change against the median ($c->{duration} s: $c->{pct}%)") if $c;
is($c && $c->{duration}, $sum && $sum->{duration}, 'the same duration as the summary line');
like($r->{stderr}, qr/^grasshopper: --fail-if-slower 50%: within 50% of the median of 5 earlier runs$/m, 'the gate says so');
like($r->{stderr}, qr/\n\Qgrasshopper: $c->{line}\E\ngrasshopper: --fail-if-slower/, 'summary, comparison, verdict in that order')
	if $c;

my $t0 = time;
$r = gh(args => ['-n', 'bench', '--fail-if-slower', '50', 'sleep', '1.6']);
is($r->{status}, 122, 'beyond 50% (1.6 s against 1 s): exit 122');
like($r->{stderr}, qr/^grasshopper: --fail-if-slower 50%: slower than the median of 6 earlier runs: duration 1\.\d\d s is \d+\.\d% over the median 1\.00 s; exit 122$/m,
	'saying why') or diag $r->{stderr};
$c = comparison($r);
is($c && $c->{count}, 6, 'the run before is in the baseline now');

$r = gh(args => ['-n', 'bench', '-q', '--fail-if-slower', '50', 'sleep', '1.6']);
is($r->{status}, 122, '-q: still exit 122');
like($r->{stderr}, qr/^grasshopper: --fail-if-slower 50%: slower than the median/m, '-q: still saying why');
ok(!summary($r) && !comparison($r), '-q: no summary, no comparison line');

$r = gh(args => ['-n', 'bench', '--fail-if-slower', '50', 'sh', '-c', 'sleep 1.6; exit 4']);
is($r->{status}, 4, 'a failing command beyond PCT keeps its own status');
ok(comparison($r), '... the comparison is printed') or diag $r->{stderr};
unlike($r->{stderr}, qr/fail-if-slower/, '... and the gate says nothing');

$r = gh(args => ['-n', 'bench', '-q', 'true']);
is($r->{stderr}, '', '-q without a gate: nothing at all');

# --- the step summary ----------------------------------------------------

my $md = "$tmp/summary.md";
$r = gh(args => ['-n', 'bench', '--fail-if-slower', '50', 'sleep', '1.6'], env => {GITHUB_STEP_SUMMARY => $md});
is($r->{status}, 122, 'with GITHUB_STEP_SUMMARY: exit 122');
my $text = slurp($md);
like($text, qr/\| 0 \|\n\nThis run against \d+ earlier runs \(branch main\)\\: duration \d+\.\d\d s \(\+\d+\.\d%\)/,
	'the step summary: the comparison after the table') or diag $text;
like($text, qr/\n\n\*\*--fail-if-slower 50%\\: slower than the median of \d+ earlier runs\\: .*; exit 122\*\*\n\z/,
	'... and the verdict, in bold, last');

# --- a tracker gone or stalled after the stop --------------------------------

# relay($mode): a TCP relay to the stack on a port of its own, in a child;
# when the client asks for a baseline it closes every connection and stops
# listening ('dead') or holds the request unanswered ('stall').
sub relay {
	my $mode = shift;
	my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 5, ReuseAddr => 1)
		or die "listen: $!";
	my $pid = fork // die "fork: $!";
	if ($pid) {
		my $url = 'http://127.0.0.1:' . $l->sockport;
		close $l;
		return ($pid, $url);
	}
	my $sel = IO::Select->new($l);
	my %peer;
	while (1) {
		for my $h ($sel->can_read(1)) {
			if ($h == $l) {
				my $c = $l->accept or next;
				my $up = IO::Socket::INET->new(PeerAddr => $s->host, PeerPort => $s->port, Proto => 'tcp')
					or die "relay: $!";
				@peer{$c, $up} = ($up, $c);
				$sel->add($c, $up);
				next;
			}
			my $n = sysread($h, my $data, 65536);
			if (!$n) {
				$sel->remove($h, $peer{$h});
				close $_ for $h, $peer{$h};
				next;
			}
			if ($data =~ m{^GET /api/v1/test/\d+/baseline}m) {
				POSIX::_exit(0) if $mode eq 'dead';
				sleep 3600;
			}
			syswrite($peer{$h}, $data);
		}
	}
}

history('gone', 'main', 1, 1, 1);
# The client's flush timeout bounds the wait; the tracker's own answers
# before it (the create, the samples, the stop) are slower under valgrind.
my $flush = $s->scale(2);
for my $mode (qw(dead stall)) {
	my ($pid, $url) = relay($mode);
	$t0 = time;
	$r = gh(args => ['-n', 'gone', '-i', '0.2', '--fail-if-slower', '20', 'sleep', '0.2'],
		server => $url, env => {GRASSHOPPER_FLUSH_TIMEOUT => $flush});
	my $took = time - $t0;
	is($r->{status}, 0, "$mode after the stop: the command's status");
	$sum = summary($r);
	ok($sum && $u->api(GET => "test/$sum->{id}")->{json}{end_time}, "$mode: the test was stopped before")
		or diag $r->{stderr};
	like($r->{stderr}, qr/^grasshopper: --fail-if-slower 20%: could not judge the run: no answer from the tracker/m,
		"$mode: the gate could not judge, and says why") or diag $r->{stderr};
	ok(!comparison($r) && $r->{stderr} !~ /earlier run/, "$mode: no comparison line");
	ok($r->{stderr} !~ /saved in/, "$mode: nothing spooled");
	ok($took < 0.2 + $flush + $s->scale(1.5),
		sprintf("$mode: the end is prompt (%.2f s, a flush timeout of %g s)", $took, $flush));
	kill 'KILL', $pid;
	waitpid $pid, 0;
}

# The tracker down for the whole run: spooled, nothing to judge with.
$s->stop_tracker;
$t0 = time;
$r = gh(args => ['-n', 'gone', '--fail-if-slower', '20', 'sleep', '0.2'], env => {GRASSHOPPER_FLUSH_TIMEOUT => 1});
my $took = time - $t0;
$s->start_tracker;
is($r->{status}, 0, 'the tracker down: the command\'s status');
like($r->{stderr}, qr/^grasshopper: --fail-if-slower 20%: could not judge the run: the tracker does not have the run yet \(it is spooled\); the exit status is the command's$/m,
	'the gate could not judge: the run is spooled') or diag $r->{stderr};
ok($took < 0.2 + 1 + $s->scale(1.5), sprintf('prompt (%.2f s, a flush timeout of 1 s)', $took));

# --- usage errors --------------------------------------------------------

for my $bad (['--fail-if-slower', '0'], ['--fail-if-slower', '-5'], ['--fail-if-slower', 'x'],
	['--fail-if-slower', '1e9'], ['--baseline-runs', '2'], ['--baseline-runs', '101']) {
	$r = gh(args => [@$bad, 'true']);
	is($r->{status}, 2, "@$bad: a usage error");
	like($r->{stderr}, qr/^grasshopper: \Q$bad->[0]\E must be /m, '... saying what it must be');
}
$r = gh(args => ['--fail-if-slower', '20', '--no-command']);
is($r->{status}, 2, '--fail-if-slower with --no-command: a usage error');
$r = gh(args => ['--baseline-runs', '3', '-n', 'bench', 'true']);
like($r->{stderr}, qr/^grasshopper: against 3 earlier runs/m, '--baseline-runs 3: the last 3 runs');

my $token = $u->token;
outputs_clean_ok(\@outputs, $token);

$s->stop;
done_testing;
