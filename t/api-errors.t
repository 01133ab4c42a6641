# Strict JSON, body limits, routes and methods, and the shape of every error
# (SPEC 3).  No request, however malformed, may crash a worker.
use strict;
use warnings;
use utf8;

use Test::More;
use GH::Stack qw(is_error is_json_ok slurp);

# Under valgrind when it is available: a malformed request must not make a
# worker touch memory it does not own (GH_NO_VALGRIND=1 turns this off).
my $s = GH::Stack->new(wrapper => $ENV{GH_TRACKER_WRAPPER} // GH::Stack::memcheck())->start;
diag 'tracker under: ' . ($s->wrapper // 'nothing');
my $u = $s->user;
my $tid = $u->api(POST => 'test', {})->{json}{id};
my @w0 = $s->worker_pids;
is(scalar @w0, 2, 'two workers');

sub create { $u->api(POST => 'test', $_[0]) }
sub count_tests { $s->psql('SELECT count(*) FROM tests') }

# --- strict JSON -----------------------------------------------------------------------

my $n0 = count_tests();
my @not_json = (
	['{"name":"a",}', 'trailing comma in an object'],
	['{"name":"a"', 'truncated object'],
	['{"name":"a"}}', 'extra closing brace'],
	['{/*c*/"name":"a"}', 'block comment'],
	[qq({"name":"a"} // c), 'line comment'],
	[qq(# c\n{"name":"a"}), 'hash comment'],
	[q({'name':'a'}), 'single-quoted key and value'],
	[q({"name":'a'}), 'single-quoted value'],
	['{name:"a"}', 'unquoted key'],
	['{"threshold":0x1}', 'hex number'],
	['{"threshold":.5}', 'number without leading digit'],
	['{"threshold":01}', 'number with a leading zero'],
	['{"threshold":+1}', 'number with a plus sign'],
	['{"threshold":1.}', 'number ending in a dot'],
	['{"threshold":1e}', 'empty exponent'],
	['{"name":"a"}x', 'garbage after the object'],
	['{}{}', 'two objects'],
	['{"name":"a"}' . "\0", 'NUL byte after the object'],
	['{"name":"a' . "\0" . 'b"}', 'raw NUL byte inside a string'],
	['{"name":"a' . "\t" . 'b"}', 'raw tab inside a string'],
	['{"name":"a' . "\n" . 'b"}', 'raw newline inside a string'],
	['{"name":"\x"}', 'invalid escape'],
	['{"name":"\u12"}', 'short \u escape'],
	['{"name":"a}', 'unterminated string'],
	['{"name" "a"}', 'missing colon'],
	['{"name":"a" "description":"b"}', 'missing comma'],
	['{"name":tru}', 'bad literal'],
	['{"name":True}', 'capitalised literal'],
	['{"name":undefined}', 'undefined'],
	["{\"name\":\"\xff\"}", 'invalid UTF-8 byte 0xff'],
	["{\"name\":\"caf\xe9\"}", 'Latin-1 text'],
	["{\"name\":\"\xc0\xaf\"}", 'overlong UTF-8'],
	["{\"name\":\"\xed\xa0\x80\"}", 'UTF-8-encoded surrogate'],
	["{\"name\":\"\xe2\x82\"}", 'truncated UTF-8 sequence'],
	["{\"name\":\"\xf4\x90\x80\x80\"}", 'UTF-8 beyond U+10FFFF'],
	['[', 'lone bracket'],
	['{"a":' x 10000, '10000 unclosed objects'],
	['[' x 100000, '100000 unclosed arrays'],
);
for my $c (@not_json) {
	my ($body, $what) = @$c;
	utf8::encode($body) if utf8::is_utf8($body);
	is_error(create($body), 400, 'invalid_json', "not JSON: $what");
}
for my $body ('true', 'null', '42', '"s"', '[]', '[{}]') {
	is_error(create($body), 400, 'invalid_json', "body $body where an object is needed");
}
is_error($u->api(POST => "test/$tid/stop", '[{}]'), 400, 'invalid_json',
	'stop with an array body');
is_error($u->api(POST => 'users', '[]'), 400, 'invalid_json', 'users with an array body');
is_error($u->api(POST => 'users', ''), 400, 'invalid_json', 'users with an empty body');
is_error($u->api(POST => 'auth', 'null'), 400, 'invalid_json', 'auth with null');
is_error($u->api(POST => "test/$tid/usage", 'true'), 400, 'invalid_json', 'usage with true');

for my $k ('NaN', '-NaN', 'Infinity', '-Infinity', 'inf') {
	is_error(create(qq({"threshold":$k})), 400, [qw(invalid_json invalid_field)],
		"threshold $k refused");
}
for my $k ('1e400', '-1e400', '1E+400', '99999999999999999999', '-99999999999999999999',
    '18446744073709551616') {
	is_error(create(qq({"threshold":$k})), 400, 'invalid_field', "threshold $k out of range",
		field => 'threshold');
}
is_error(create('{"name":"a\u0000b"}'), 400, 'invalid_field', '\u0000 in a name', field => 'name');
is_error($s->api(POST => 'users', '{"username":"ab\u0000cd","password":"password1"}'), 400,
	'invalid_field', '\u0000 in a username', field => 'username');
is_error($s->api(POST => 'users', '{"username":"nul","password":"pass\u0000word"}'), 400,
	'invalid_field', '\u0000 in a password', field => 'password');
is(count_tests(), $n0, 'nothing was stored by a refused body');

# valid JSON that looks odd is fine
my $r = create(qq( \r\n\t{ "name" : "\\u00fc\\ud83d\\ude00\\/\\"" } \n));
is($r->{status}, 201, 'whitespace everywhere and escapes');
is($u->api(GET => "test/$r->{json}{id}")->{json}{name}, "ü😀/\"", '... escapes decoded');
$r = create('{"threshold":5e-1}');
is($u->api(GET => "test/$r->{json}{id}")->{json}{threshold}, 0.5, 'exponent notation 5e-1');
$r = create('{"name":"a","name":"b"}');
ok(($r->{status} == 201 && $u->api(GET => "test/$r->{json}{id}")->{json}{name} =~ /^[ab]$/)
	|| ($r->{status} == 400 && ref $r->{json} && $r->{json}{error}),
	"duplicate keys: one value or a 400 ($r->{status})");
$r = $u->api(POST => 'test', '{"name":"ct"}', 'Content-Type' => 'application/x-www-form-urlencoded');
is($r->{status}, 201, 'the body is JSON whatever the Content-Type says');

# depth: 32 levels are JSON (then the wrong type), 33 are too deep
my $d32 = '{"name":' . ('[' x 31) . (']' x 31) . '}';
my $d33 = '{"name":' . ('[' x 32) . (']' x 32) . '}';
is_error(create($d32), 400, 'invalid_field', 'depth 32: parsed, name has the wrong type',
	field => 'name');
is_error(create($d33), 400, 'invalid_json', 'depth 33: too deep');
is_error(create(('[' x 33) . (']' x 33)), 400, 'invalid_json', 'array nested 33 deep');
is_error(create(('{"a":' x 33) . '1' . ('}' x 33)), 400, 'invalid_json', 'objects nested 33 deep');
is_error(create(('[' x 32) . (']' x 32)), 400, 'invalid_json',
	'array nested 32 deep: not an object');

# --- body size ---------------------------------------------------------------------------

sub too_large {
	my ($r, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is_error($r, 413, 'too_large', $what);
}
too_large($u->api(POST => 'test', '{"name":"' . ('x' x (2 * 1024 * 1024)) . '"}'),
	'2 MiB body: 413');
too_large($u->api(POST => "test/$tid/usage", ' ' x (1024 * 1024) . '[]'), '1 MiB + 2 bytes: 413');
too_large($s->api(POST => 'users', '{"username":"' . ('x' x (1024 * 1024)) . '"}'),
	'1 MiB registration: 413');
my $chunked = join '', map { sprintf("%x\r\n%s\r\n", 65536, 'x' x 65536) } 1 .. 32;
too_large($s->raw("POST /api/v1/test HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
	. $u->token . "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
	. $chunked . "0\r\n\r\n"), '2 MiB chunked body: 413');

# exactly 1 MiB reaches the worker whole
my $one = '[{"cpu_usage":0.5,"timestamp":"2024-01-01T00:00:00Z"}]';
my $pad = 1024 * 1024 - length $one;
$r = $u->api(POST => "test/$tid/usage", $one . (' ' x $pad));
is($r->{status}, 200, 'a body of exactly 1 MiB is read whole');
$r = $u->api(POST => "test/$tid/usage", (' ' x ($pad - 1)) . $one . ' ');
is($r->{status}, 200, '... also with the JSON at its end');
my @many = map { sprintf '{"cpu_usage":0.%02d,"timestamp":"2024-01-01T00:%02d:%02d.%06dZ"}',
	$_ % 100, int($_ / 60) % 60, $_ % 60, $_ } 1 .. 1000;
my $big = '[' . join(',', @many) . ']';
$r = $u->api(POST => "test/$tid/usage", $big . (' ' x (1024 * 1024 - length $big)));
is_deeply([$r->{status}, @{ $r->{json} || {} }{qw(received stored)}], [200, 1000, 1000],
	'a 1 MiB batch of 1000 samples');
is_error(create('{"name":"' . ('n' x (900 * 1024)) . '"}'), 400, 'invalid_field',
	'a 900 KiB name is too long', field => 'name');

# --- routes and methods ----------------------------------------------------------------------

for my $p ('/api/v1/nope', '/api/v1/', '/api/v1', "/api/v1/test/$tid/bogus", '/api/v1/users/1',
    '/api/v1/users/', '/api/v2/test', '/api/v1/testx', '/api/v1/health/x', '/api/v1/auth/x',
    "/api/v1/test/$tid/usage/1", "/api/v1/test/$tid/stop/now", '/api/',
    '/api/V1/test') {
	is_error($u->api(GET => $p), 404, 'not_found', "GET $p: 404");
}
is_error($u->api(POST => '/api/v1/nope', '{}'), 404, 'not_found', 'POST to an unknown route: 404');

sub allow_set {
	my $h = shift // '';
	return join ',', sort grep { $_ ne 'HEAD' && $_ ne 'OPTIONS' } map { uc } split /\s*,\s*/, $h;
}
for my $c (['GET', 'users', 'POST'], ['PUT', 'users', 'POST'], ['DELETE', 'users', 'POST'],
    ['GET', 'auth', 'DELETE,POST'], ['PATCH', 'auth', 'DELETE,POST'], ['DELETE', 'test', 'GET,POST'],
    ['PUT', 'tokens', 'GET,POST'], ['DELETE', 'tokens', 'GET,POST'], ['GET', 'tokens/1', 'DELETE'],
    ['POST', 'tokens/1', 'DELETE'], ['GET', 'users/me/password', 'POST'],
    ['PUT', 'test', 'GET,POST'], ['POST', "test/$tid", 'GET'], ['DELETE', "test/$tid", 'GET'],
    ['PUT', "test/$tid", 'GET'], ['GET', "test/$tid/stop", 'POST'],
    ['DELETE', "test/$tid/stop", 'POST'], ['DELETE', "test/$tid/usage", 'GET,POST'],
    ['PUT', "test/$tid/usage", 'GET,POST'], ['POST', 'health', 'GET'],
    ['DELETE', 'health', 'GET']) {
	my ($m, $p, $allow) = @$c;
	my $r = $u->api($m, $p, $m =~ /^(POST|PUT|PATCH)$/ ? '{}' : undef);
	is_error($r, 405, 'method_not_allowed', "$m /api/v1/$p: 405");
	is(allow_set($r->{headers}{allow}), $allow, "$m /api/v1/$p: Allow: $allow");
}

# --- every answer is JSON with charset ----------------------------------------------------------

is_json_ok($s->api(GET => 'health'), 200, 'health: application/json; charset=utf-8');
is_deeply($s->api(GET => 'health')->{json}, {status => 'ok'}, 'health: {"status":"ok"}');
is_json_ok($u->api(GET => 'test'), 200, 'list: application/json; charset=utf-8');
is_json_ok(create({}), 201, 'create: application/json; charset=utf-8');
is_json_ok($u->api(GET => "test/$tid/usage"), 200, 'usage: application/json; charset=utf-8');

# A path that is not UTF-8 is quoted in the 404's message: the answer stays
# valid UTF-8 JSON (a '?' for each stray byte).
$r = $s->api(GET => '%FF%FEx');
is($r->{status}, 404, 'a path that is not UTF-8: 404');
ok(ref $r->{json} eq 'HASH' && $r->{json}{error} eq 'not_found'
	&& $r->{json}{message} =~ m{/api/v1/\?\?x}, '... with a UTF-8 message') or diag "got: $r->{content}";

# nginx's own errors are JSON too
$r = $s->raw("GET /api/v1/test/1%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
is($r->{status}, 400, 'a NUL in the path: nginx answers 400');
ok(lc($r->{headers}{'content-type'} // '') eq 'application/json; charset=utf-8'
	&& ref $r->{json} eq 'HASH' && $r->{json}{error} && $r->{json}{message},
	'... as a JSON error') or diag "got: $r->{content}";
$r = $s->raw("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	. "X-Big: " . ('h' x 20000) . "\r\n\r\n");
ok($r->{status} >= 400 && ref $r->{json} eq 'HASH' && $r->{json}{error},
	"an oversized header: a JSON error ($r->{status})") or diag "got: $r->{content}";

# --- FastCGI straight to the pool: how a worker closes ------------------------------------

# A worker closes a connection at once when nginx sent nothing it left
# unread, and otherwise as libfcgi does (shut down its side, read and drop
# what is left until the peer closes), so that unread input never turns the
# close into a reset that loses the answer. Spoken here without nginx.
use IO::Socket::UNIX;
use POSIX ();
sub fcgi_record {
	my ($type, $content) = @_;
	my $pad = (8 - length($content) % 8) % 8;
	return pack('CCnnCC', 1, $type, 1, length $content, $pad, 0) . $content . ("\0" x $pad);
}
sub fcgi_nv {
	my ($n, $v) = @_;
	my $len = sub { $_[0] < 128 ? pack('C', $_[0]) : pack('N', $_[0] | 0x80000000) };
	return $len->(length $n) . $len->(length $v) . $n . $v;
}
# fcgi($method, $path, $body): the answer's stdout, whether END_REQUEST came,
# and whether the worker then closed the connection (we never close first).
sub fcgi {
	my ($method, $path, $body) = @_;
	my $c = IO::Socket::UNIX->new(Peer => $s->dir . '/tracker.sock') or return;
	my $params = join '', map { fcgi_nv(@$_) } ['REQUEST_METHOD', $method],
		['DOCUMENT_URI', $path], ['REQUEST_URI', $path],
		['CONTENT_LENGTH', length $body], ['CONTENT_TYPE', 'application/json'];
	my $req = fcgi_record(1, pack('nCx5', 1, 0)) . fcgi_record(4, $params) . fcgi_record(4, '');
	for (my $i = 0; $i < length $body; $i += 65528) {
		$req .= fcgi_record(5, substr($body, $i, 65528));
	}
	$req .= fcgi_record(5, '');
	# A child writes, so a worker that stops reading cannot block us.
	my $pid = fork // die "fork: $!";
	if (!$pid) {
		local $SIG{PIPE} = 'IGNORE';
		syswrite($c, $req) // POSIX::_exit(1);
		POSIX::_exit(0);
	}
	my ($in, $out, $ended, $closed) = ('', '', 0, 0);
	my $deadline = time + $s->scale(20);
	while (time < $deadline) {
		my $rin = '';
		vec($rin, fileno $c, 1) = 1;
		select(my $rout = $rin, undef, undef, 1) or next;
		my $got = sysread($c, my $buf, 65536);
		if (!$got) { $closed = defined $got; last }
		$in .= $buf;
		while (length $in >= 8) {
			my (undef, $type, undef, $len, $pad) = unpack('CCnnC', $in);
			last if length $in < 8 + $len + $pad;
			my $content = substr($in, 8, $len);
			substr($in, 0, 8 + $len + $pad) = '';
			$out .= $content if $type == 6;
			$ended = 1 if $type == 3;
		}
	}
	waitpid $pid, 0;
	close $c;
	return ($out, $ended, $closed);
}
my ($out, $ended, $closed) = fcgi('GET', '/api/v1/health', '');
like($out, qr/^Status: 200 /, 'FastCGI: a request read to its end is answered');
ok($ended && $closed, '... END_REQUEST, then the worker closes the connection');
($out, $ended, $closed) = fcgi('POST', '/api/v1/users', '{"username":"' . ('x' x (3 * 1024 * 1024)) . '"}');
like($out, qr/^Status: 413 /, 'FastCGI: 3 MiB of body, most of it never read: 413');
like($out, qr/"error":"too_large"/, '... the whole answer arrives');
ok($ended && $closed, '... END_REQUEST, then the worker closes the connection');

# the tracker logs one line per request: METHOD PATH STATUS MICROSECONDS
my $log = slurp($s->dir . '/tracker.log') // '';
like($log, qr{^GET /api/v1/health 200 \d+$}m, 'tracker log: "METHOD PATH STATUS MICROSECONDS"');
unlike($log, qr/\?|Bearer|password1/, 'tracker log: no query string, token or password');

is_deeply([$s->worker_pids], \@w0, 'no worker died or was replaced');

$s->stop;
done_testing;
