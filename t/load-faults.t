# Load and faults together (issue 6, "Load and faults"; SPEC 3 and 5):
# 60 s of mixed load from forked clients (posters of single samples and
# small batches, readers) while the test SIGKILLs a random worker every
# 5 s, restarts PostgreSQL once (pg_ctl restart -m fast) and reloads nginx
# once (SIGHUP to its master), with the real grasshopper client running
# through it all.  Clients retry the very same sample (same timestamp) on
# any non-2xx answer or connection error.  Afterwards: the pool is back to
# full size; every test holds exactly the samples that got a 2xx (none
# lost, none doubled); the client's count equals the tracker's; not one
# 5xx and no 4xx at all; and no worker leaks: after the load, three equal
# rounds of 8 000 mixed requests from 16 clients, and no worker's RSS grows
# from the end of the second to the end of the third by more than
# $RSS_SLACK_KIB KiB (the first rounds bring every thread, malloc arena and
# thread cache into use; the last would show what a leak adds: 64 bytes a
# request).
#
# No 5xx, through every fault: a request on a worker that is killed under
# it is tried again by nginx on a fresh connection (GETs, and sample POSTs,
# which are idempotent: nginx/grasshopper.conf.in), and a request that
# meets the restarting database waits for it (TRACKER_DB_WAIT).  Connection
# errors between a client and nginx (nginx's reload closes idle keep-alive
# connections, and HTTP::Tiny does not resend a POST) are counted apart:
# the client resends.  The RSS check is skipped under a sanitizer (ASan,
# TSan) or a wrapper (valgrind), whose own allocators make RSS meaningless; LSan and
# valgrind look for leaks at teardown instead.
use strict;
use warnings;

use HTTP::Tiny;
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Client qw(client_bin gh_run);
use GH::Stack qw(ts now_us json_encode json_decode slurp);

my $GH = client_bin();

my $WORKERS = 3;
my $POSTERS = 6;
my $READERS = 2;
my $LOAD_S = 60;            # the load, from its start
my $KILL_EVERY = 5;         # a SIGKILLed worker every 5 s ...
my $KILLS_UNTIL = 50;       # ... until then (the last 10 s have no kill)
my $PG_RESTART_AT = 9;      # within the client's 20 s run
my $NGINX_RELOAD_AT = 15;
my $RETRY_GRACE_S = 20;     # after the load, time to settle the last retry
my $RSS_SLACK_KIB = 512;    # bound on a worker's RSS growth in a round
my $ROUND_CLIENTS = 16;     # a leak-check round: this many clients ...
my $ROUND_EACH = 500;       # ... of this many requests each

# The rounds below send one user's requests as fast as 16 clients can,
# far beyond a real user's rate: no per-user limit here (t/api-limits.t).
my $s = GH::Stack->new(workers => $WORKERS, env => {TRACKER_USER_RATE => 0})->start;
my $asan = $s->tracker_sanitized;
my $wrapped = !!$s->wrapper;
my $tmp = tempdir('gh-load-XXXXXX', TMPDIR => 1, CLEANUP => 1);
# Tests start 10 days ago: the rounds' samples reach 5 days past T0, and
# a sample more than a day ahead of the server's clock is refused.
my $T0 = now_us() - 10 * 86400 * 1_000_000;

# --- users, tests ---------------------------------------------------------

my @users = map { $s->user } 1 .. $POSTERS;
my @tids;
for my $u (@users) {
	my $r = $u->api(POST => 'test', {name => 'load', start_time => ts($T0)});
	is($r->{status}, 201, 'a test for ' . $u->username) or BAIL_OUT('cannot create tests');
	push @tids, $r->{json}{id};
}
my $cu = $s->user;    # the grasshopper client's user
my $wu = $s->user;    # warm-up
my $wtid = $wu->api(POST => 'test', {name => 'warm-up', start_time => ts($T0)})->{json}{id};

