# Bearer tokens: what is accepted and what is 401 (SPEC 3, LIBRARY-NOTES on
# libjwt 1.10), and authentication before the test id (docs/architecture.md).
use strict;
use warnings;

use MIME::Base64 qw(encode_base64url);
use Test::More;
use GH::Stack qw(is_error is_json_ok json_encode slurp);

# Under valgrind when it is available: a malformed request must not make a
# worker touch memory it does not own (GH_NO_VALGRIND=1 turns this off).
my $s = GH::Stack->new(wrapper => $ENV{GH_TRACKER_WRAPPER} // GH::Stack::memcheck())->start;
diag "tracker under: " . ($s->wrapper // "nothing");
my $alice = $s->user;
my $bob = $s->user;
my $a1 = $alice->api(POST => 'test', {name => 'alice-1'})->{json}{id};
my $b1 = $bob->api(POST => 'test', {name => 'bob-1'})->{json}{id};
my @w0 = $s->worker_pids;

my $now = time;
# A correctly forged token names its row in tokens (jti): without one it is
# revoked (t/api-revoke.t).
my %good = (sub => "" . $alice->id, iat => $now, exp => $now + 3600,
	jti => $s->token_row($alice->id, $now + 3600));

# unauthorized($res, $name): 401 unauthorized with WWW-Authenticate: Bearer.
sub unauthorized {
	my ($r, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is_error($r, 401, 'unauthorized', $name);
	like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/,
		"$name: WWW-Authenticate: Bearer");
}

sub with_header { $s->api(GET => 'test', undef, Authorization => $_[0]) }
sub with_token { with_header("Bearer $_[0]") }

# --- the token from /auth, and correctly forged ones ---------------------------

is_json_ok(with_token($alice->token), 200, 'token from /auth accepted');
is_json_ok(with_token($s->jwt(\%good)), 200, 'HS256 token signed with the secret accepted');
is_json_ok(with_token($s->jwt(\%good, header => {alg => 'HS256'})), 200,
	'token without "typ" accepted');

# A correctly signed token for another user is just that user.
my $as_bob = $s->as($s->jwt({%good, sub => "" . $bob->id, jti => $s->token_row($bob->id)}));
my $r = $as_bob->api(GET => 'test');
is_deeply([map { $_->{id} } @{ $r->{json}{tests} || [] }], [$b1],
	'token with sub = bob lists only bob\'s tests');
is($as_bob->api(GET => "test/$b1")->{status}, 200, '... sees bob\'s test');
is($as_bob->api(GET => "test/$a1")->{status}, 404, '... not alice\'s');

# --- missing or malformed ----------------------------------------------------

unauthorized($s->api(GET => 'test'), 'no Authorization header');
unauthorized(with_header('Basic YWxpY2U6cGFzc3dvcmQ='), 'Basic credentials');
unauthorized(with_header('Bearer'), 'Bearer without token');
unauthorized(with_header('Bearer abc'), 'Bearer abc');
unauthorized(with_header('Bearer a.b.c'), 'Bearer a.b.c');
unauthorized(with_header('Bearer ..'), 'Bearer ..');
unauthorized(with_header($alice->token), 'token without "Bearer"');
unauthorized(with_header('Token ' . $alice->token), 'scheme Token');
unauthorized(with_header('Bearer ' . $alice->token . ' extra'), 'token followed by garbage');
unauthorized(with_token($alice->token . '.'), 'four segments');
my ($h, $p, $sig) = split /\./, $alice->token;
unauthorized(with_token("$h.$p"), 'two segments');
unauthorized(with_token("$h.$p."), 'empty signature');
unauthorized(with_token("$h.$p.!!!!"), 'signature not base64url');
unauthorized(with_token('x' x 5000), 'a 5000-byte token');

# --- algorithms ---------------------------------------------------------------

unauthorized(with_token($s->jwt(\%good, alg => 'none')), 'alg none, no signature');
unauthorized(with_token($s->jwt(\%good, alg => 'none', header => {alg => 'none'}) . $sig),
	'alg none with a signature');
unauthorized(with_token($s->jwt(\%good, alg => 'HS512')), 'HS512 signed with the secret');
unauthorized(with_token($s->jwt(\%good, alg => 'HS384')), 'HS384 signed with the secret');
unauthorized(with_token($s->jwt(\%good, alg => 'HS512', header => {alg => 'HS256', typ => 'JWT'})),
	'header says HS256, signed with HS512');
unauthorized(with_token($s->jwt(\%good, header => {alg => 'RS256', typ => 'JWT'})),
	'header says RS256, signed with HS256');
unauthorized(with_token($s->jwt(\%good, header => {typ => 'JWT'})), 'no alg');

# --- signature ------------------------------------------------------------------

my $tampered = encode_base64url(json_encode({%good, sub => "" . $bob->id}));
unauthorized(with_token("$h.$tampered.$sig"), 'payload changed, signature kept');
(my $flipped = $sig) =~ s/^(.)/$1 eq 'A' ? 'B' : 'A'/e;
unauthorized(with_token("$h.$p.$flipped"), 'signature changed');
unauthorized(with_token($s->jwt(\%good, key => 'k' x 48)), 'signed with another key');
unauthorized(with_token($s->jwt(\%good, key => $s->secret . 'x')), 'signed with secret + "x"');
unauthorized(with_token($s->jwt(\%good, key => substr($s->secret, 0, 32))),
	'signed with a prefix of the secret');
unauthorized(with_token($s->jwt(\%good, key => '')), 'signed with an empty key');

# --- claims ---------------------------------------------------------------------

unauthorized(with_token($s->jwt({%good, exp => $now - 60})), 'expired a minute ago');
unauthorized(with_token($s->jwt({%good, iat => $now - 7200, exp => $now - 3600})),
	'expired an hour ago');
my %noexp = %good;
delete $noexp{exp};
unauthorized(with_token($s->jwt(\%noexp)), 'no exp');
unauthorized(with_token($s->jwt({%good, exp => "" . ($now + 3600)})), 'exp as a string');
unauthorized(with_token($s->jwt({%good, exp => 0})), 'exp 0');
unauthorized(with_token($s->jwt({%good, exp => -1})), 'exp -1');
unauthorized(with_token($s->jwt({%good, exp => undef})), 'exp null');
unauthorized(with_token($s->jwt({%good, exp => JSON::PP::true})), 'exp true');
my %nosub = %good;
delete $nosub{sub};
unauthorized(with_token($s->jwt(\%nosub)), 'no sub');
unauthorized(with_token($s->jwt({%good, sub => 'abc'})), 'sub "abc"');
unauthorized(with_token($s->jwt({%good, sub => $alice->id . 'abc'})), 'sub "<id>abc"');
unauthorized(with_token($s->jwt({%good, sub => ''})), 'sub ""');
unauthorized(with_token($s->jwt({%good, sub => $alice->id . '.5'})), 'sub "<id>.5"');
unauthorized(with_token($s->jwt({%good, sub => '99999999999999999999999'})), 'sub beyond int64');
unauthorized(with_token($s->jwt({%good, sub => undef})), 'sub null');
unauthorized(with_token($s->jwt(undef, raw_payload => 'not json')), 'payload not JSON');
unauthorized(with_token($s->jwt(undef, raw_payload => '[1,2]')), 'payload an array');
unauthorized(with_token($s->jwt(\%good, raw_header => 'not json')), 'header not JSON');
unauthorized(with_token($s->jwt({%good, sub => "" . $bob->id})), 'jti of alice\'s row, sub bob');
unauthorized(with_token($s->jwt({%good, jti => $good{jti} + 0})), 'jti a number');
unauthorized(with_token($s->jwt({%good, jti => ''})), 'jti ""');
unauthorized(with_token($s->jwt({%good, jti => "0$good{jti}"})), 'jti with a leading 0');
unauthorized(with_token($s->jwt({%good, jti => undef})), 'jti null');
unauthorized(with_token($s->jwt({%good, jti => '987654321'})), 'jti of no row');
my %nojti = %good;
delete $nojti{jti};
unauthorized(with_token($s->jwt(\%nojti)), 'no jti, for a user made after tokens had rows');

# A well-signed token for a user that does not exist: no crash, nothing stored.
my $ghost = $s->as($s->jwt({%good, sub => '987654321'}));
my $tests_before = $s->psql('SELECT count(*) FROM tests');
$r = $ghost->api(POST => 'test', {name => 'ghost'});
ok($r->{status} >= 400 && $r->{status} < 500 && ref $r->{json} && $r->{json}{error},
	"token for a non-existent user cannot create a test ($r->{status})");
is($s->psql('SELECT count(*) FROM tests'), $tests_before, '... nothing stored');

# --- authentication before the test id --------------------------------------------

for my $req (['GET', 'test'], ['POST', 'test'], ['GET', "test/$a1"], ['GET', 'test/1'],
    ['GET', 'test/abc'], ['GET', 'test/0'], ['GET', 'test/99999999999999999999'],
    ['GET', "test/$a1/usage"], ['POST', "test/$a1/usage"], ['POST', 'test/abc/usage'],
    ['POST', "test/$a1/stop"], ['POST', 'test/abc/stop'], ['GET', 'test/-1/usage']) {
	my ($m, $path) = @$req;
	my $body = $m eq 'POST' ? '{}' : undef;
	unauthorized($s->api($m, $path, $body), "$m $path without a token");
	unauthorized($s->api($m, $path, $body, Authorization => 'Bearer x.y.z'),
		"$m $path with a bad token");
}
is($alice->api(GET => "test/$a1")->{json}{name}, 'alice-1', 'the test was not touched');

# --- public routes need no token ------------------------------------------------------

is($s->api(GET => 'health')->{status}, 200, 'health without a token');
is($s->api(GET => 'health', undef, Authorization => 'Bearer junk')->{status}, 200,
	'health ignores a bad token');
is($s->login($alice->username, $alice->password)->{status}, 200, 'auth without a token');

# --- nothing crashed, tokens are not logged ---------------------------------------------

is_deeply([$s->worker_pids], \@w0, 'no worker died or was replaced');
my $logs = join '', map { slurp($s->dir . "/$_") // '' }
	'tracker.log', 'access.log', 'error.log';
ok(index($logs, $alice->token) < 0 && index($logs, $sig) < 0, 'tokens do not appear in the logs');

$s->stop;
done_testing;
