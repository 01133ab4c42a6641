# 429 rate_limited on /auth, /users and /users/me/password (nginx
# limit_req), and a configured token lifetime (TRACKER_TOKEN_TTL).
use strict;
use warnings;

use Test::More;
use GH::Stack qw(is_error is_json_ok);

# One request per minute, 3 above that: the first 4 pass, then 429.
my $s = GH::Stack->new(auth_rate => '1r/m', auth_burst => 3, token_ttl => '2h')->start;

my $r = $s->register('rita', 'rita-password');      # 1
is($r->{status}, 201, 'register within the limit');
$r = $s->login('rita', 'rita-password');            # 2
is_json_ok($r, 200, 'auth within the limit');
my $c = $s->jwt_claims($r->{json}{token} // '') || {};
is(($c->{exp} // 0) - ($c->{iat} // 0), 7200, 'TRACKER_TOKEN_TTL=2h gives a 2-hour token');
my $rita = $s->as($r->{json}{token});
is($s->login('rita', 'wrong-password')->{status}, 401, 'third attempt still answered');   # 3
is($s->register('rita', 'rita-password')->{status}, 409, 'fourth attempt still answered'); # 4

for my $n (1 .. 3) {
	is_error($s->login('rita', 'rita-password'), 429, 'rate_limited', "auth over the limit ($n)");
}
is_error($s->register('rita2', 'rita-password'), 429, 'rate_limited',
	'registration shares the limit');
is_error($rita->api(POST => 'users/me/password', {password => 'rita-password', new_password => 'n' x 12}),
	429, 'rate_limited', 'a password change shares the limit (two password hashes)');
is($rita->api(GET => 'test')->{status}, 200, '... and did not happen: the token still works');
$r = $s->login('rita', 'rita-password');
ok(defined $r->{headers}{'retry-after'}, '429 carries Retry-After');

# Everything else is not limited.
my @st = map { $s->api(GET => 'health')->{status} } 1 .. 10;
is_deeply(\@st, [(200) x 10], 'health is not rate-limited');
@st = map { $rita->api(POST => 'test', {})->{status} } 1 .. 10;
is_deeply(\@st, [(201) x 10], 'authenticated calls are not rate-limited');
is($rita->api(GET => 'test')->{status}, 200, 'listing is not rate-limited');

$s->stop;
done_testing;
