# grasshopper when the tracker fails, for real (SPEC section 4, delivery):
# down at the start, gone mid-run (tracker stopped, nginx stopped), never
# reachable (spool, then --replay), stalled, refusing the token. Every time:
# the command's status unchanged, nothing lost, nothing doubled.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Client qw(client_bin outputs_clean_ok gh_run tiles_ok wait_for slurp);
use GH::Stack qw(parse_ts json_decode json_encode now_us ts);

my $GH = client_bin();

my $s = GH::Stack->new->start;
my $u = $s->user;
my $tmp = tempdir('gh-client-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @outputs;

# gh(args => [...], env => {...}, during => sub { $pid }, pgrp => 1,
#    setup => sub { ... }): GH::Client::gh_run with this file's stack. The
#    client waits for the tracker at the end as long as scale() says (its
#    default is 5 s): under valgrind a restarted tracker takes seconds to
#    answer its first request.
sub gh {
	my %o = @_;
	gh_run(bin => $GH, tmp => $tmp, server => $s->url, token => $u->token,
		spool => "$tmp/spool", outputs => \@outputs, @_,
		env => {GRASSHOPPER_FLUSH_TIMEOUT => $s->scale(5), %{ $o{env} || {} }});
}

sub summary_id { $_[0]{stderr} =~ /^grasshopper: test (\d+): .*, (\d+) samples?(.*)$/m ? ($1, $2, $3) : () }
sub spool_path { $_[0]{stderr} =~ /not delivered, saved in (\S+); send them later with: grasshopper --replay \1$/m ? $1 : undef }
sub test_of { $u->api(GET => "test/$_[0]")->{json} }
sub samples_of { $u->api(GET => "test/$_[0]/usage?limit=10000")->{json}{samples} || [] }
sub count_tests { scalar @{ $u->api(GET => 'test?limit=200')->{json}{tests} || [] } }

# The spool file: its header and samples.
sub read_spool {
	my @l = split /\n/, slurp($_[0]);
	my $h = eval { json_decode(shift @l) } or return;
	return ($h, [map { json_decode($_) } @l]);
}

# A loopback port where nothing listens.
sub closed_port {
	my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Proto => 'tcp', Listen => 1) or die "listen: $!";
	my $port = $sock->sockport;
	close $sock;
	return $port;
}

# Check a run the tracker got all of in the end: exit status, one test
# started at the client's start, its samples tiling the run, the client's
# count equal to the tracker's.
sub delivered_ok {
	my ($r, $status, $iv, $what) = @_;
	is($r->{status}, $status, "$what: the command's exit status");
	my ($id, $n, $rest) = summary_id($r);
	ok($id, "$what: the summary names the test") or return diag $r->{stderr};
	is($rest, ", exit $status, " . $s->url . "/#/test/$id", "$what: the client took as many samples as the tracker has");
	ok(!spool_path($r), "$what: nothing left to spool");
	my $t = test_of($id);
	my $start = parse_ts($t->{start_time});
	# The slack: fork and exec of the client on a loaded machine.
	ok($start >= $r->{start} && $start - $r->{start} < $s->scale(0.5) * 1e6,
		"$what: the test starts at the client's start time, not when the tracker answered");
	tiles_ok($t, samples_of($id), $iv, "$what: every sample arrived, once, tiling the run");
	return $t;
}

# --- down at the start, up 3 s later --------------------------------------

$s->stop_tracker;
my $r = gh(args => ['-i', '0.2', '--', 'sh', '-c', 'sleep 6; exit 3'],
	during => sub { sleep 3; $s->start_tracker });
my $t = delivered_ok($r, 3, 0.2, 'tracker down at the start');
my @warn = $r->{stderr} =~ /not answering/g;
is(scalar @warn, 1, 'the outage is reported once');

# --- stopped mid-run and restarted ----------------------------------------

# Under valgrind the tracker takes seconds to stop and start: gh() lets
# the client wait for it longer than its default 5 s at the end.
$r = gh(args => ['-i', '0.2', 'sleep', '6'],
	during => sub { sleep 1.5; $s->stop_tracker; sleep 2; $s->start_tracker });