# An HTTP client for a forked child: its own connections, a short timeout.
sub http { HTTP::Tiny->new(timeout => $s->scale(10), keep_alive => 1, agent => 'gh-load/1') }
my $URL = $s->url;
sub req {
	my ($h, $token, $method, $path, $body) = @_;
	my %o = (headers => {Authorization => "Bearer $token"});
	if ($body) {
		$o{content} = json_encode($body);
		$o{headers}{'Content-Type'} = 'application/json';
	}
	my $r = $h->request($method, "$URL/api/v1/$path", \%o);
	$r->{json} = eval { json_decode($r->{content} // '') };
	return $r;
}

sub rss_kib {
	my $st = slurp("/proc/$_[0]/status") // return undef;
	return $st =~ /^VmRSS:\s+(\d+)\s+kB/m ? $1 : undef;
}

# --- warm-up ------------------------------------------------------------------

# A mixed round of requests from $n parallel clients, $each requests each,
# to the warm-up user's test; returns the 2xx count of each client.
my $round_no = 0;
sub round {
	my ($n, $each) = @_;
	my $r0 = ++$round_no;
	return $s->parallel($n, sub {
		my $i = shift;
		my $h = http();
		my $ok = 0;
		for my $k (1 .. $each) {
			my $ts = $T0 + (($r0 * 100 + $i) * 1_000_000 + $k) * 1000;
			my $r = $k % 4 == 0 ? req($h, $wu->token, POST => "test/$wtid/usage",
					{cpu_usage => 0.4, timestamp => ts($ts)})
				: $k % 4 == 1 ? req($h, $wu->token, POST => "test/$wtid/usage",
					[map { {cpu_usage => 0.7, timestamp => ts($ts + $_ * 10 + 500)} } 1 .. 8])
				: $k % 4 == 2 ? req($h, $wu->token, GET => "test/$wtid")
				: req($h, $wu->token, GET => "test/$wtid/usage?limit=50");
			$ok++ if $r->{success};
		}
		return $ok;
	});
}
is_deeply([round(3, 200)], [200, 200, 200], '600 warm-up requests, all 2xx');

# --- the load ---------------------------------------------------------------

my $t_start = time;
my $load_end = $t_start + $LOAD_S;
my $hard_end = $load_end + $s->scale($RETRY_GRACE_S);
my %kids;    # pid => [kind, index, result file]

# Classify an answer into the child's tallies; returns 1 for a 2xx.
sub tally {
	my ($st, $r) = @_;
	my $code = $r->{status};
	if ($code == 599) {    # HTTP::Tiny: connection error or timeout
		$st->{conn_errors}++;
		return 0;
	}
	$st->{status}{$code}++;
	return 1 if $code =~ /^2/;
	if ($code >= 500) {
		my $ct = $r->{headers}{'content-type'} // '';
		push @{ $st->{bad_5xx} }, sprintf '%.1f s: %d [%s] %s', time - $t_start, $code, $ct,
			substr($r->{content} // '', 0, 200);
	} else {
		push @{ $st->{bad_4xx} }, "$code " . substr($r->{content} // '', 0, 200);
	}
	return 0;
}

sub child {
	my ($kind, $i, $code) = @_;
	my $out = "$tmp/$kind-$i.json";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		$SIG{$_} = 'DEFAULT' for qw(INT TERM);
		my $res = eval { $code->() } || {died => "$@"};
		open my $fh, '>', $out or POSIX::_exit(1);
		print $fh json_encode($res);
		close $fh;
		POSIX::_exit(0);
	}
	$kids{$pid} = [$kind, $i, $out];
}

for my $i (0 .. $POSTERS - 1) {
	child(poster => $i, sub {
		srand($$ ^ time);
		my ($u, $tid) = ($users[$i], $tids[$i]);
		my $h = http();
		my %st = (requests => 0, retries => 0, acked => 0, new => 0, unresolved => 0,
			shape_errors => 0, samples => 0, retried_samples => 0);
		my $seq = 0;
		while (time < $load_end && $seq < 50_000) {
			my $n = rand() < 0.5 ? 1 : 2 + int rand 19;
			my @xs = map { {cpu_usage => int(rand 1000) / 1000,
				timestamp => ts($T0 + 1_000_000 + ++$seq * 1000)} } 1 .. $n;
			my $body = $n == 1 && rand() < 0.8 ? $xs[0] : \@xs;    # a batch of 1 sometimes
			my ($done, $try_n) = (0, 0);
			for (my $try = 0; time < $hard_end; $try++) {
				$try_n++;
				$st{retries}++ if $try;
				$st{requests}++;
				my $r = req($h, $u->token, POST => "test/$tid/usage", $body);
				if (tally(\%st, $r)) {
					my $j = $r->{json} || {};
					if (ref $body eq 'ARRAY') {
						$st{shape_errors}++ unless $r->{status} == 200
							&& ($j->{received} // -1) == $n && defined $j->{stored};
						$st{new} += $j->{stored} // 0;
					} else {
						$st{shape_errors}++ unless $r->{status} =~ /^20[01]$/
							&& defined $j->{above_threshold};
						$st{new}++ if $r->{status} == 201;
					}
					$done = 1;
					last;
				}
				sleep 0.05 + rand 0.1;
			}
			$st{samples} += $n;
			$st{retried_samples} += $n if $done && $try_n > 1;
			if ($done) { $st{acked} += $n } else { $st{unresolved} += $n; last }
		}
		$st{last_seq} = $seq;
		return \%st;
	});
}
for my $i (0 .. $READERS - 1) {
	child(reader => $i, sub {
		my $h = http();
		my %st = (requests => 0);
		my $k = 0;
		while (time < $load_end) {
			my $j = $k++ % @users;
			my ($u, $tid) = ($users[$j], $tids[$j]);
			my $r = $k % 3 == 0 ? req($h, $u->token, GET => "test/$tid")
				: $k % 3 == 1 ? req($h, $u->token, GET => 'test?limit=20')
				: req($h, $u->token, GET => "test/$tid/usage?limit=200");
			$st{requests}++;
			sleep 0.05 + rand 0.1 unless tally(\%st, $r);
			sleep 0.01;
		}
		return \%st;
	});
}

# The faults, from the parent, while the grasshopper client runs.
my (@kills, @respawn_pools, $pg_ok, $reload_ok, $reload_at, $pg_at);
my $faults = sub {
	my $next_kill = $t_start + 2.5;
	my ($pg_done, $ng_done);
	while (time < $load_end) {
		my $now = time;
		if (!$pg_done && $now >= $t_start + $PG_RESTART_AT) {
			$pg_done = 1;
			$pg_at = $now - $t_start;
			$pg_ok = $s->restart_postgres('fast');
		} elsif (!$ng_done && $wrapped) {
			$ng_done = 1;    # see the reload's test below
		} elsif (!$ng_done && $now >= $t_start + $NGINX_RELOAD_AT) {
			$ng_done = 1;
			$reload_at = $now - $t_start;
			$reload_ok = $s->reload_nginx;
		} elsif ($now >= $next_kill && $now < $t_start + $KILLS_UNTIL) {
			$next_kill += $KILL_EVERY;
			my @w = $s->worker_pids;
			my $victim = $w[int rand @w];
			if ($victim && kill 'KILL', $victim) {
				$s->wait_gone(5, $victim);
				push @kills, $victim;
				my @back = $s->wait_workers($WORKERS, 5);
				push @respawn_pools, scalar(grep { $_ != $victim } @back);
			}
		}
		sleep 0.05;
	}
};

my $run = gh_run(bin => $GH, tmp => $tmp, server => $URL, token => $cu->token,
	spool => "$tmp/spool", args => ['-i', '0.1', '--', 'sleep', '20'],
	during => $faults);

# The children stop by themselves; do not wait forever.
my %res;
my $wait_until = $hard_end + $s->scale(15);
while (%kids && time < $wait_until) {
	my $pid = waitpid -1, WNOHANG;
	if ($pid > 0 && $kids{$pid}) {
		my ($kind, $i, $out) = @{ delete $kids{$pid} };
		$res{$kind}[$i] = eval { json_decode(slurp($out) // '') } || {died => 'no result'};
	} else {
		sleep 0.1;
	}
}
ok(!%kids, 'every load process ended by itself') or do {
	kill 'KILL', keys %kids;
	waitpid $_, 0 for keys %kids;
};
my $elapsed = time - $t_start;

# --- the faults happened -------------------------------------------------------

ok($pg_ok, sprintf 'PostgreSQL restarted (pg_ctl restart -m fast) at %.1f s', $pg_at // -1);
# Not under valgrind: with workers that slow, the reload always finds
# requests that nginx is retrying after a worker's SIGKILL, and nginx 1.22's
# old worker process has once exited with such a connection still open
# ("[alert] open socket left in connection", which fails the teardown).
# Native runs (script/test, distcheck) reload as always.
SKIP: {
	skip 'no nginx reload under valgrind (see above)', 1 if $wrapped;
	ok($reload_ok, sprintf 'nginx reloaded (SIGHUP to its master) at %.1f s', $reload_at // -1);
}
ok(@kills >= 6, scalar(@kills) . ' workers SIGKILLed');
is_deeply(\@respawn_pools, [($WORKERS) x @kills],
	"after each kill the pool was back to $WORKERS within 5 s, a new worker in place");
my @end = $s->wait_workers($WORKERS, 5);
is(scalar @end, $WORKERS, "the pool is at full size ($WORKERS) after the load");
ok($s->wait_healthy(10), 'and healthy');

# --- nothing lost, nothing doubled ----------------------------------------

my %db = map { my ($t, $n, $d) = split /\|/; ($t => [$n, $d]) } split /\n/, $s->psql(
	'SELECT test_id, count(*), count(DISTINCT ts) FROM usage GROUP BY test_id');
my %agg = map { my ($t, $n) = split /\|/; ($t => $n) } split /\n/, $s->psql(
	'SELECT id, samples FROM tests');
my (%total, %codes);
sub n5xx { my $st = $_[0]{status} || {}; my $n = 0; $n += $st->{$_} for grep { $_ >= 500 } keys %$st; $n }
for my $i (0 .. $POSTERS - 1) {
	my $p = $res{poster}[$i] || {died => 'missing'};
	my $tid = $tids[$i];
	ok(!$p->{died}, "poster $i ran to its end") or diag $p->{died};
	my ($n, $distinct) = @{ $db{$tid} || [0, 0] };
	is($p->{unresolved} // -1, 0, "poster $i: every sample got a 2xx in the end");
	is($n, $p->{acked}, "poster $i: test $tid stores exactly the $p->{acked} samples that got a 2xx");
	is($distinct, $n, "poster $i: no timestamp twice");
	# An attempt can store its samples and lose its answer (its worker
	# killed after the commit, its database connection lost before the
	# commit was confirmed); the retry (ours, nginx's or the tracker's,
	# the latter two unseen here) then reports them as repeats. So the
	# answers' "new" counts may fall short of the stored count, never
	# exceed it.
	ok($p->{new} <= $n, "poster $i: the 2xx answers reported $p->{new} new samples "
		. "(stored $n, $p->{retried_samples} resent by the poster)");
	is($agg{$tid}, $n, "poster $i: the test's sample count agrees");
	is($p->{shape_errors}, 0, "poster $i: every 2xx had the expected body");
	$total{$_} += $p->{$_} // 0 for qw(requests retries acked conn_errors new retried_samples);
	$codes{$_} += $p->{status}{$_} for keys %{ $p->{status} || {} };
	is(n5xx($p), 0, "poster $i: not one 5xx") or diag join "\n", grep defined,
		@{ $p->{bad_5xx} || [] }[0 .. 4];
	ok(!@{ $p->{bad_4xx} || [] }, "poster $i: no 4xx")
		or diag join "\n", grep defined, @{ $p->{bad_4xx} }[0 .. 4];
}
for my $i (0 .. $READERS - 1) {
	my $p = $res{reader}[$i] || {died => 'missing'};
	ok(!$p->{died}, "reader $i ran to its end") or diag $p->{died};
	$total{reads} += $p->{requests} // 0;
	$total{conn_errors} += $p->{conn_errors} // 0;
	$codes{$_} += $p->{status}{$_} for keys %{ $p->{status} || {} };
	is(n5xx($p), 0, "reader $i: not one 5xx") or diag join "\n", grep defined,
		@{ $p->{bad_5xx} || [] }[0 .. 4];
	ok(!@{ $p->{bad_4xx} || [] }, "reader $i: no 4xx")
		or diag join "\n", grep defined, @{ $p->{bad_4xx} }[0 .. 4];
}

# --- the grasshopper client -------------------------------------------------

is($run->{status}, 0, 'grasshopper exited 0') or diag $run->{stderr};
my ($cid, $ccount) = $run->{stderr} =~ /^grasshopper: test (\d+): .*, (\d+) samples?, exit 0,/m;
ok($cid, 'its summary names the test') or diag $run->{stderr};
ok(!grep({ /not delivered|saved in/ } $run->{stderr}), 'it spooled nothing')
	or diag $run->{stderr};
if ($cid) {
	my ($n, $distinct) = @{ $db{$cid} || [0, 0] };
	is($ccount, $n, "its count ($ccount) equals the tracker's for test $cid");
	is($distinct, $n, '... no timestamp twice');
	ok($n >= 150, "... about 20 s at 0.1 s ($n samples)");
	my $t = $cu->api(GET => "test/$cid")->{json} || {};
	ok(defined $t->{end_time} && !$t->{active}, '... and the test is stopped');
}

# --- memory ------------------------------------------------------------------

# Three equal rounds on the workers left after the load (no more kills):
# the first two bring every thread, malloc arena and thread cache into use
# (RSS still settles by a few hundred KiB in the second), so what the third
# adds is what a leak would. Not under a sanitizer or valgrind, whose
# allocators make RSS meaningless (they look for leaks at teardown).
SKIP: {
	skip 'RSS is meaningless under a sanitizer or a wrapper', 2 + @end if $asan || $wrapped;
	my @r0 = round($ROUND_CLIENTS, $ROUND_EACH);
	my @r1 = round($ROUND_CLIENTS, $ROUND_EACH);
	my %rss1 = map { $_ => rss_kib($_) } @end;
	my @r2 = round($ROUND_CLIENTS, $ROUND_EACH);
	my %rss2 = map { $_ => rss_kib($_) } @end;
	my $total_round = $ROUND_CLIENTS * $ROUND_EACH;
	is_deeply([@r0, @r1, @r2], [($ROUND_EACH) x (3 * $ROUND_CLIENTS)],
		"three rounds of $total_round mixed requests, all 2xx");
	is_deeply([$s->worker_pids], \@end, '... served by the same workers');
	diag 'RSS of the workers after rounds 2 / 3 (KiB): ' . join ', ',
		map { "$_=" . ($rss1{$_} // '?') . '/' . ($rss2{$_} // '?') } @end;
	for my $pid (@end) {
		my $grow = ($rss2{$pid} // 1e9) - ($rss1{$pid} // 0);
		ok($grow <= $RSS_SLACK_KIB, sprintf 'worker %d: RSS %d KiB after round 3, %+d KiB '
			. 'over round 2 (bound %d)', $pid, $rss2{$pid} // -1, $grow, $RSS_SLACK_KIB);
	}
}

my $n5xx = 0;
$n5xx += $codes{$_} for grep { $_ >= 500 } keys %codes;
diag sprintf 'load: %.1f s; %d POSTs (%d retries), %d samples acknowledged (%d reported new, '
	. '%d in retried requests), %d reads; '
	. 'connection errors %d; statuses: %s; %d kills, pg restart at %.1f s, nginx reload at %.1f s',
	$elapsed, $total{requests}, $total{retries}, $total{acked}, $total{new},
	$total{retried_samples}, $total{reads},
	$total{conn_errors} // 0, join(' ', map { "$_=$codes{$_}" } sort keys %codes),
	scalar @kills, $pg_at // -1, $reload_at // -1;
ok($total{acked} > 1000, "a real load: $total{acked} samples acknowledged");

$s->stop;
done_testing;
