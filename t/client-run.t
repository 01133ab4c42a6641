# grasshopper against the real service (SPEC section 4): exit statuses,
# signals as with time(1), sampling (counts, tiling, no drift, a CPU burner),
# the summary line, and the token kept out of every output.
use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Client qw(client_bin outputs_clean_ok gh_run tiles_ok wait_for slurp summary_fields);
use GH::Stack qw(parse_ts wait_until);

my $GH = client_bin();

my $s = GH::Stack->new->start;
my $u = $s->user;
my $tmp = tempdir('gh-client-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @outputs;    # everything grasshopper printed, to look for the token

# gh(args => [...], env => {...}, during => sub { $pid }, pgrp => 1,
#    setup => sub { ... }): GH::Client::gh_run with this file's stack. The
#    client waits for the tracker at the end as long as scale() says (its
#    default is 5 s): under valgrind a restarted tracker takes seconds to
#    answer its first request.
sub gh {
	my %o = @_;
	gh_run(bin => $GH, tmp => $tmp, server => $s->url, token => $u->token,
		spool => $tmp, outputs => \@outputs, @_,
		env => {GRASSHOPPER_FLUSH_TIMEOUT => $s->scale(5), %{ $o{env} || {} }});
}

sub summary { summary_fields($_[0]{stderr}) }

sub test_of { $u->api(GET => "test/$_[0]")->{json} }
sub samples_of { $u->api(GET => "test/$_[0]/usage?limit=10000")->{json}{samples} || [] }
sub count_tests { scalar @{ $u->api(GET => 'test?limit=200')->{json}{tests} || [] } }

# --- exit statuses --------------------------------------------------------

my $r = gh(args => ['--', 'sh', '-c', 'exit 3']);
is($r->{status}, 3, "sh -c 'exit 3' exits 3");
my $sum = summary($r);
ok($sum, 'a summary line on stderr') or diag $r->{stderr};
is($sum->{exit}, 3, 'the summary shows exit 3');
is($sum->{url}, $s->url . "/#/test/$sum->{id}", 'and the test on the page: SERVER/#/test/ID');
my $t = test_of($sum->{id});
is($t->{name}, 'sh', "the test is named after the command");
is($t->{description}, '-c exit 3', 'described by its arguments');
ok(!$t->{active}, 'and stopped');
ok($t->{samples} >= 1, 'with at least one sample');
is($sum->{samples}, $t->{samples}, "the summary's count is the tracker's");
ok(defined $sum->{mem} && defined $sum->{user} && defined $sum->{rss},
	"it has the machine's peak memory and the command's CPU and max RSS");
ok(!defined $sum->{taken}, 'and the client took as many');

$r = gh(args => ['sh', '-c', 'kill -TERM $$']);
is($r->{status}, 143, 'a command killed by SIGTERM: 128 + 15');
is(summary($r)->{exit}, 143, 'the summary shows 143');

my $before = count_tests();
$r = gh(args => ['grasshopper-no-such-command', 'x']);
is($r->{status}, 127, 'a command not found: 127');
like($r->{stderr}, qr/^grasshopper: grasshopper-no-such-command: command not found$/m,
	'one line says so');
open my $fh, '>', "$tmp/noexec" or die;
print $fh "#!/bin/sh\necho hi\n";
close $fh;
chmod 0644, "$tmp/noexec";
$r = gh(args => ["$tmp/noexec"]);
is($r->{status}, 126, 'a command that cannot be executed: 126');
like($r->{stderr}, qr/^grasshopper: \Q$tmp\E\/noexec: Permission denied$/m, 'one line says why');
is(count_tests(), $before, 'a command that never ran creates no test');

# --- usage errors: exit 2, one line, before anything runs -----------------

for my $case (
	[['-i', '0.01', 'touch', "$tmp/ran"], qr/--interval/, 'interval out of range'],
	[['-i', 'fast', 'touch', "$tmp/ran"], qr/--interval/, 'interval not a number'],
	[['-t', '1.5', 'touch', "$tmp/ran"], qr/--threshold/, 'threshold above 1'],
	[['-t', 'high', 'touch', "$tmp/ran"], qr/--threshold/, 'threshold not a fraction'],
	[['--bogus', 'touch', "$tmp/ran"], qr/unknown option --bogus/, 'an unknown option'],
	[['-s', 'localhost:5000', 'touch', "$tmp/ran"], qr/--server/, 'a server without http://'],
	[[], qr/no command/, 'no command'],
) {
	my ($args, $re, $what) = @$case;
	$r = gh(args => $args);
	is($r->{status}, 2, "usage error, $what: exit 2");
	like($r->{stderr}, qr/\Agrasshopper: .*$re.*\n\z/, "$what: one line naming it");
}
$r = gh(args => ['touch', "$tmp/ran"], env => {GRASSHOPPER_JWT => undef});
is($r->{status}, 2, 'no token: exit 2');
like($r->{stderr}, qr/\Agrasshopper: no token: .*GRASSHOPPER_JWT.*\n\z/, 'no token: one line');
ok(!-e "$tmp/ran", 'after a usage error the command never ran');
is(count_tests(), $before, 'and no test was created');

$r = gh(args => ['--help']);
is($r->{status}, 0, '--help exits 0');
like($r->{stdout}, qr/^Usage: grasshopper .*--no-command.*--interval.*--threshold/s,
	'--help prints the usage on stdout');
is($r->{stderr}, '', 'and nothing on stderr');
$r = gh(args => ['--version']);
like($r->{stdout}, qr/^grasshopper \d+\.\d+/, '--version');

# --- sampling -------------------------------------------------------------

$r = gh(args => ['-i', '0.5', '--', 'sh', '-c', 'sleep 0.1']);
$sum = summary($r);
$t = test_of($sum->{id});
my $xs = samples_of($sum->{id});
is(scalar @$xs, 1, 'a 0.1 s command at a 0.5 s interval leaves one sample');
tiles_ok($t, $xs, 0.5, 'it covers the whole run: start to end');
ok($t->{duration} >= 0.1 && $t->{duration} < 0.5, "the test lasted about 0.1 s ($t->{duration})");

$r = gh(args => ['-i', '0.2', '-n', 'count', 'sleep', '2']);
$sum = summary($r);
$t = test_of($sum->{id});
$xs = samples_of($sum->{id});
tiles_ok($t, $xs, 0.2, 'sleep 2 at 0.2 s: duration/interval samples (±1), tiling the run');
is($t->{name}, 'count', '-n names the test');
ok(abs($t->{duration} - 2) < 0.5, "the test lasted about 2 s ($t->{duration})");

# No drift: samples are due at start + k * interval on the monotonic
# clock; lateness must not accumulate over the run. (A tick missed while
# busy is not made up, so each sample is compared with its nearest due
# time.)
$r = gh(args => ['-i', '0.05', 'sleep', '3']);
$sum = summary($r);
$t = test_of($sum->{id});
$xs = samples_of($sum->{id});
my $start = parse_ts($t->{start_time});
my @late = map {
	my $k = (parse_ts($_->{timestamp}) - $start) / 1e6 / 0.05;
	($k - int($k + 0.5)) * 0.05
} @$xs[0 .. $#$xs - 1];
my @tail = sort { $a <=> $b } @late[int(@late * 2 / 3) .. $#late];
my $median = $tail[@tail / 2];
ok(@late >= 50, scalar(@late) . ' regular samples in 3 s at 0.05 s');
ok(abs($median) < 0.015, sprintf('no drift: in the last third, samples are %.1f ms off schedule (median)', 1000 * $median));

# A CPU burner on one core: its share of the machine, and time above a
# threshold below that share close to its duration. The machine may be
# busy with other things too, so the client's figures are checked against
# /proc/stat read independently over the same run.
my $ncpu = () = slurp('/proc/stat') =~ /^cpu\d+ /mg;
my $share = 1 / $ncpu;
sub stat_now { my ($l) = slurp('/proc/stat') =~ /^cpu +(.*)$/m; my @f = split ' ', $l; (\@f) }
sub busy_between {
	my ($a, $b) = @_;
	my @d = map { ($b->[$_] // 0) - ($a->[$_] // 0) } 0 .. 7;
	my $total = 0;
	$total += $_ for @d;
	return $total ? ($total - $d[3] - $d[4]) / $total : 0;
}
my ($s0, $w0) = (stat_now(), time);
$r = gh(args => ['-i', '0.25', '-t', sprintf('%.3f', $share / 2), '--',
	'perl', '-MTime::HiRes=time', '-e', '$e = time + 3; 1 while time < $e']);
my ($s1, $w1) = (stat_now(), time);
$sum = summary($r);
$t = test_of($sum->{id});
$xs = samples_of($sum->{id});
my ($weighted, $prev) = (0, parse_ts($t->{start_time}));
for my $x (@$xs) {
	my $ts = parse_ts($x->{timestamp});
	$weighted += $x->{cpu_usage} * ($ts - $prev);
	$prev = $ts;
}
$weighted /= parse_ts($t->{end_time}) - parse_ts($t->{start_time});
my $independent = busy_between($s0, $s1);
ok($weighted >= 0.85 * $share,
	sprintf('a burner on one of %d cores: mean usage %.3f, at least its share %.3f', $ncpu, $weighted, $share));
# /proc/stat was read around the whole of grasshopper (window W), the
# samples cover the run (D <= W): the busy seconds seen independently must
# hold the sampled ones, plus at most all of W - D, within 10 % of W.
my $W = $w1 - $w0;
my $D = (parse_ts($t->{end_time}) - parse_ts($t->{start_time})) / 1e6;
my ($seen, $sampled) = ($independent * $W, $weighted * $D);
ok($seen >= $sampled - 0.1 * $W && $seen <= $sampled + ($W - $D) + 0.1 * $W,
	sprintf('the samples agree with /proc/stat read around the run (%.2f busy s sampled in %.2f s, %.2f seen in %.2f s)',
		$sampled, $D, $seen, $W));
ok($t->{time_above_threshold} >= 0.85 * $t->{duration},
	"time above a threshold of half its share ($t->{time_above_threshold} s) is close to the run's $t->{duration} s");
ok(abs($t->{duration} - 3) < 0.7, "the burner ran about 3 s ($t->{duration})");

# --- signals, as with time(1) ---------------------------------------------

# --no-command runs until SIGTERM or SIGINT, then stops the test: exit 0.
# (Its test being created shows it is ready for them.)
sub wait_tests {
	my $n = shift;
	wait_until(10, sub { count_tests() >= $n }, 0.01);
}
for my $sig (qw(TERM INT)) {
	$before = count_tests();
	$r = gh(args => ['--no-command', '-i', '0.1'],
		during => sub { wait_tests($before + 1); sleep 1; kill $sig, $_[0] });
	is($r->{status}, 0, "--no-command stopped by SIG$sig exits 0");
	$sum = summary($r);
	$t = test_of($sum->{id});
	is($t->{name}, 'monitor', 'the test is named "monitor"');
	ok(!$t->{active}, "SIG$sig stopped the test");
	tiles_ok($t, samples_of($sum->{id}), 0.1, 'its samples tile the run');
	unlike($sum ? $r->{stderr} : '', qr/, exit \d/, 'no exit status in the summary');
	ok($sum && !defined $sum->{user}, 'nor figures of a command');
}

# SIGTERM and SIGHUP to grasshopper reach the command.
$r = gh(args => ['sh', '-c', "trap 'kill \$!; echo got-term > $tmp/term; exit 7' TERM; sleep 30 & wait"],
	during => sub { wait_for($_[0], 'sh', 'sleep'); kill 'TERM', $_[0] });
is($r->{status}, 7, 'SIGTERM to grasshopper reaches the command (its trap exits 7)');
is(slurp("$tmp/term"), "got-term\n", 'the trap ran');
# (sleep 30 would take 30 s: well under that means it was cut short, even
# on a loaded machine with a sanitizer build.)
ok($r->{elapsed} < $s->scale(15), 'at once') or diag "took $r->{elapsed} s: $r->{stderr}";
$r = gh(args => ['sleep', '30'], during => sub { wait_for($_[0], 'sleep'); kill 'HUP', $_[0] });
is($r->{status}, 129, 'SIGHUP forwarded: the command dies of it, 128 + 1');
ok(summary($r), 'and grasshopper still reports');

# SIGINT is the terminal's: sent to grasshopper alone it is ignored...
$r = gh(args => ['sh', '-c', 'sleep 1; exit 4'],
	during => sub { wait_for($_[0], 'sh', 'sleep'); kill 'INT', $_[0] });
is($r->{status}, 4, 'SIGINT to grasshopper alone is ignored; the command runs on');
# ...while Ctrl-C, sent to the foreground process group, reaches the command.
$r = gh(pgrp => 1, args => ['sleep', '30'],
	during => sub { wait_for($_[0], 'sleep'); kill 'INT', -$_[0] });
is($r->{status}, 130, "Ctrl-C (SIGINT to the group) ends the command: 128 + 2");
ok(summary($r), 'grasshopper outlives it to report');
# (sleep 30 would take 30 s: well under that means it was cut short, even
# on a loaded machine with a sanitizer build.)
ok($r->{elapsed} < $s->scale(15), 'at once') or diag "took $r->{elapsed} s: $r->{stderr}";

# On a real terminal (script(1) makes one): Ctrl-C typed there reaches the
# command, grasshopper reports, and the status is the command's.
SKIP: {
	unless (-x '/usr/bin/script') {
		diag 'NOT TESTED: Ctrl-C on a terminal: no script(1) (apt-get install bsdutils)';
		skip 'no script(1) to make a terminal', 3;
	}
	pipe my $rd, my $wr or die "pipe: $!";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		close $wr;
		$SIG{$_} = 'DEFAULT' for qw(INT QUIT PIPE TERM HUP CHLD);
		@ENV{qw(GRASSHOPPER_SERVER GRASSHOPPER_JWT GRASSHOPPER_SPOOL_DIR)} = ($s->url, $u->token, $tmp);
		open STDIN, '<&', $rd;
		open STDOUT, '>', "$tmp/tty.out";
		open STDERR, '>&', \*STDOUT;
		exec '/usr/bin/script', '-qec', "$GH -i 0.1 -- sleep 30", '/dev/null';
		POSIX::_exit(99);
	}
	close $rd;
	my $t0 = time;
	my $ready = 0;
	until ($ready || time - $t0 > $s->scale(10)) {
		# A sleep whose parent is grasshopper, somewhere under script.
		my @todo = ($pid);
		while (my $p = shift @todo) {
			my @kids = split ' ', slurp("/proc/$p/task/$p/children");
			$ready ||= grep { slurp("/proc/$_/comm") eq "sleep\n" } @kids
				if slurp("/proc/$p/comm") eq "grasshopper\n";
			push @todo, @kids;
		}
		sleep 0.01;
	}
	syswrite $wr, "\x03";    # Ctrl-C, as typed
	my $st;
	while (time - $t0 < $s->scale(20)) {
		last if waitpid($pid, WNOHANG) == $pid && defined($st = $?);
		sleep 0.01;
	}
	kill 'KILL', $pid unless defined $st;
	close $wr;
	my $out = slurp("$tmp/tty.out");
	push @outputs, $out;
	ok($ready, 'the command runs under grasshopper on a terminal');
	is(defined $st ? $st >> 8 : 'hung', 130, "Ctrl-C on the terminal ends the command: 130");
	like($out, qr/grasshopper: test \d+: .*, exit 130, /, 'and grasshopper reports it');
}

# The command stays in grasshopper's process group (the terminal's
# foreground group), with nothing blocked or ignored on its account.
$r = gh(pgrp => 1, args => ['perl', '-e', 'print getpgrp(), " ", getppid()']);
is($r->{stdout}, "$r->{pid} $r->{pid}", "the command is grasshopper's child, in its process group");
# exec, and grep reads its own status: a shell that forks grep blocks every
# signal around its fork(2) (dash does), and grep could read the shell's
# mask in that instant.
$r = gh(args => ['sh', '-c', 'exec grep -E "^Sig(Blk|Ign)" /proc/self/status']);
my ($blk) = $r->{stdout} =~ /^SigBlk:\s*([0-9a-f]+)/m;
my ($ign) = $r->{stdout} =~ /^SigIgn:\s*([0-9a-f]+)/m;
is($blk, '0' x 16, 'the command starts with no signal blocked');
ok(defined $ign && !(hex($ign) & (1 << 1 | 1 << 2 | 1 << 12)),
	'and SIGINT, SIGQUIT, SIGPIPE not ignored (' . ($ign // '?') . ')');

# Started as nohup starts it (SIGHUP ignored), the command is too; started
# with SIGCHLD ignored, grasshopper still learns the command's status.
$r = gh(setup => sub { $SIG{HUP} = 'IGNORE' },
	args => ['sh', '-c', 'exec grep -E "^SigIgn" /proc/self/status']);
($ign) = $r->{stdout} =~ /^SigIgn:\s*([0-9a-f]+)/m;
ok(defined $ign && (hex($ign) & 1), 'under nohup the command ignores SIGHUP too');
$r = gh(setup => sub { $SIG{CHLD} = 'IGNORE' }, args => ['sh', '-c', 'sleep 0.2; exit 9']);
is($r->{status}, 9, "started with SIGCHLD ignored: still the command's status");

# --- quiet, and the token -------------------------------------------------

$r = gh(args => ['-q', 'true']);
is($r->{status}, 0, '-q true exits 0');
is($r->{stderr}, '', '-q prints no summary');

$r = gh(args => ['-j', $u->token, '-d', 'with -j', 'true'], env => {GRASSHOPPER_JWT => undef});
ok(summary($r), 'the token on the command line works too');
my $token = $u->token;
outputs_clean_ok(\@outputs, $token);

$s->stop;
done_testing;
