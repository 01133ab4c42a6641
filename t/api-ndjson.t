# Usage read-back as NDJSON (SPEC 6.3): content negotiation, each line the
# JSON answer's sample, paging, errors before the first byte, a failure
# mid-stream cut short, and a test of a million samples streamed with the
# worker's memory watched.
use strict;
use warnings;

use HTTP::Tiny;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep);
use Test::More;
use GH::Stack qw(is_error ts parse_ts json_decode slurp);

my $s = GH::Stack->new(workers => 1, env => {TRACKER_USER_RATE => 0})->start;
my $u = $s->user;
my $bob = $s->user;
my $S0 = parse_ts('2024-06-01T00:00:00Z');
my $SEC = 1_000_000;
my $NDJSON = 'application/x-ndjson';

sub new_test {
	my ($who) = @_;
	my $r = ($who // $u)->api(POST => 'test', {start_time => ts($S0)});
	die "create test: $r->{status} $r->{content}" unless $r->{status} == 201;
	return $r->{json}{id};
}
sub get { my ($id, $q, $accept) = @_; $u->api(GET => "test/$id/usage" . ($q // ''), undef,
	defined $accept ? (Accept => $accept) : ()) }
sub ctype { lc($_[0]{headers}{'content-type'} // '') }
# The raw text of each sample object of a JSON answer (they hold no
# nested objects).
sub json_samples {
	my ($r) = @_;
	my ($arr) = $r->{content} =~ /"samples":\[(.*)\]\}\n\z/s or return undef;
	return [split /(?<=\}),(?=\{)/, $arr];
}
sub lines { my $c = shift; return undef if length $c && $c !~ /\n\z/; [split /\n/, $c] }

# --- a small test, line by line the JSON answer ----------------------------

my $t1 = new_test();
my @cpu = (0, 1, 0.5, 0.5000001, 0.1, 0.123456789012345, 1e-7, 0.97, 0.33, 0.25);
my @batch = map { {cpu_usage => $cpu[$_ % @cpu], timestamp => ts($S0 + $_ * $SEC + ($_ % 3) * 250_000)} } 1 .. 25;
is($u->api(POST => "test/$t1/usage", \@batch)->{status}, 200, 'small test: 25 samples stored');

my $json = get($t1, '?limit=10000');
my $want = json_samples($json);
is(scalar @{ $want // [] }, 25, 'JSON: 25 samples');
my $r = get($t1, '', $NDJSON);
is($r->{status}, 200, 'NDJSON: 200');
is(ctype($r), $NDJSON, 'NDJSON: Content-Type application/x-ndjson');
ok(!defined $r->{headers}{'content-length'}, 'NDJSON: streamed, no Content-Length');
is_deeply(lines($r->{content}), $want, 'NDJSON: each line is the JSON answer\'s sample, byte for byte, "\n" after each');
ok((grep { my $o = json_decode($_); ref $o eq 'HASH' } @{ lines($r->{content}) }) == 25,
	'NDJSON: every line parses as a JSON object');

# --- paging: after and limit as for JSON ----------------------------------

my $mid = parse_ts(json_decode($want->[9])->{timestamp});
for my $q ('?limit=1', '?limit=10', '?limit=25', '?limit=10000', '?after=' . ts($mid),
	'?after=' . ts($mid) . '&limit=3', '?after=' . ts($S0 + 100 * $SEC),
	'?after=' . ts($S0 - $SEC) . '&limit=7') {
	my $j = json_samples(get($t1, $q));
	is_deeply(lines(get($t1, $q, $NDJSON)->{content}), $j, "NDJSON$q: the lines of JSON$q ("
		. scalar(@$j) . ')');
}
is_error(get($t1, '?limit=0', $NDJSON), 400, 'invalid_field', 'NDJSON limit=0: 400 JSON error');
is_error(get($t1, '?limit=10001', $NDJSON), 400, 'invalid_field', 'NDJSON limit=10001: 400');
is_error(get($t1, '?limit=abc', $NDJSON), 400, 'invalid_field', 'NDJSON limit=abc: 400');
is_error(get($t1, '?after=yesterday', $NDJSON), 400, 'invalid_field', 'NDJSON after=yesterday: 400');

# --- an empty test ---------------------------------------------------------

my $t0 = new_test();
$r = get($t0, '', $NDJSON);
is($r->{status}, 200, 'empty test: 200');
is(ctype($r), $NDJSON, 'empty test: NDJSON content type');
is($r->{content}, '', 'empty test: empty body');
$r = get($t1, '?after=' . ts($S0 + 100 * $SEC), $NDJSON);
is("$r->{status} $r->{content}", '200 ', 'nothing after `after`: 200, empty body');

# --- who may read ----------------------------------------------------------

my $tb = new_test($bob);
is_error(get($tb, '', $NDJSON), 404, 'not_found', "another user's test: 404 JSON error");
is_error(get(999_999_999, '', $NDJSON), 404, 'not_found', 'no such test: 404');
is_error(get('abc', '', $NDJSON), 404, 'not_found', 'a malformed id: 404');
is_error($s->api(GET => "test/$t1/usage", undef, Accept => $NDJSON), 401, 'unauthorized',
	'no token: 401 JSON error');
is_error($s->api(GET => "test/$t1/usage", undef, Accept => $NDJSON, Authorization => 'Bearer x.y.z'),
	401, 'unauthorized', 'a forged token: 401');

# --- content negotiation ---------------------------------------------------

my %accept = (
	'application/x-ndjson' => 'ndjson',
	'APPLICATION/X-NDJSON' => 'ndjson',
	'application/x-ndjson; charset=utf-8' => 'ndjson',
	'text/csv' => 'csv',
	'text/csv;charset=utf-8' => 'csv',
	'application/json' => 'json',
	'*/*' => 'json',
	'application/*' => 'json',
	'' => 'json',
	'text/html' => 'json',
	'application/x-ndjsonx' => 'json',
	'application/x-ndjson;q=0' => 'json',
	'application/x-ndjson;q=0.0, text/csv' => 'csv',
	'text/html, application/x-ndjson;q=0.5' => 'ndjson',
	'application/x-ndjson, application/json' => 'ndjson',
	'application/json, application/x-ndjson' => 'json',
	'text/csv, application/x-ndjson' => 'csv',
	'application/x-ndjson, text/csv' => 'ndjson',
	'*/*, application/x-ndjson' => 'json',
	' , ,,application/x-ndjson' => 'ndjson',
	('x' x 4000) . ', application/x-ndjson' => 'ndjson',
	(', ' x 1000) => 'json',
	'text/csv;q=0, ;;, application/x-ndjson' => 'ndjson',
);
for my $a (sort keys %accept) {
	my $r = get($t1, '?limit=3', $a);
	my $got = $r->{status} != 200 ? "status $r->{status}"
		: ctype($r) eq $NDJSON ? 'ndjson'
		: ctype($r) =~ m{^text/csv} ? 'csv'
		: ctype($r) =~ m{^application/json} && $r->{json} ? 'json' : ctype($r);
	is($got, $accept{$a}, 'Accept: ' . (length $a > 60 ? substr($a, 0, 20) . '... (' . length($a) . ' bytes)' : "'$a'")
		. " gives $accept{$a}");
}
$r = get($t1, '?limit=3', 'text/csv');
like($r->{content}, qr/\Atimestamp,cpu_usage,above_threshold\r\n(?:[^\r\n]+\r\n){3}\z/,
	'CSV (streamed now): header and 3 rows as before');

# --- a million samples, streamed -------------------------------------------

# Straight into the storage usage_read reads (schema/004), as the API's
# batches of 1000 would take minutes: usage_chunk rows of chunk_size()
# samples, one a second from $S0; cpu (i % 101) / 100. (The test's
# figures are not kept: only the samples are read here.)
sub fill {
	my ($id, $n, $from) = @_;
	$s->psql("INSERT INTO usage_chunk (test_id, first_ts, last_ts, ts, cpu) "
		. "SELECT $id, min(t), max(t), array_agg(t ORDER BY t), array_agg(c ORDER BY t) "
		. "FROM (SELECT i, '" . ts($S0) . "'::timestamptz + i * interval '1 second' AS t, "
		. "(i % 101) / 100.0::float8 AS c FROM generate_series($from, $from + $n - 1) i) s "
		. "GROUP BY i / chunk_size()");
}

# valgrind is some 50 times slower: a smaller test still spans pages.
my $N = $s->wrapper ? 25_000 : 1_000_000;
my $big = new_test();
fill($big, $N, 0);

my $rss_ok = !$s->wrapper && !$s->tracker_sanitized;
my ($worker) = $s->worker_pids;
sub status_kib {
	my ($field) = @_;
	open my $fh, '<', "/proc/$worker/status" or return 0;
	local $/;
	return <$fh> =~ /^$field:\s+(\d+)\s+kB/m ? $1 : 0;
}

# peak_rss($code): run $code while a child samples the worker's VmRSS
# every few milliseconds; → the peak seen (KiB) and $code's result.
sub peak_rss {
	my ($code) = @_;
	my $file = $s->dir . '/peak-rss';
	unlink $file, "$file.stop";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my $peak = 0;
		until (-e "$file.stop") {
			my $r = status_kib('VmRSS');
			$peak = $r if $r > $peak;
			select undef, undef, undef, 0.002;
		}
		open my $fh, '>', $file or POSIX::_exit(1);
		print $fh $peak;
		close $fh;
		POSIX::_exit(0);
	}
	my $res = $code->();
	open my $fh, '>', "$file.stop";
	close $fh;
	waitpid $pid, 0;
	open $fh, '<', $file or die "no peak: $!";
	return (scalar <$fh>, $res);
}

# Bring the worker's threads, connection and arenas into use first.
get($big, '?limit=100', $NDJSON) for 1 .. 3;
sleep 0.2;    # the last request's malloc_trim done
my $idle = status_kib('VmRSS');

# Read it as it comes: every line whole and in order.
my ($count, $first, $prev, $bad, $rest) = (0, undef, '', 0, '');
my $http = HTTP::Tiny->new(timeout => $s->scale(120));
my ($peak, $res) = peak_rss(sub { $http->request(GET => $s->url . "/api/v1/test/$big/usage", {
	headers => {Authorization => 'Bearer ' . $u->token, Accept => $NDJSON},
	data_callback => sub {
		my @l = split /\n/, $rest . $_[0], -1;
		$rest = pop @l;
		for my $l (@l) {
			my ($t) = $l =~ /\A\{"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
				(?:,"[a-z_]+":(?:-?[0-9.]+(?:e-?\d+)?|true|false|null))*\}\z/x;
			$bad++ unless defined $t && $t gt $prev;
			$first //= $t;
			$prev = $t // $prev;
			$count++;
		}
	},
}) });
is($res->{status}, 200, "$N samples as NDJSON: 200, the stream complete");
is($count, $N, "$N lines");
is($rest, '', 'the last line ends in "\n"');
is($bad, 0, 'every line a sample object, stamped after the one before');
is($first, ts($S0) =~ s/\.0+Z/Z/r, 'the first timestamp');
is($prev, ts($S0 + ($N - 1) * $SEC) =~ s/\.0+Z/Z/r, 'the last timestamp');
my $line = get($big, '?after=' . ts($S0 + 99 * $SEC) . '&limit=1', $NDJSON)->{content};
is($line, json_samples(get($big, '?after=' . ts($S0 + 99 * $SEC) . '&limit=1'))->[0] . "\n",
	'a line from the middle: the JSON sample');

# The JSON answer, one page of 10000 at most, for comparison.
sleep 0.2;    # the last request's malloc_trim done
my $idle2 = status_kib('VmRSS');
my ($peak_json, $rj) = peak_rss(sub { get($big, '?limit=10000') });
is($rj->{status}, 200, 'JSON: 10000 samples');
diag sprintf 'worker RSS (KiB): idle %d; NDJSON of %d samples: peak %d (+%d); '
	. 'idle %d; JSON of 10000 samples: peak %d (+%d)',
	$idle, $N, $peak, $peak - $idle, $idle2, $peak_json, $peak_json - $idle2;
SKIP: {
	skip 'RSS is meaningless under a sanitizer or a wrapper', 1 unless $rss_ok;
	cmp_ok($peak - $idle, '<=', 4 * 1024, "NDJSON of $N samples: RSS within 4 MiB of idle");
}

# --- a failure mid-stream --------------------------------------------------

# A sample at 'infinity' (only the database could hold one) makes
# usage_list fail on the page that holds it, after a first page of 10000
# has been sent.
my $cut = new_test();
fill($cut, 15_000, 0);
$s->psql("INSERT INTO usage_chunk (test_id, first_ts, last_ts, ts, cpu) "
	. "VALUES ($cut, 'infinity', 'infinity', '{infinity}', '{0.5}')");
$r = get($cut, '', $NDJSON);
is($r->{status}, 599, 'the database failing mid-stream: the client sees the answer cut short');
# As it comes on the wire (nginx sends what it has, then closes).
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Timeout => 30)
	or die "connect: $!";
print $sock "GET /api/v1/test/$cut/usage HTTP/1.1\r\nHost: x\r\nAccept: $NDJSON\r\n"
	. 'Authorization: Bearer ' . $u->token . "\r\nConnection: close\r\n\r\n";
my $wire = do { local $/; local $SIG{ALRM} = sub { die "timeout\n" }; alarm $s->scale(60); my $w = <$sock>; alarm 0; $w };
like($wire, qr{\AHTTP/1\.1 200 }, 'cut short: the status was already 200');
like($wire, qr{\r\nTransfer-Encoding: chunked\r\n}i, 'cut short: sent chunked');
unlike($wire, qr/\r\n0\r\n\r\n\z/, 'cut short: without the terminating chunk');
my $lines = () = $wire =~ /"timestamp"/g;
cmp_ok($lines, '<=', 10_000, "cut short: $lines lines came, no more than the first page");
is(get($cut, '?limit=100', $NDJSON)->{status}, 200, 'the worker serves the next request');
is_deeply([$s->worker_pids], [$worker], 'the same worker');
my $log = slurp($s->dir . '/tracker.log') // '';
like($log, qr/usage of test $cut: reading a page failed mid-stream/, 'cut short: logged');

$s->stop;
done_testing;
