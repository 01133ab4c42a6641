# A test's tags, the list's filters and the command's own resources
# (SPEC 6.3, docs/api.md).
use strict;
use warnings;
use utf8;

use Test::More;
use GH::Stack qw(is_error is_json_ok);

my $s = GH::Stack->new(env => {TRACKER_USER_RATE => 0})->start;
my $alice = $s->user;
my $bob = $s->user;

sub create { $alice->api(POST => 'test', @_) }
sub count_tests { $s->psql('SELECT count(*) FROM tests') }
sub ids { [map { $_->{id} } @{ $_[0]{json}{tests} }] }

# --- tags at creation ---------------------------------------------------------

my $r = create({});
is_json_ok($r, 201, 'create without tags');
is_deeply($r->{json}{tags}, {}, 'no tags: {}');
ok(exists $r->{json}{command} && !defined $r->{json}{command}, 'command null while active');

my %tags32 = map { ("k$_" => "v$_") } 1 .. 32;
$r = create({tags => \%tags32});
is_json_ok($r, 201, '32 tags');
is_deeply($r->{json}{tags}, \%tags32, '32 tags returned');
is_deeply($alice->api(GET => "test/$r->{json}{id}")->{json}{tags}, \%tags32, '... and stored');

my $n0 = count_tests();
is_error(create({tags => {%tags32, k33 => 'v'}}), 400, 'invalid_field', '33 tags', field => '32');
my $k64 = 'a' x 64;
is_json_ok(create({tags => {$k64 => 'x'}}), 201, 'a key of 64 characters');
is_error(create({tags => {"${k64}b" => 'x'}}), 400, 'invalid_field', 'a key of 65', field => 'aaaa');
is_error(create({tags => {'' => 'x'}}), 400, 'invalid_field', 'an empty key', field => 'tag key');
is_json_ok(create({tags => {k => 'é' x 256}}), 201, 'a value of 256 characters');
is_error(create({tags => {k => 'é' x 257}}), 400, 'invalid_field', 'a value of 257',
	field => 'tags.k');
is_json_ok(create({tags => {'A-z_0.9/x' => ''}}), 201, 'every allowed key character, empty value');
for my $bad ('a b', 'a:b', 'é', 'a=b', "a\tb", 'a"b') {
	is_error(create({tags => {$bad => 'x'}}), 400, 'invalid_field', "key [$bad] refused",
		field => 'tag key');
}
is_error(create({tags => {k => 1}}), 400, 'invalid_field', 'a number value', field => 'tags.k');
is_error(create({tags => {k => undef}}), 400, 'invalid_field', 'a null value', field => 'tags.k');
is_error(create({tags => {k => {x => 'y'}}}), 400, 'invalid_field', 'a nested object',
	field => 'tags.k');
is_error(create({tags => {k => ['x']}}), 400, 'invalid_field', 'an array value', field => 'tags.k');
is_error(create({tags => ['a']}), 400, 'invalid_field', 'tags an array', field => 'tags');
is_error(create({tags => 'a:b'}), 400, 'invalid_field', 'tags a string', field => 'tags');
is_error(create('{"tags":{"a":"1","a":"2"}}'), 400, 'invalid_field', 'a duplicate key',
	field => 'more than once');
is_error(create('{"tags":{"a":"1","b":"2","a":"1"}}'), 400, 'invalid_field',
	'a duplicate key, same value', field => 'more than once');
is_error(create('{"tags":{"k":"a\u0000b"}}'), 400, 'invalid_field', 'a value with \u0000');
is_error(create('{"tags":{"a\u0000b":"x"}}'), 400, 'invalid_field', 'a key with \u0000',
	field => 'u0000');
is_json_ok(create('{"tags":{"k":"\\\\u0000"}}'), 201, 'a value of a backslash and u0000: fine');
my %many = map { ("k$_" => 'v') } 1 .. 500;
is_error(create({tags => \%many}), 400, 'invalid_json', 'a huge number of tags');
is_error(create({tags => {k => 'x' x 2_000_000}}), 413, 'too_large', 'a huge value');
is(count_tests(), $n0 + 4, 'no refused create stored anything');
is_error($s->api(POST => 'test', {tags => {k => 'v'}}), 401, 'unauthorized', 'tags without a token');
is_error($s->api(POST => 'test', {tags => {%tags32, k33 => 'v'}}), 401, 'unauthorized',
	'33 tags without a token');

# --- filters --------------------------------------------------------------------

