# grasshopper's figures beyond CPU (SPEC 6.3, the client's side): the
# command's CPU seconds and max RSS as wait4 counts them (children it
# waited for included), the machine's peak memory, the GitHub Actions step
# summary, spool files with memory that still replay; the samples' memory
# sent to the tracker (mem_usage), directly and by --replay, and once
# without it to a tracker that refuses the field (an older version); tags
# (--tag, detected ones, --no-auto-tags) and the command's figures as the
# tracker stores them; every request the client makes accepted.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(mkfifo);
use Test::More;
use GH::Client qw(client_bin outputs_clean_ok gh_run slurp summary_fields);
use GH::Stack qw(json_decode json_encode parse_ts);
use List::Util qw(max);

my $GH = client_bin();

my $s = GH::Stack->new(env => {TRACKER_USER_RATE => 0})->start;
my $u = $s->user;
my $tmp = tempdir('gh-client-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @outputs;

sub gh {
	gh_run(bin => $GH, tmp => $tmp, server => $s->url, token => $u->token,
		spool => "$tmp/spool", outputs => \@outputs, @_);
}
sub summary { summary_fields($_[0]{stderr}) }

# Memory in use now, as a percentage, as the client computes it.
sub mem_now {
	my $m = slurp('/proc/meminfo');
	my ($total) = $m =~ /^MemTotal:\s+(\d+) kB$/m;
	my ($avail) = $m =~ /^MemAvailable:\s+(\d+) kB$/m;
	return 100 * (1 - $avail / $total);
}

# --- the command's own resources ------------------------------------------

# 50 MB in one string: its max RSS is at least that.
my $MB50 = 50_000_000 / 1024 / 1024;
my $r = gh(args => ['perl', '-e', '$x = "a" x 50_000_000']);
is($r->{status}, 0, 'a command that allocates 50 MB exits 0');
my $sum = summary($r);
ok($sum, 'a summary line') or diag $r->{stderr};
ok(defined $sum->{rss} && $sum->{rss} >= $MB50,
	sprintf('its max RSS (%s MiB) is at least the 50 MB (%.1f MiB)', $sum->{rss} // '-', $MB50));

# ...also when it is a child the command waited for (the shell stays:
# it has more to do after perl).
$r = gh(args => ['sh', '-c', 'perl -e \'$x = "a" x 50_000_000\'; exit 0']);
$sum = summary($r);
ok($sum && $sum->{rss} >= $MB50,
	sprintf("a child's 50 MB count: max RSS %s MiB under sh -c", $sum ? $sum->{rss} : '-'));

# CPU: a loop until the process has used 1 s of CPU, however loaded the
# machine: user + system is 1 s, plus perl's start and one turn.
my $busy = 'do { ($u, $s) = times; 1 for 1 .. 20000 } while $u + $s < %s';
my $slack = 0.25 * $s->slow;
$r = gh(args => ['perl', '-e', sprintf($busy, 1)]);
$sum = summary($r);
ok($sum && defined $sum->{user}, 'a busy loop: its CPU seconds') or diag $r->{stderr};
my $cpu = $sum ? $sum->{user} + $sum->{system} : 0;
ok($cpu >= 0.99 && $cpu <= 1 + $slack,
	sprintf('user + system of a loop until 1 s of CPU: %.2f s (%.2f user)', $cpu, $sum ? $sum->{user} : 0));
ok($sum->{user} > 0.5, 'mostly in user space');

# Two of them in turn under a shell: what the shell waited for counts.
$r = gh(args => ['sh', '-c', join('; ', map { sprintf("perl -e '$busy'", 0.5) } 1 .. 2) . '; exit 0']);
$sum = summary($r);
$cpu = $sum ? $sum->{user} + $sum->{system} : 0;
ok($cpu >= 0.99 && $cpu <= 1 + 2 * $slack,
	sprintf("two children of 0.5 s each under sh -c: %.2f s", $cpu));

# --- the machine's peak memory ---------------------------------------------

my $before = mem_now();
$r = gh(args => ['-i', '0.1', 'sleep', '0.5']);
my $after = mem_now();
$sum = summary($r);
ok($sum && defined $sum->{mem}, 'the summary has the peak memory') or diag $r->{stderr};
my ($lo, $hi) = sort { $a <=> $b } $before, $after;
ok($sum->{mem} > 0 && $sum->{mem} <= 100 && $sum->{mem} >= $lo - 5,
	sprintf('%.1f%% in use at the peak, with %.1f%% before and %.1f%% after', $sum->{mem}, $before, $after));
# mem_usage of a test's samples as the tracker has them: {us => value or undef}.
sub mem_of {
	my $ss = $u->api(GET => "test/$_[0]/usage")->{json}{samples} || [];
	return {map { parse_ts($_->{timestamp}) => $_->{mem_usage} } @$ss};
}
my $mt = $u->api(GET => "test/$sum->{id}")->{json};
my $mem = mem_of($sum->{id});
ok(%$mem && !grep({ !defined } values %$mem), 'every sample arrived with its mem_usage (' . keys(%$mem) . ')');
is($mt->{max_mem_usage}, max(values %$mem), "the test's max_mem_usage is its samples' peak");
is(sprintf('%.1f', 100 * ($mt->{max_mem_usage} // 0)), $sum->{mem},
	"the summary line's peak memory is the test's max_mem_usage");

# --- the GitHub Actions step summary ---------------------------------------

my $md = "$tmp/step-summary.md";
open my $fh, '>', $md or die "$md: $!";
print $fh "## an earlier step\n\nits last line, no newline";
close $fh;
my %gha = (GITHUB_STEP_SUMMARY => $md);
$r = gh(args => ['-n', 'build | <b>', 'perl', '-e', sprintf($busy, 0.2) . '; exit 3'], env => \%gha);
is($r->{status}, 3, 'with GITHUB_STEP_SUMMARY: the command\'s status');
$sum = summary($r);
my $text = slurp($md);
like($text, qr/\A## an earlier step\n\nits last line, no newline\n\n\| grasshopper \|/,
	'the table is appended after what was there, a blank line between');
my ($head, $rule, $row, @rest) = split /\n/, substr($text, index($text, '| grasshopper'));
is($head, '| grasshopper | duration | above 50% | peak CPU | mean CPU | peak memory | command CPU | max RSS | exit |',
	'its header');
is(scalar(@rest), 0, 'one row, nothing after it') or diag $text;
my @cell = map { s/^\s+|\s+$//gr } split /(?<!\\)\|/, $row;
shift @cell;
is($cell[0], "[build \\| \\<b\\>](" . $s->url . "/#/test/$sum->{id})",
	"the name, escaped, linked to the run's page");
is($cell[1], "$sum->{duration} s", 'the duration, as in the summary line');
is($cell[2], "$sum->{above} s ($sum->{pct}%)", 'time above the threshold');
is($cell[3], "$sum->{peak}%", 'peak CPU');
is($cell[4], "$sum->{mean}%", 'mean CPU');
is($cell[5], "$sum->{mem}%", 'peak memory');
is($cell[6], "$sum->{user} s user + $sum->{system} s system", "the command's CPU");
is($cell[7], "$sum->{rss} MiB", 'its max RSS');
is($cell[8], '3', 'its exit status');
ok(index($text, $u->token) < 0, 'no token in the step summary');

$r = gh(args => ['-q', 'true'], env => \%gha);
$text = slurp($md);
is(scalar(() = $text =~ /^\| grasshopper \|/mg), 2, 'a second run appends a second table (even with -q)');
like($text, qr/\| \[true\]\([^)]*\) \|[^\n]*\| 0 \|\n\z/, 'its row ends the file');

$r = gh(args => ['--no-command', '-i', '0.1'], env => \%gha,
	during => sub { sleep 1; kill 'TERM', $_[0] });
like(slurp($md), qr/\| \[monitor\]\([^)]*\) \|[^\n]* \| - \| - \| - \|\n\z/,
	'--no-command: no command CPU, no max RSS, no exit status');

# Whatever is wrong with the file, the run is the same and says why.
mkfifo("$tmp/fifo", 0600) or die "mkfifo: $!";
mkdir "$tmp/dir";
for my $case (["$tmp/no-such-dir/summary.md", 'No such file or directory', 'a missing directory'],
	["$tmp/dir", 'Is a directory', 'a directory'],
	["$tmp/fifo", 'No such device or address', 'a FIFO nobody reads']) {
	my ($path, $why, $what) = @$case;
	$r = gh(args => ['sh', '-c', 'exit 4'], env => {GITHUB_STEP_SUMMARY => $path});
	is($r->{status}, 4, "GITHUB_STEP_SUMMARY names $what: the command's status");
	like($r->{stderr}, qr/^grasshopper: warning: GITHUB_STEP_SUMMARY \Q$path\E: \Q$why\E; no step summary written$/m,
		'one warning line says why');
	ok(summary($r), 'and the summary line is printed') or diag $r->{stderr};
	ok($r->{elapsed} < 30, 'without waiting on it');
}
SKIP: {
	skip 'root may write a read-only file', 2 if $> == 0;
	open my $ro, '>', "$tmp/ro.md" or die;
	close $ro;
	chmod 0444, "$tmp/ro.md";
	$r = gh(args => ['true'], env => {GITHUB_STEP_SUMMARY => "$tmp/ro.md"});
	is($r->{status}, 0, 'a read-only file: the status is the command\'s');
	like($r->{stderr}, qr/GITHUB_STEP_SUMMARY .*: Permission denied; no step summary written$/m, 'and a warning');
}
$r = gh(args => ['true'], env => {GITHUB_STEP_SUMMARY => ''});
unlike($r->{stderr}, qr/GITHUB_STEP_SUMMARY/, 'GITHUB_STEP_SUMMARY empty: nothing to write, nothing said');

# --- spool files with memory replay; old ones too --------------------------

my $closed = do {
	my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Proto => 'tcp', Listen => 1) or die "listen: $!";
	my $port = $sock->sockport;
	close $sock;
	"http://127.0.0.1:$port";
};
$r = gh(args => ['-i', '0.1', '-q', '--tag', 'suite=spooled', 'perl', '-e', sprintf($busy, 0.3)],
	env => {GRASSHOPPER_SERVER => $closed, GRASSHOPPER_FLUSH_TIMEOUT => 0});
my ($spool) = $r->{stderr} =~ /saved in (\S+);/;
ok($spool && -f $spool, 'no tracker: the samples are spooled') or diag $r->{stderr};
my @lines = split /\n/, slurp($spool // '');
my $h = eval { json_decode($lines[0]) } || {};
ok($h->{user_cpu} + $h->{system_cpu} >= 0.29 && $h->{max_rss} > 0,
	"the spool's header keeps the command's resources");
my @xs = map { json_decode($_) } @lines[1 .. $#lines];
ok(@xs >= 2 && !grep({ !defined $_->{mem_usage} || $_->{mem_usage} <= 0 || $_->{mem_usage} > 1 } @xs),
	'every spooled sample has its memory in use');
$r = gh(args => ['--replay', $spool]);
is($r->{status}, 0, 'the spool replays to the tracker');
$sum = summary($r);
ok($sum && defined $sum->{mem} && defined $sum->{user}, 'its summary has the memory and the command from the file')
	or diag $r->{stderr};
is($sum && $u->api(GET => "test/$sum->{id}")->{json}{samples}, scalar @xs, 'every sample arrived');
is_deeply($sum && mem_of($sum->{id}), {map { parse_ts($_->{timestamp}) => $_->{mem_usage} } @xs},
	'... each with the mem_usage of the spool file');
my $cmd = $sum && $u->api(GET => "test/$sum->{id}")->{json}{command};
ok($cmd && $cmd->{max_rss} > 0 && defined $cmd->{user_cpu}, "the replayed stop reports the file's command figures");
is($cmd && $cmd->{exit_status}, 0, "... and its exit status");
ok((grep { $_ eq 'suite=spooled' } @{ $h->{tags} || [] }) && (grep { /^host=./ } @{ $h->{tags} || [] }),
	"the spool's header keeps the tags");
is($sum && $u->api(GET => "test/$sum->{id}")->{json}{tags}{suite}, 'spooled', 'the replay creates the test with them');

open $fh, '>', "$tmp/old.jsonl" or die;
print $fh json_encode({grasshopper_spool => 1, server => $s->url, test_id => undef,
	name => 'old', description => '', threshold => 0.5,
	start_time => '2026-01-01T00:00:00Z', end_time => '2026-01-01T00:00:01Z',
	stopped => JSON::PP::false, exit_status => 0}), "\n",
	'{"timestamp":"2026-01-01T00:00:00.5Z","cpu_usage":0.25}', "\n",
	'{"timestamp":"2026-01-01T00:00:01Z","cpu_usage":0.75}', "\n";
close $fh;
$r = gh(args => ['--replay', "$tmp/old.jsonl"]);
is($r->{status}, 0, 'a spool file from before memory still replays');
$sum = summary($r);
ok($sum && !defined $sum->{mem} && !defined $sum->{user}, 'without memory or command figures')
	or diag $r->{stderr};
is($sum && $u->api(GET => "test/$sum->{id}")->{json}{max_mem_usage}, undef, '... and the test has none');

# --- a tracker that refuses mem_usage and exit_status (older than 6.3) ------

# A stand-in for it, on one kept-alive connection at a time: creates test
# 7, refuses a batch naming mem_usage and a stop naming exit_status as
# such a tracker does (400 invalid_field, unknown field), takes the
# others, stops, has no baselines (404); every request's first line and
# body go to $log, one line each. (The real tracker of session 5 refused
# the stop the same way: checked by hand against main before exit_status
# was merged.)
my $log = "$tmp/old-tracker.log";
my $old = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 5, ReuseAddr => 1)
	or die "listen: $!";
my $old_url = 'http://127.0.0.1:' . $old->sockport;
my $old_pid = fork // die "fork: $!";
if (!$old_pid) {
	open my $lf, '>>', $log or die "$log: $!";
	$lf->autoflush(1);
	my $n = 0;
	while (my $c = $old->accept) {
		while (1) {
			my $head = '';
			while ($head !~ /\r\n\r\n/) { my $got = sysread($c, $head, 4096, length $head) or last }
			last unless $head =~ /^(\S+) (\S+)/;
			my ($method, $path) = ($1, $2);
			my ($len) = $head =~ /^Content-Length: (\d+)/mi;
			my ($body) = $head =~ /\r\n\r\n(.*)/s;
			syswrite($c, "HTTP/1.1 100 Continue\r\n\r\n") if $head =~ /^Expect: 100/mi && length($body) < ($len // 0);
			while (length($body) < ($len // 0)) { sysread($c, $body, 65536, length $body) or last }
			print $lf "$method $path $body\n";
			my ($code, $out);
			if ($path =~ m{/usage$} && $body =~ /mem_usage/) {
				($code, $out) = (400, '{"error":"invalid_field","message":"[0].unknown field \"mem_usage\""}');
			} elsif ($path =~ m{/stop$} && $body =~ /exit_status/) {
				($code, $out) = (400, '{"error":"invalid_field","message":"unknown field \"exit_status\""}');
			} elsif ($path =~ m{/baseline}) {
				($code, $out) = (404, '{"error":"not_found","message":"no such route"}');
			} elsif ($path =~ m{/usage$}) {
				my $k = () = $body =~ /cpu_usage/g;
				$n += $k;
				($code, $out) = (200, qq({"id":7,"received":$k,"stored":$k}));
			} elsif ($path =~ m{/test$}) {
				($code, $out) = (201, '{"id":7}');
			} else {
				($code, $out) = (200, qq({"id":7,"name":"old","description":"","threshold":0.5,"active":false,)
					. qq("start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","duration":1,)
					. qq("time_above_threshold":0,"samples":$n,"max_cpu_usage":0.5,"mean_cpu_usage":0.5}));
			}
			syswrite($c, "HTTP/1.1 $code X\r\nContent-Type: application/json; charset=utf-8\r\n"
				. 'Content-Length: ' . length($out) . "\r\n\r\n$out");
		}
		close $c;
	}
	exit 0;
}
close $old;
$r = gh(args => ['-i', '0.1', 'sh', '-c', 'sleep 0.5; exit 5'], server => $old_url);
is($r->{status}, 5, 'a tracker refusing mem_usage and exit_status: the command\'s status');
my @said = $r->{stderr} =~ /does not take mem_usage/g;
is(scalar @said, 1, '... said once') or diag $r->{stderr};
@said = $r->{stderr} =~ /does not take exit_status \(an older version\); stopping the test without it$/mg;
is(scalar @said, 1, '... exit_status: said once too') or diag $r->{stderr};
unlike($r->{stderr}, qr/refused/, '... and nothing refused for good');
my @reqs = split /\n/, slurp($log);
my @usage = grep { m{^POST /api/v1/test/7/usage } } @reqs;
is(scalar(grep { /mem_usage/ } @usage), 1, '... one batch with mem_usage, the one refused');
ok(@usage >= 2 && $usage[0] =~ /mem_usage/, '... the first; the others without it');
my $sent = () = join('', grep { !/mem_usage/ } @usage) =~ /cpu_usage/g;
$sum = summary($r);
ok($sum && $sum->{samples} == $sent && (!defined $sum->{taken} || $sum->{taken} == $sent),
	"... every sample arrived without it ($sent)") or diag $r->{stderr};
my @stops = grep { m{^POST /api/v1/test/7/stop } } @reqs;
is(scalar @stops, 2, '... and the test was stopped: two stops') or diag join "\n", @stops;
like($stops[0] // '', qr/"exit_status":5[,}]/, '... the first with the exit status, refused');
ok(@stops == 2 && $stops[1] !~ /exit_status/ && $stops[1] =~ /"max_rss":\d+/,
	'... the second without it, the command\'s other figures still there') or diag $stops[1];
unlike($r->{stderr}, qr/baseline|earlier run/, 'no baseline there (404): nothing said of it');
kill 'TERM', $old_pid;
waitpid $old_pid, 0;

# --- tags and the command's figures at the tracker -------------------------

my %ci = (GITHUB_ACTIONS => 'true', GITHUB_REPOSITORY => 'octo/cat', GITHUB_REF_TYPE => 'branch',
	GITHUB_REF_NAME => 'main', GITHUB_SHA => 'c0ffee', GITHUB_SERVER_URL => 'https://github.com',
	GITHUB_RUN_ID => '77', GITHUB_HEAD_REF => '');
$r = gh(args => ['--tag', 'suite=unit', '--tag', 'branch=mine', 'perl', '-e', sprintf($busy, 0.2)],
	env => \%ci);
is($r->{status}, 0, 'a run with --tag under a (fake) GitHub Actions job');
$sum = summary($r);
my $t = $sum && $u->api(GET => "test/$sum->{id}")->{json};
my $tags = $t ? $t->{tags} : {};
is_deeply([@$tags{qw(ci repo commit job_url suite branch)}],
	['github', 'octo/cat', 'c0ffee', 'https://github.com/octo/cat/actions/runs/77', 'unit', 'mine'],
	'it lands with the CI tags and its own, --tag over a detected one') or diag explain $tags;
ok(length($tags->{host} // '') && $tags->{cpus} =~ /^\d/ && $tags->{mem_total} =~ / GiB$/
	&& length($tags->{kernel} // ''), 'and the machine\'s: host, cpus, mem_total, kernel');
ok($t && $t->{command} && $t->{command}{user_cpu} + $t->{command}{system_cpu} >= 0.19
	&& $t->{command}{max_rss} > 0, 'and the command\'s figures, as the summary has them')
	or diag explain $t->{command};
is($t && $t->{command}{max_rss}, $t && int($t->{command}{max_rss}), 'max_rss in whole KiB');

$r = gh(args => ['--no-auto-tags', '--tag', 'suite=unit', 'true'], env => \%ci);
$sum = summary($r);
is_deeply($sum && $u->api(GET => "test/$sum->{id}")->{json}{tags}, {suite => 'unit'},
	'--no-auto-tags: only the given tags');
$r = gh(args => ['--no-auto-tags', '--no-command', '-i', '0.1'], env => \%ci,
	during => sub { sleep 1; kill 'TERM', $_[0] });
$sum = summary($r);
$t = $sum && $u->api(GET => "test/$sum->{id}")->{json};
ok($t && !%{ $t->{tags} } && !defined $t->{command}, '--no-command: no tags asked for, no command figures')
	or diag $r->{stderr};

$r = gh(args => [(map { ('--tag', "k$_=v") } 1 .. 32), 'true'], env => \%ci);
is($r->{status}, 2, '32 tags and the detected ones: a usage error');
like($r->{stderr}, qr/at most 32 tags, and \d+ were detected/, '... saying how many were detected');
$r = gh(args => ['--no-auto-tags', (map { ('--tag', "k$_=v") } 1 .. 32), 'true']);
is($r->{status}, 0, '32 tags without the detected ones: fine');
$r = gh(args => ['--tag', 'a b=c', 'true']);
is($r->{status}, 2, 'a bad --tag key: a usage error');

# --- the requests are taken -------------------------------------------------

# The tracker refuses unknown fields (400): it took every request of every
# run above (their samples carried mem_usage).
my @log = split /\n/, slurp($s->dir . '/access.log');
my @client = grep { m{"(?:POST|GET) /api/v1/test(?:/\d+(?:/usage|/stop)?)?"} } @log;
ok((grep { m{"POST /api/v1/test/\d+/usage" 2} } @client) && (grep { m{"POST /api/v1/test/\d+/stop" 2} } @client),
	'the client created, fed and stopped tests (' . scalar(@client) . ' requests)');
my @refused = grep { /" [45]\d\d / } @client;
is(scalar @refused, 0, 'and the tracker refused none of them') or diag join "\n", @refused;

my $token = $u->token;
outputs_clean_ok(\@outputs, $token);

$s->stop;
done_testing;
