# Memory is bounded by what is valid (SPEC 6.1): on every route that reads
# a body, public or authenticated, with a token and without, a 1 MiB body
# of empty objects or arrays is refused (400) before json-c builds it; a
# body just past the route's value budget is 400 invalid_json naming it,
# one just at it is not refused for its size; many such bodies at once
# leave every worker within a few MiB of its idle size, while normal
# requests are answered; and after a burst of valid 1000-sample batches a
# worker's memory returns near its idle level (malloc_trim after large
# requests, fcgi/request.c).
#
# Before the value budget, three concurrent 1 MiB bodies of [{},{},...] to
# POST /auth grew a worker from 4 MiB to 776 MiB, and it kept 719 MiB.
#
# The RSS checks are skipped under a sanitizer or valgrind, whose
# allocators make RSS meaningless (as in t/load-faults.t); every status
# check runs there too.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use GH::Stack qw(is_error ts now_us slurp);

my $WORKERS = 2;
my $AT_ONCE = 12;        # hostile bodies in flight together ...
my $ROUNDS = 3;          # ... for this many rounds
my $IDLE_SLACK_KIB = 4096;     # after a burst: at most this over idle
my $PEAK_SLACK_KIB = 32768;    # during one (12 x 1 MiB bodies in flight)

my $s = GH::Stack->new(workers => $WORKERS)->start;
my $rss_ok = !$s->tracker_sanitized && !$s->wrapper;

my $u = $s->user;
my $tid = $u->api(POST => 'test', {name => 'hostile'})->{json}{id};
my $T0 = now_us() - 3600 * 1_000_000;

# The routes that read a body, and the values each may hold (the route
# table of fcgi/request.c): [path, budget, needs a token, a body at it].
my @routes = (
	['users', 16, 0],
	['auth', 16, 0],
	['test', 40, 1],
	["test/$tid/usage", 4001, 1],
	["test/$tid/stop", 16, 1],
);

# A JSON object of $n - 1 members: $n values.
sub object_of { my $n = shift; '{' . join(',', map { qq("k$_":1) } 1 .. $n - 1) . '}' }
# The largest valid batch shape: 1000 samples of 3 fields (mem_usage is
# SPEC 6.3's), 4001 values; with $extra more elements. Stamped in the first
# second of the hour the test's samples span.
sub batch_of {
	my $extra = shift;
	my @el = map { sprintf '{"cpu_usage":0.5,"timestamp":"%s","mem_usage":0.5}',
		ts($T0 + $_ * 1000) } 1 .. 1000;
	push @el, ('1') x $extra;
	return '[' . join(',', @el) . ']';
}
sub at_budget { my ($path, $n) = @_; $path =~ /usage$/ ? batch_of(0) : object_of($n) }
sub past_budget { my ($path, $n) = @_; $path =~ /usage$/ ? batch_of(1) : object_of($n + 1) }

# 1 MiB (nginx's client_max_body_size) of empty objects, or arrays.
my $objects = '[' . join(',', ('{}') x 349_000) . ']';
my $arrays = '[' . join(',', ('[]') x 349_000) . ']';
ok(length $objects <= 1048576 && length $objects > 1040000,
	sprintf 'a bomb is %d bytes of 349 000 empty objects', length $objects);