my $carl = $s->user;
my (@build, @main_build, @main_linux);
for my $i (1 .. 9) {
	my %t = (branch => $i % 3 ? 'main' : 'dev', os => $i % 2 ? 'linux' : 'mac');
	my $id = $carl->api(POST => 'test', {name => $i % 4 ? 'build' : 'deploy', tags => \%t})
		->{json}{id};
	unshift @build, $id if $i % 4;
	unshift @main_build, $id if $i % 4 && $t{branch} eq 'main';
	unshift @main_linux, $id if $i % 4 && $t{branch} eq 'main' && $t{os} eq 'linux';
}
# bob has the same name and tags: never listed for carl.
$bob->api(POST => 'test', {name => 'build', tags => {branch => 'main', os => 'linux'}});

$r = $carl->api(GET => 'test?name=build');
is_json_ok($r, 200, 'name only');
is_deeply(ids($r), \@build, 'name only: the name\'s tests, newest first');
$r = $carl->api(GET => 'test?name=build&tag=branch:main');
is_deeply(ids($r), \@main_build, 'name and one tag');
$r = $carl->api(GET => 'test?name=build&tag=branch:main&tag=os:linux');
is_deeply(ids($r), \@main_linux, 'name and two tags');
$r = $carl->api(GET => 'test?tag=branch:main&tag=os:linux');
ok(@{ ids($r) } >= @main_linux && !grep({ my $x = $_; !grep { $_ == $x } @{ ids($r) } } @main_linux),
	'tags without a name');
is_deeply(ids($carl->api(GET => 'test?name=build&tag=branch:nope')), [], 'no match');
is_deeply(ids($carl->api(GET => 'test?name=nope')), [], 'no such name');
is_deeply(ids($carl->api(GET => 'test?tag=url:http%3A%2F%2Fx%3A1')), [],
	'the first colon separates key and value');

# Paging through a filtered list.
my @seen;
my $q = 'test?name=build&tag=branch:main&limit=2';
for (1 .. 10) {
	$r = $carl->api(GET => $q);
	push @seen, @{ ids($r) };
	my $next = $r->{json}{next} // last;
	$q = "test?name=build&tag=branch:main&limit=2&before=$next";
}
is_deeply(\@seen, \@main_build, 'paging a filtered list: each once, in order');

# A tag value holding a colon, and one of 256 characters.
my $url = 'https://ci.example/job/1:2';
my $tid = $carl->api(POST => 'test', {name => 'u', tags => {job_url => $url, v => 'é' x 256}})
	->{json}{id};
is_deeply(ids($carl->api(GET => 'test?tag=job_url:https%3A%2F%2Fci.example%2Fjob%2F1%3A2')),
	[$tid], 'a value with colons');
is_deeply(ids($carl->api(GET => 'test?tag=v:' . ('%C3%A9' x 256))), [$tid], 'a value of 256');

# Bad filters.
is_error($carl->api(GET => 'test?tag=novalue'), 400, 'invalid_field', 'tag without a colon',
	field => 'tag');
is_error($carl->api(GET => 'test?tag=a%20b:x'), 400, 'invalid_field', 'tag key with a space',
	field => 'tag');
is_error($carl->api(GET => 'test?tag=:x'), 400, 'invalid_field', 'tag with an empty key',
	field => 'tag');
is_error($carl->api(GET => 'test?tag=' . ('a' x 65) . ':x'), 400, 'invalid_field',
	'tag key of 65', field => 'tag');
is_error($carl->api(GET => 'test?tag=v:' . ('%C3%A9' x 257)), 400, 'invalid_field',
	'tag value of 257', field => 'tag');
is_error($carl->api(GET => 'test?tag=v:%FF'), 400, 'invalid_field', 'tag value not UTF-8',
	field => 'tag');
is_error($carl->api(GET => 'test?tag=a:1&tag=a:2'), 400, 'invalid_field', 'one key twice',
	field => 'tag');
is_error($carl->api(GET => 'test?tag=a:1&tag=b%ZZ'), 400, 'invalid_field',
	'a malformed tag after a good one (nothing kept: the teardown finds no leak)', field => 'tag');
my $tq = join '&', map { "tag=k$_:v" } 1 .. 32;
is_json_ok($carl->api(GET => "test?$tq"), 200, '32 tag parameters');
is_error($carl->api(GET => "test?$tq&tag=k33:v"), 400, 'invalid_field', '33 tag parameters',
	field => 'tag');
