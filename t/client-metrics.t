# grasshopper's figures beyond CPU (SPEC 6.3, the client's side): the
# command's CPU seconds and max RSS as wait4 counts them (children it
# waited for included), the machine's peak memory, spool files with
# memory that still replay, and the requests
# unchanged: until the tracker takes the new fields, it must accept every
# request the client makes.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Socket::INET;
use Test::More;
use GH::Client qw(gh_run slurp summary_fields);
use GH::Stack qw(json_decode json_encode);

my $GH = ($ENV{GH_BUILDDIR} || '.') . '/grasshopper';
plan skip_all => "no client at $GH" unless -x $GH;

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

# --- spool files with memory replay; old ones too --------------------------

my $closed = do {
	my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Proto => 'tcp', Listen => 1) or die "listen: $!";
	my $port = $sock->sockport;
	close $sock;
	"http://127.0.0.1:$port";
};
$r = gh(args => ['-i', '0.1', '-q', 'perl', '-e', sprintf($busy, 0.3)],
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

open my $fh, '>', "$tmp/old.jsonl" or die;
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

# --- the requests are version 1's -------------------------------------------

# The tracker refuses unknown fields (400): it took every request of every
# run above, so none carried mem_usage, tags or the command's resources.
my @log = split /\n/, slurp($s->dir . '/access.log');
my @client = grep { m{"(?:POST|GET) /api/v1/test(?:/\d+(?:/usage|/stop)?)?"} } @log;
ok((grep { m{"POST /api/v1/test/\d+/usage" 2} } @client) && (grep { m{"POST /api/v1/test/\d+/stop" 2} } @client),
	'the client created, fed and stopped tests (' . scalar(@client) . ' requests)');
my @refused = grep { /" [45]\d\d / } @client;
is(scalar @refused, 0, 'and the tracker refused none of them') or diag join "\n", @refused;

my $token = $u->token;
ok(!grep({ index($_, $token) >= 0 } @outputs), 'the token never appears in any output');
ok(!grep({ /Sanitizer|runtime error:/ } @outputs), 'no sanitizer report from grasshopper');

$s->stop;
done_testing;
