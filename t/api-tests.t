# Tests: create, list, get, stop (SPEC 2 and 3, docs/architecture.md).
use strict;
use warnings;
use utf8;

use Test::More;
use Time::HiRes qw(sleep);
use GH::Stack qw(is_error is_json_ok is_num is_bool fresh ts parse_ts now_us);

my $s = GH::Stack->new->start;
my $alice = $s->user;
my $bob = $s->user;
my $TS_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?Z$/;
my @FIELDS = qw(id name description threshold active start_time end_time duration
	time_above_threshold samples max_cpu_usage mean_cpu_usage);

sub create { $alice->api(POST => 'test', @_) }
sub get { my ($id, $u) = @_; ($u || $alice)->api(GET => "test/$id") }
sub count_tests { $s->psql('SELECT count(*) FROM tests') }

# --- create with defaults -------------------------------------------------------------

my $before = now_us();
my $r = create({});
my $after = now_us();
is_json_ok($r, 201, 'create {}: 201');
my $f = fresh($r);
ok(is_num($f->{id}) && $f->{id} > 0, 'create: id is a positive number');
like($r->{json}{start_time} // '', $TS_RE, 'create: start_time in the response format');
my $st = parse_ts($r->{json}{start_time});
ok(defined $st && $st >= $before - 1_000_000 && $st <= $after + 1_000_000,
	'create: start_time defaults to now');
my $id = $r->{json}{id};
my $start_text = $r->{json}{start_time};

$r = get($id);
is_json_ok($r, 200, 'get: 200');
my $t = fresh($r);
ok(exists $t->{$_}, "test object has '$_'") for @FIELDS;
ok(is_num($t->{id}) && $t->{id} == $id, 'get: id');
is($t->{name}, 'unnamed', 'default name "unnamed"');
is($t->{description}, '', 'default description ""');
ok(is_num($t->{threshold}) && $t->{threshold} == 0.5, 'default threshold 0.5');
ok(is_bool($t->{active}) && $t->{active}, 'active is true');
is($t->{start_time}, $start_text, 'get: start_time as created');
ok(exists $t->{end_time} && !defined $t->{end_time}, 'end_time null while active');
ok(is_num($t->{duration}) && $t->{duration} >= 0 && $t->{duration} < $s->scale(30),
	'duration of a fresh test is a small number');
ok(is_num($t->{time_above_threshold}) && $t->{time_above_threshold} == 0,
	'time_above_threshold 0');
ok(is_num($t->{samples}) && $t->{samples} == 0, 'samples 0');
ok(!defined $t->{max_cpu_usage} && !defined $t->{mean_cpu_usage},
	'max and mean null without samples');

# An empty body means {}.
is_json_ok($alice->api(POST => 'test'), 201, 'create with no body at all');
is_json_ok($alice->api(POST => 'test', ''), 201, 'create with an empty body');

# --- fields ---------------------------------------------------------------------------

$r = create({name => 'build', description => 'make -j2', threshold => 0.25,
	start_time => '2024-03-10T12:00:00Z'});
is_json_ok($r, 201, 'create with every field');
$t = get($r->{json}{id})->{json};
is($t->{name}, 'build', 'name stored');
is($t->{description}, 'make -j2', 'description stored');
is($t->{threshold}, 0.25, 'threshold stored');
ok(($t->{start_time} // '') =~ $TS_RE && parse_ts($t->{start_time}) == parse_ts('2024-03-10T12:00:00Z'),
	'start_time stored') or diag "got $t->{start_time}";

my $odd = qq{<b>"quoted"</b> \\ / \n\t 日本語 ü 😀};
$r = create({name => $odd, description => $odd});
is(get($r->{json}{id})->{json}{name}, $odd, 'name with quotes, escapes and non-ASCII round-trips');

for my $c (['ASCII', 'n'], ['2-byte', 'ü'], ['4-byte', '😀']) {
	my ($what, $ch) = @$c;
	$r = create({name => $ch x 255});
	is($r->{status}, 201, "name of 255 $what characters");
	is(get($r->{json}{id})->{json}{name}, $ch x 255, "... stored whole") if $r->{status} == 201;
	is_error(create({name => $ch x 256}), 400, 'invalid_field',
		"name of 256 $what characters", field => 'name');
	$r = create({description => $ch x 4096});
	is($r->{status}, 201, "description of 4096 $what characters");
	is(get($r->{json}{id})->{json}{description}, $ch x 4096, '... stored whole')
		if $r->{status} == 201;
	is_error(create({description => $ch x 4097}), 400, 'invalid_field',
		"description of 4097 $what characters", field => 'description');
}

for my $ok (0, 1, 0.0001, 0.9999) {
	$r = create({threshold => $ok});
	is($r->{status}, 201, "threshold $ok accepted");
	is(get($r->{json}{id})->{json}{threshold}, $ok, "... stored as $ok") if $r->{status} == 201;
}

my $n0 = count_tests();
for my $k (qw(name description threshold start_time)) {
	is_error(create({$k => undef}), 400, 'invalid_field', "$k null", field => $k);
}
is_error(create({name => 5}), 400, 'invalid_field', 'name as a number', field => 'name');
is_error(create({name => ['a']}), 400, 'invalid_field', 'name as an array', field => 'name');
is_error(create({description => JSON::PP::true}), 400, 'invalid_field',
	'description as a boolean', field => 'description');
is_error(create({threshold => '0.5'}), 400, 'invalid_field', 'threshold as a string',
	field => 'threshold');
is_error(create({start_time => 1700000000}), 400, 'invalid_field', 'start_time as a number',
	field => 'start_time');
is_error(create({treshold => 0.9}), 400, 'invalid_field', 'unknown field "treshold"',
	field => 'treshold');

for my $bad (-0.0001, 1.0001, -1, 2, 1e300) {
	is_error(create({threshold => $bad}), 400, 'invalid_field', "threshold $bad refused",
		field => 'threshold');
}
for my $bad ('1e400', '-1e400', '99999999999999999999') {
	is_error(create(qq({"threshold":$bad})), 400, 'invalid_field', "threshold $bad refused",
		field => 'threshold');
}
for my $bad ('NaN', 'Infinity', '-Infinity') {
	is_error(create(qq({"threshold":$bad})), 400, [qw(invalid_json invalid_field)],
		"threshold $bad refused");
}
is(count_tests(), $n0, 'no refused create stored anything');

# --- start_time parsing ------------------------------------------------------------------

my @good = (
	['2024-03-10T12:00:00Z', '2024-03-10T12:00:00Z'],
	['2024-03-10T12:00:00', '2024-03-10T12:00:00Z'],
	['2024-03-10T12:00:00.123456Z', '2024-03-10T12:00:00.123456Z'],
	['2024-03-10T12:00:00.1Z', '2024-03-10T12:00:00.100000Z'],
	['2024-03-10T12:00:00.000001Z', '2024-03-10T12:00:00.000001Z'],
	['2024-03-10T12:00:00.000000Z', '2024-03-10T12:00:00Z'],
	['2024-03-10T14:30:00+02:30', '2024-03-10T12:00:00Z'],
	['2024-03-10T07:00:00-05:00', '2024-03-10T12:00:00Z'],
	['2024-03-10T12:00:00+00:00', '2024-03-10T12:00:00Z'],
	['2024-03-10T12:00:00-00:00', '2024-03-10T12:00:00Z'],
	['2024-03-10t12:00:00z', '2024-03-10T12:00:00Z'],
	['2024-01-01T01:00:00.5+02:00', '2023-12-31T23:00:00.500000Z'],
	['2024-12-31T23:59:59.999999-00:30', '2025-01-01T00:29:59.999999Z'],
	['2024-02-29T12:00:00Z', '2024-02-29T12:00:00Z'],
	['2000-02-29T00:00:00Z', '2000-02-29T00:00:00Z'],
	['1969-12-31T23:59:59.5Z', '1969-12-31T23:59:59.500000Z'],
	['0001-01-01T00:00:00Z', '0001-01-01T00:00:00Z'],
	['9999-12-31T23:59:59.999999Z', '9999-12-31T23:59:59.999999Z'],
);
for my $g (@good) {
	my ($in, $want) = @$g;
	$r = create({start_time => $in});
	if (is($r->{status}, 201, "start_time '$in' accepted")) {
		my $echo = $r->{json}{start_time} // '';
		ok($echo =~ $TS_RE && parse_ts($echo) == parse_ts($want),
			"... answered as $want") or diag "got $echo";
		is(get($r->{json}{id})->{json}{start_time}, $echo, '... and read back the same');
	}
}
my @bad = ('2023-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2024-13-01T00:00:00Z',
	'2024-00-10T00:00:00Z', '2024-04-31T00:00:00Z', '2024-03-00T00:00:00Z',
	'2024-03-10T24:00:00Z', '2024-03-10T12:60:00Z', '2024-03-10T12:00:60Z',
	'2024-03-10T12:00:00.1234567Z', '2024-03-10T12:00:00.Z', '2024-03-10',
	'2024-03-10T12:00Z', '2024-03-10T12:00:00ZZ', '2024-03-10T12:00:00+0200',
	'2024-03-10T12:00:00+02', '0000-01-01T00:00:00Z', '10000-01-01T00:00:00Z',
	' 2024-03-10T12:00:00Z', '2024-03-10T12:00:00Z ', '2024-3-10T12:00:00Z',
	'2024-03-10 12:00:00Z', '2024-03-10X12:00:00Z', '', 'now', '1700000000',
	'2024-03-10T12:00:00+02:60', '2024-03-10T12:00:00.12a456Z', '-2024-03-10T12:00:00Z',
	'2024-03-10T12:00:00Z+01:00');
for my $in (@bad) {
	is_error(create({start_time => $in}), 400, 'invalid_field', "start_time '$in' refused",
		field => 'start_time');
}
is(count_tests(), $n0 + @good, 'only the accepted start_times created tests');

# --- list: newest first, paging ---------------------------------------------------------

my $carl = $s->user;
my @ids = map { $carl->api(POST => 'test', {name => "c$_"})->{json}{id} } 1 .. 7;
$r = $carl->api(GET => 'test');
is_json_ok($r, 200, 'list: 200');
$f = fresh($r);
is_deeply([map { $_->{id} } @{ $f->{tests} }], [reverse @ids], 'list: newest first');
ok(exists $f->{next} && !defined $f->{next}, 'list: next null on the only page');
my $first = $f->{tests}[0];
ok(!grep({ !exists $first->{$_} } @FIELDS), 'list: elements are whole test objects');
is($first->{name}, 'c7', 'list: element content');

my (@seen, $next, $pages);
my $q = 'test?limit=3';
while (1) {
	$r = $carl->api(GET => $q);
	last unless $r->{status} == 200 && ++$pages <= 5;
	push @seen, [map { $_->{id} } @{ $r->{json}{tests} }];
	$next = $r->{json}{next};
	last unless defined $next;
	$q = "test?limit=3&before=$next";
}
is_deeply(\@seen, [[@ids[6, 5, 4]], [@ids[3, 2, 1]], [$ids[0]]], 'list: pages of 3, 3, 1');
$r = $carl->api(GET => 'test?limit=3');
is($r->{json}{next}, $ids[4], 'list: next is the last id of the page');
$r = $carl->api(GET => "test?limit=3&before=$ids[4]");
is_deeply([map { $_->{id} } @{ $r->{json}{tests} }], [@ids[3, 2, 1]], 'list: before is exclusive');
$r = $carl->api(GET => "test?before=$ids[0]");
is_deeply($r->{json}{tests}, [], 'list: before the oldest gives an empty page');
ok(exists $r->{json}{next} && !defined $r->{json}{next}, '... with next null');
$r = $carl->api(GET => 'test?limit=7');
ok(!defined $r->{json}{next}, 'list: next null when the page holds exactly the rest');
$r = $carl->api(GET => "test?limit=3&before=$ids[3]");
is_deeply([map { $_->{id} } @{ $r->{json}{tests} }], [@ids[2, 1, 0]], 'list: last full page');
ok(!defined $r->{json}{next}, '... has next null');
$r = $carl->api(GET => 'test?limit=1');
is_deeply([map { $_->{id} } @{ $r->{json}{tests} }], [$ids[6]], 'list: limit=1');
$r = $carl->api(GET => 'test?limit=200&before=9223372036854775807');
is_deeply([map { $_->{id} } @{ $r->{json}{tests} }], [reverse @ids],
	'list: limit=200, before=INT64_MAX');
$r = $carl->api(GET => 'test?limit=2&foo=bar&x');
is(scalar @{ $r->{json}{tests} || [] }, 2, 'list: unknown query parameters are ignored');

for my $bad ('limit=0', 'limit=201', 'limit=-1', 'limit=abc', 'limit=', 'limit=1.5',
    'limit=99999999999999999999', 'limit=3x') {
	is_error($carl->api(GET => "test?$bad"), 400, 'invalid_field', "list: $bad refused",
		field => 'limit');
}
for my $bad ('before=abc', 'before=-1', 'before=', 'before=1.5', 'before=99999999999999999999') {
	is_error($carl->api(GET => "test?$bad"), 400, 'invalid_field', "list: $bad refused",
		field => 'before');
}

# default limit 50
my $dora = $s->user;
my @d = map { $dora->api(POST => 'test', {})->{json}{id} } 1 .. 52;
$r = $dora->api(GET => 'test');
is(scalar @{ $r->{json}{tests} || [] }, 50, 'list: 50 tests by default');
is($r->{json}{next}, $d[2], 'list: next after the default page');
$r = $dora->api(GET => "test?before=$d[2]");
is_deeply([map { $_->{id} } @{ $r->{json}{tests} }], [@d[1, 0]], 'list: the rest');
ok(!defined $r->{json}{next}, '... and next null');

# only one's own tests
$r = $bob->api(GET => 'test');
is_deeply($r->{json}{tests}, [], "list: bob sees none of the others' tests");
my $b1 = $bob->api(POST => 'test', {name => 'bob-1'})->{json}{id};
$r = $carl->api(GET => 'test?limit=200');
ok(!grep({ $_->{id} == $b1 } @{ $r->{json}{tests} }), "list: carl does not see bob's test");

# --- 404: the same for every id that is not the caller's ------------------------------------

my $ref = get($b1, $alice);
is_error($ref, 404, 'not_found', "get: another user's test is 404");
my $maxid = $s->psql('SELECT max(id) FROM tests');
my @not_mine = ($b1, $maxid + 1, $maxid + 1000, 'abc', '0', '-1', '+1', "0$id", '00',
	"$id.0", '1e3', ' 1', '0x1', '9223372036854775807', '9223372036854775808',
	'99999999999999999999999', '18446744073709551617', '%C3%A9');
for my $x (@not_mine) {
	for my $req (['GET', "test/$x"], ['GET', "test/$x/usage"],
	    ['POST', "test/$x/usage", {cpu_usage => 0.5}], ['POST', "test/$x/stop", {}]) {
		my ($m, $path, $body) = @$req;
		(my $p = $path) =~ s/ /%20/g;
		$r = $alice->api($m, $p, $body);
		is($r->{status}, 404, "$m $path: 404");
		is($r->{content}, $ref->{content}, "$m $path: the same 404 body");
	}
}
is(get($b1, $bob)->{json}{active} ? 1 : 0, 1, "bob's test was not stopped by alice");
is(get($b1, $bob)->{json}{samples}, 0, "bob's test got no sample from alice");

# --- stop --------------------------------------------------------------------------------

$r = create({start_time => '2024-05-01T10:00:00Z'});
my $sid = $r->{json}{id};
$r = $alice->api(POST => "test/$sid/stop", {end_time => '2024-05-01T10:01:30.25Z'});
is_json_ok($r, 200, 'stop with end_time: 200');
$t = fresh($r);
ok(!grep({ !exists $t->{$_} } @FIELDS), 'stop answers the test');
ok(is_bool($t->{active}) && !$t->{active}, 'stopped: active false');
is($t->{end_time}, '2024-05-01T10:01:30.250000Z', 'stopped: end_time');
ok(is_num($t->{duration}) && $t->{duration} == 90.25, 'stopped: duration 90.25 s')
	or diag "duration $t->{duration}";
is_error($alice->api(POST => "test/$sid/stop", {}), 409, 'already_stopped', 'stop again: 409');
is_error($alice->api(POST => "test/$sid/stop", {end_time => '2024-05-01T10:05:00Z'}), 409,
	'already_stopped', 'stop again with end_time: 409');
is(get($sid)->{json}{end_time}, '2024-05-01T10:01:30.250000Z', 'the end_time did not change');
my $d1 = get($sid)->{json}{duration};
sleep 1.1;
is(get($sid)->{json}{duration}, $d1, 'a stopped test\'s duration does not grow');

$r = create({start_time => '2024-05-01T10:00:00.000001Z'});
$sid = $r->{json}{id};
is_error($alice->api(POST => "test/$sid/stop", {end_time => '2024-05-01T10:00:00Z'}), 400,
	'invalid_field', 'end_time 1 us before start_time: 400', field => 'end_time');
ok(get($sid)->{json}{active}, '... the test is still active');
for my $bad (undef, '', 'yesterday', 5, '2024-05-01T10:00:00.0000001Z') {
	is_error($alice->api(POST => "test/$sid/stop", {end_time => $bad}), 400, 'invalid_field',
		'stop: end_time ' . ($bad // 'null') . ' refused', field => 'end_time');
}
is_error($alice->api(POST => "test/$sid/stop", {end => '2024-05-02T00:00:00Z'}), 400,
	'invalid_field', 'stop: unknown field', field => 'end');
is_error($alice->api(POST => "test/$sid/stop", '[]'), 400, 'invalid_json', 'stop: array body');
ok(get($sid)->{json}{active}, '... the test is still active');
$r = $alice->api(POST => "test/$sid/stop", {end_time => '2024-05-01T12:00:00.000001+02:00'});
is_json_ok($r, 200, 'end_time == start_time (other offset) is allowed');
ok(is_num(fresh($r)->{duration}) && $r->{json}{duration} == 0, '... duration 0');

$r = create({start_time => '2024-05-01T10:00:00.000001Z'});
$r = $alice->api(POST => "test/$r->{json}{id}/stop", {end_time => '2024-05-01T10:00:00.000003Z'});
ok(abs(($r->{json}{duration} // -1) - 0.000002) < 1e-12, 'duration keeps microseconds');

# default end_time: now
$r = create({});
$sid = $r->{json}{id};
my $sstart = parse_ts($r->{json}{start_time});
sleep 0.2;
$before = now_us();
$r = $alice->api(POST => "test/$sid/stop");
$after = now_us();
is_json_ok($r, 200, 'stop without a body: 200');
my $end = parse_ts($r->{json}{end_time} // '');
ok(defined $end && $end >= $before - 1_000_000 && $end <= $after + 1_000_000,
	'end_time defaults to now');
is(sprintf('%.0f', ($r->{json}{duration} // 0) * 1e6), $end - $sstart,
	'duration is end_time - start_time exactly');

# active duration is now - start_time
$r = create({start_time => ts(now_us() - 100_000_000)});
my $dur = get($r->{json}{id})->{json}{duration};
ok($dur >= 99 && $dur < 100 + $s->scale(10), "active duration is now - start_time ($dur)");
sleep 1.1;
ok(get($r->{json}{id})->{json}{duration} > $dur, '... and grows');

is_error($bob->api(POST => "test/$sid/stop"), 404, 'not_found', "stop another user's test: 404");

$s->stop;
done_testing;