delivered_ok($r, 0, 0.2, 'tracker stopped mid-run');

# nginx gone too: refused connections, a dead kept-alive connection.
$r = gh(args => ['-i', '0.1', 'sleep', '5'],
	during => sub { sleep 1.5; $s->stop_nginx; sleep 2; $s->start_nginx });
delivered_ok($r, 0, 0.1, 'nginx stopped mid-run');

# --- never reachable: spool, then --replay --------------------------------

my $dead = 'http://127.0.0.1:' . closed_port();
my $before = count_tests();
$r = gh(args => ['-i', '0.2', '-n', 'offline', '--', 'sh', '-c', 'sleep 1; exit 5'],
	env => {GRASSHOPPER_SERVER => $dead, GRASSHOPPER_FLUSH_TIMEOUT => 1});
is($r->{status}, 5, "tracker never reachable: the command's status is unchanged");
ok($r->{elapsed} < 1 + 1 + $s->scale(1.5), sprintf('the flush at exit is bounded (%.1f s)', $r->{elapsed}));
my $path = spool_path($r);
ok($path && -f $path, 'the undelivered samples are in a file whose path is printed')
	or diag $r->{stderr};
like($r->{stderr}, qr/^grasshopper: test not recorded: .* exit 5$/m, 'the summary says so');
is((stat $path)[2] & 0777, 0600, 'the spool file is private (0600)');
my ($h, $xs) = read_spool($path);
is($h->{test_id}, undef, 'no test id: it was never created');
is($h->{server}, $dead, 'the server it was meant for');
is($h->{name}, 'offline', 'the test name');
is($h->{exit_status}, 5, "the command's status");
my $n = @$xs;
ok(abs($n - 1 / 0.2) <= 1, "$n samples for 1 s at 0.2 s");
is(parse_ts($xs->[-1]{timestamp}), parse_ts($h->{end_time}), 'the last at the end time');
ok(index(slurp($path), $u->token) < 0, 'the token is not in the spool file');

$r = gh(args => ['--replay', $path], env => {GRASSHOPPER_SERVER => $dead});
is($r->{status}, 1, '--replay while the tracker is still unreachable: exit 1');
unlike($r->{stderr}, qr/was recorded for/, 'to the server it was recorded for: no warning');
ok(-f $path, 'the file is kept');
my (undef, $again) = read_spool($path);
is(scalar @$again, $n, 'with all its samples');

$r = gh(args => ['--replay', $path, '-s', $s->url]);
is($r->{status}, 0, '--replay -s URL once the tracker is there: exit 0');
like($r->{stderr}, qr/^grasshopper: \Q$path\E was recorded for \Q$dead\E; sending it to \Q@{[$s->url]}\E$/m,
	'it says the file was recorded for another server');
ok(!-e $path, 'the file is deleted');
my ($id, $count) = summary_id($r);
like($r->{stderr}, qr/, exit 5, \Q@{[$s->url]}\E\/#\/test\/$id$/m,
	"the summary shows the command's exit status and the test");
$t = test_of($id);
is(parse_ts($t->{start_time}), parse_ts($h->{start_time}), "the test starts at the run's start time");
is(parse_ts($t->{end_time}), parse_ts($h->{end_time}), "and is stopped at its end time");
is($t->{name}, 'offline', 'with its name');
is($t->{samples}, $n, 'all the samples arrived');
tiles_ok($t, samples_of($id), 0.2, 'tiling the run');
is(count_tests(), $before + 1, 'one test created');

# --- a stalled tracker never delays sampling ------------------------------

# A listener that never accepts: connections hang in its backlog.
my $stall = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
	Proto => 'tcp', Listen => 5) or die "listen: $!";
$r = gh(args => ['-i', '0.1', 'sleep', '2'],
	env => {GRASSHOPPER_SERVER => 'http://127.0.0.1:' . $stall->sockport,
		GRASSHOPPER_FLUSH_TIMEOUT => 0.5});