is_error($carl->api(GET => 'test?tag=a:' . ('a' x 6000)), 400, 'invalid_field',
	'a huge tag parameter (as much as nginx takes)', field => 'tag');
is_error($carl->api(GET => 'test?name=' . ('a' x 2000)), 400, 'invalid_field', 'a huge name');
is_error($s->api(GET => 'test?tag=a:b'), 401, 'unauthorized', 'filter without a token');

# --- the command's resources at stop ------------------------------------------------

$tid = create({})->{json}{id};
$r = $alice->api(POST => "test/$tid/stop", {user_cpu => 1.25, system_cpu => 0, max_rss => 123456});
is_json_ok($r, 200, 'stop with the command\'s resources');
is_deeply($r->{json}{command}, {exit_status => undef, user_cpu => 1.25, system_cpu => 0, max_rss => 123456},
	'command figures returned, exit_status null when not reported');
is_deeply($alice->api(GET => "test/$tid")->{json}{command},
	{exit_status => undef, user_cpu => 1.25, system_cpu => 0, max_rss => 123456}, '... and stored');

$tid = create({})->{json}{id};
$r = $alice->api(POST => "test/$tid/stop", {max_rss => 7});
is_deeply($r->{json}{command}, {exit_status => undef, user_cpu => undef, system_cpu => undef, max_rss => 7},
	'only max_rss: the others null');

# exit_status (SPEC 6.3): the status the client exits with, 0-255.
for my $status (0, 1, 137, 255) {
	$tid = create({})->{json}{id};
	$r = $alice->api(POST => "test/$tid/stop", {exit_status => $status});
	is_json_ok($r, 200, "stop with exit_status $status");
	is_deeply($r->{json}{command}, {exit_status => $status, user_cpu => undef, system_cpu => undef,
		max_rss => undef}, "... returned as $status, the others null");
	is($alice->api(GET => "test/$tid")->{json}{command}{exit_status}, $status, '... and stored');
}
$tid = create({})->{json}{id};
$r = $alice->api(POST => "test/$tid/stop",
	{exit_status => 2, user_cpu => 0.5, system_cpu => 0.25, max_rss => 1024});
is_deeply($r->{json}{command}, {exit_status => 2, user_cpu => 0.5, system_cpu => 0.25, max_rss => 1024},
	'exit_status with the command\'s figures');
is($s->psql("SELECT exit_status FROM tests WHERE id = $tid"), 2, '... in its column');

# A version-1 stop: nothing about the command.
$tid = create({})->{json}{id};
$r = $alice->api(POST => "test/$tid/stop", {});
is_json_ok($r, 200, 'a stop without the new fields');
ok(exists $r->{json}{command} && !defined $r->{json}{command}, 'command null when not reported');

$tid = create({})->{json}{id};
for my $bad ([user_cpu => -1], [system_cpu => -0.5], [user_cpu => '1'], [max_rss => -1],
	[max_rss => 1.5], [max_rss => '7'], [max_rss => 1e300], [user_cpu => 1e300],
	[system_cpu => undef], [max_rss => [1]], [exit_status => -1], [exit_status => 256],
	[exit_status => 1.5], [exit_status => 0.0001], [exit_status => '0'], [exit_status => '1'],
	[exit_status => undef], [exit_status => 1e300], [exit_status => 2**63], [exit_status => -(2**62)],
	[exit_status => 4294967297], [exit_status => [0]], [exit_status => {}])
{
	my $b = {$bad->[0] => $bad->[1]};
	is_error($alice->api(POST => "test/$tid/stop", $b), 400, 'invalid_field',
		"stop with $bad->[0] " . (ref $bad->[1] ? lc ref $bad->[1] : $bad->[1] // 'null'),
		field => $bad->[0]);
}
is_error($alice->api(POST => "test/$tid/stop", '{"user_cpu": 1e999}'), 400,
	['invalid_field', 'invalid_json'], 'user_cpu beyond a double');
for my $huge ('99999999999999999999999999', '255.0000000001', '255.0', '1e2', 'true') {
	is_error($alice->api(POST => "test/$tid/stop", qq{{"exit_status": $huge}}), 400,
		['invalid_field', 'invalid_json'], "exit_status $huge");
}
ok($alice->api(GET => "test/$tid")->{json}{active}, 'no refused stop stopped the test');
is_error($s->api(POST => "test/$tid/stop", {user_cpu => 1}), 401, 'unauthorized',
	'stop without a token');

done_testing;