sub post {
	my ($path, $body, $token) = @_;
	my %h = ('Content-Type' => 'application/json');
	$h{Authorization} = "Bearer $token" if $token;
	return $s->api(POST => $path, $body, %h);
}
sub budget_refusal { ($_[0]{json}{message} // '') =~ /more than the \d+ JSON values/ }

# --- one request at a time ------------------------------------------------

for my $r (@routes) {
	my ($path, $budget, $user) = @$r;
	my $name = "POST /api/v1/$path";
	for my $with ($user ? (1, 0) : (0)) {
		my $tok = $with ? $u->token : undef;
		my $how = $user ? ($with ? ' with a token' : ' without a token') : '';
		for ([objects => $objects], [arrays => $arrays]) {
			my $res = post($path, $_->[1], $tok);
			if ($user && !$with) {
				is_error($res, 401, 'unauthorized', "$name$how: 1 MiB of empty $_->[0]: 401");
			} else {
				is_error($res, 400, 'invalid_json', "$name$how: 1 MiB of empty $_->[0]: 400",
					field => "$budget JSON values");
			}
		}
		next if $user && !$with;
		my $res = post($path, past_budget($path, $budget), $tok);
		is_error($res, 400, 'invalid_json', "$name$how: just past its budget of $budget values: 400",
			field => "$budget JSON values");
		$res = post($path, at_budget($path, $budget), $tok);
		ok(!budget_refusal($res) && $res->{status} != 413 && $res->{status} < 500,
			"$name$how: just at its budget: not refused for its size ($res->{status} "
			. ($res->{json}{error} // '') . ')');
	}
}

# --- many at once ---------------------------------------------------------

sub rss_kib {
	my $st = slurp("/proc/$_[0]/status") // return undef;
	return $st =~ /^VmRSS:\s+(\d+)\s+kB/m ? $1 : undef;
}
sub rss_all { my %r = map { $_ => rss_kib($_) // 0 } @_; \%r }
sub fmt { my $r = shift; join ', ', map { "$_=$r->{$_}" } sort keys %$r }

# Bring every thread, arena and connection into use before measuring.
sub warm {
	$s->parallel($AT_ONCE, sub {
		my $i = shift;
		my $ok = 0;
		for my $k (1 .. 20) {
			my $r = $k % 2 ? $u->api(GET => "test/$tid")
				: $u->api(POST => "test/$tid/usage",
					{cpu_usage => 0.5, timestamp => ts($T0 + 2000e6 + $i * 1e6 + $k * 1e3)});
			$ok++ if $r->{status} =~ /^20[01]$/;
		}
		return $ok;
	});
}
warm() for 1 .. 2;
my @pids = $s->worker_pids;
is(scalar @pids, $WORKERS, "$WORKERS workers");
sleep $s->scale(0.5);
my $idle = rss_all(@pids);
diag 'idle RSS (KiB): ' . fmt($idle);

# Sample every worker's RSS until told to stop; the peaks, by pid.
sub watch {
	my ($file, $code) = @_;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my %peak;
		until (-e "$file.stop") {
			for my $p (@pids) {
				my $r = rss_kib($p) // next;
				$peak{$p} = $r if $r > ($peak{$p} // 0);
			}
			sleep 0.005;
		}
		open my $fh, '>', $file or POSIX::_exit(1);
		print $fh join ',', map { "$_=$peak{$_}" } keys %peak;
		close $fh;
		POSIX::_exit(0);
	}
	my @res = $code->();
	open my $fh, '>', "$file.stop";
	close $fh;
	waitpid $pid, 0;
	my %peak = map { split /=/ } split /,/, slurp($file) // '';
	unlink $file, "$file.stop";
	return (\%peak, @res);
}

# The bodies of a round: every route, bombs and just-past bodies, with
# and without a token.
my @hostile;
for my $r (@routes) {
	my ($path, $budget, $user) = @$r;
	push @hostile, [$path, $_, $user ? $u->token : undef] for $objects, $arrays,
		past_budget($path, $budget);
	push @hostile, [$path, $objects, undef] if $user;
}

my $normal_ok = 0;
my ($peak, @got) = watch($s->dir . '/peak-hostile', sub {
	my @all;
	for my $round (1 .. $ROUNDS) {
		# One more client asks normal questions meanwhile.
		push @all, $s->parallel($AT_ONCE + 1, sub {
			my $i = shift;
			if ($i > $AT_ONCE) {
				my @st;
				for my $k (1 .. 10) {
					push @st, $u->api(GET => "test/$tid")->{status};
					push @st, $s->api(GET => 'health')->{status};
				}
				return {normal => \@st};
			}
			my @st;
			for my $k (0 .. 3) {
				my ($path, $body, $tok) = @{ $hostile[($i * 4 + $k + $round) % @hostile] };
				my $r = post($path, $body, $tok);
				push @st, $r->{status};
			}
			return {hostile => \@st};
		});
	}
	return @all;
});
my @hostile_st = map { @{ $_->{hostile} || [] } } grep { ref } @got;
my @normal_st = map { @{ $_->{normal} || [] } } grep { ref } @got;
is(scalar @hostile_st, $ROUNDS * $AT_ONCE * 4, scalar(@hostile_st) . ' hostile bodies sent, '
	. "$AT_ONCE at once");
is_deeply([grep { $_ != 400 && $_ != 401 } @hostile_st], [], 'every one refused with 400 or 401');
is_deeply([grep { $_ != 200 } @normal_st], [], scalar(@normal_st)
	. ' normal requests meanwhile, all answered 200');
is_deeply([$s->worker_pids], \@pids, 'no worker died');
sleep $s->scale(0.5);
my $after = rss_all(@pids);
diag 'hostile burst: RSS peak (KiB): ' . fmt($peak) . '; after: ' . fmt($after);
SKIP: {
	skip 'RSS is meaningless under a sanitizer or a wrapper', 2 * @pids unless $rss_ok;
	for my $p (@pids) {
		cmp_ok(($peak->{$p} // 1e9) - $idle->{$p}, '<=', $PEAK_SLACK_KIB,
			"worker $p: peak RSS during the burst $peak->{$p} KiB, idle $idle->{$p}");
		cmp_ok($after->{$p} - $idle->{$p}, '<=', $IDLE_SLACK_KIB,
			"worker $p: RSS after the burst $after->{$p} KiB, within "
			. "$IDLE_SLACK_KIB KiB of idle");
	}
}

# --- valid batches, many at once --------------------------------------------

my $seq = 0;
($peak, @got) = watch($s->dir . '/peak-batches', sub {
	$s->parallel($AT_ONCE, sub {
		my $i = shift;
		my @st;
		for my $k (1 .. $ROUNDS) {
			my $base = $T0 + ($i * 10 + $k) * 2e6;    # 1 s each, within the hour
			push @st, $u->api(POST => "test/$tid/usage",
				[map { {cpu_usage => 0.25, timestamp => ts($base + $_ * 1000)} } 1 .. 1000])->{status};
		}
		return \@st;
	});
});
my @batch_st = map { @$_ } grep { ref } @got;
is_deeply(\@batch_st, [(200) x ($AT_ONCE * $ROUNDS)],
	$AT_ONCE * $ROUNDS . " valid batches of 1000 samples, $AT_ONCE at once: all 200")
	or diag "statuses: @batch_st";
sleep $s->scale(0.5);
$after = rss_all(@pids);
diag 'valid batches: RSS peak (KiB): ' . fmt($peak) . '; after: ' . fmt($after);
SKIP: {
	skip 'RSS is meaningless under a sanitizer or a wrapper', scalar @pids unless $rss_ok;
	for my $p (@pids) {
		cmp_ok($after->{$p} - $idle->{$p}, '<=', $IDLE_SLACK_KIB,
			"worker $p: RSS after the batches $after->{$p} KiB (peak $peak->{$p}), "
			. "within $IDLE_SLACK_KIB KiB of idle");
	}
}

$s->stop;
done_testing;