is($r->{status}, 0, 'a stalled tracker: exit 0');
ok($r->{elapsed} < 2 + 0.5 + $s->scale(1.5), sprintf('not held up by it (%.1f s)', $r->{elapsed}));
$path = spool_path($r);
($h, $xs) = read_spool($path // '');
my @ts = map { parse_ts($_->{timestamp}) } @$xs;
my @gaps = map { ($ts[$_] - $ts[$_ - 1]) / 1e6 } 1 .. $#ts;
my ($worst) = sort { $b <=> $a } @gaps;
ok(abs(@ts - 2 / 0.1) <= 1, scalar(@ts) . ' samples in 2 s at 0.1 s');
ok(defined $worst && $worst < 0.2, sprintf('sampling went on undelayed (largest gap %.3f s)', $worst // -1));
close $stall;
unlink $path if $path;

# --- gone before the end: the test was created; --replay reuses it --------

$before = count_tests();
$r = gh(args => ['-i', '0.2', 'sleep', '3'], env => {GRASSHOPPER_FLUSH_TIMEOUT => 0.5},
	during => sub { sleep 1; $s->stop_tracker });
is($r->{status}, 0, 'tracker gone mid-run for good: exit 0');
$path = spool_path($r);
($h, $xs) = read_spool($path // '');
ok($h && $h->{test_id}, 'the spool names the test created before the outage');
ok($h && !$h->{stopped}, 'not stopped');
$s->start_tracker;
$r = gh(args => ['--replay', $path]);
is($r->{status}, 0, '--replay: exit 0');
($id) = summary_id($r);
is($id, $h->{test_id}, 'the samples went to the same test');
is(count_tests(), $before + 1, 'no second test');
$t = test_of($id);
is(parse_ts($t->{end_time}), parse_ts($h->{end_time}), "stopped at the run's end time");
tiles_ok($t, samples_of($id), 0.2, 'the samples before the outage and the replayed ones tile the run, none twice');

# --- a create whose answer was lost: --replay finds the test --------------

# As if the run's create reached the tracker but its answer never came
# back: the test exists, the spool does not know its id.
my $t0 = now_us() - 10_000_000;
my $made = $u->api(POST => 'test', {name => 'unanswered', start_time => ts($t0)})->{json}{id};
$path = "$tmp/lost.jsonl";
open my $fh, '>', $path or die;
print $fh json_encode({grasshopper_spool => 1, server => $s->url, test_id => undef,
	name => 'unanswered', description => '', threshold => 0.5,
	start_time => ts($t0), end_time => ts($t0 + 1_000_000),
	stopped => JSON::PP::false, exit_status => 0}), "\n";
print $fh json_encode({timestamp => ts($t0 + $_ * 500_000), cpu_usage => 0.25}), "\n" for 1, 2;
close $fh;
$before = count_tests();
$r = gh(args => ['--replay', $path]);
is($r->{status}, 0, '--replay of a run whose create went unanswered: exit 0');
($id) = summary_id($r);
is($id, $made, 'it finds the test the create made (same start time) instead of making another');
is(count_tests(), $before, 'no second test');
$t = test_of($made);
ok(!$t->{active} && $t->{samples} == 2, 'the samples arrived and the test is stopped');

# --- a token the tracker refuses ------------------------------------------

my $bad = $s->jwt({sub => '' . $u->id, iat => time, exp => time + 3600}, key => 'x' x 40);
$r = gh(args => ['-i', '0.2', '--', 'sh', '-c', 'sleep 0.5; exit 6'],
	env => {GRASSHOPPER_JWT => $bad});
is($r->{status}, 6, "a rejected token (401): the command's status is unchanged");
# (Count the report, not any "401": a spool name may hold 07:24:01.)
my @e401 = $r->{stderr} =~ /\(401\b/g;
is(scalar @e401, 1, 'the 401 is reported once') or diag $r->{stderr};
$path = spool_path($r);
ok($path && -f $path, 'the samples are kept for a replay with a good token');
ok(index($r->{stderr}, $bad) < 0, 'the rejected token is not printed either');
$r = gh(args => ['--replay', $path]);
is($r->{status}, 0, '--replay with the good token delivers them');

my $token = $u->token;
outputs_clean_ok(\@outputs, $token);

$s->stop;
done_testing;
