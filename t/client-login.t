# The client's token hygiene against the real service (SPEC 6.2):
# `grasshopper login` (from a terminal without echo, from standard input,
# a rejected token, an unreachable tracker), the credentials file and its
# modes, runs with the stored token and its server, logout; the token
# kept from the command's environment and from /proc/PID/cmdline;
# --replay of a spool file naming another server; tracker messages
# printed without control characters.
use strict;
use warnings;

use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Client qw(client_bin outputs_clean_ok gh_run wait_for slurp);
use GH::Stack qw(json_decode json_encode now_us parse_ts ts);

my $GH = client_bin();

my $s = GH::Stack->new->start;
my $u = $s->user;
my $token = $u->token;
my $tmp = tempdir('gh-login-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @outputs;    # everything grasshopper printed, to look for the token

# Every run: a home of its own, so no credentials of whoever runs this.
$ENV{HOME} = "$tmp/home";
$ENV{XDG_CONFIG_HOME} = "$tmp/config";
my $dir = "$tmp/config/grasshopper";
my $cred = "$dir/credentials";

# gh(args => [...], env => {...}, stdin => TEXT, ...): GH::Client::gh_run
# with no token and no server unless given.
sub gh {
	gh_run(bin => $GH, tmp => $tmp, spool => "$tmp/spool", outputs => \@outputs,
		@_, env => {GRASSHOPPER_FLUSH_TIMEOUT => $s->scale(5),
			XDG_CONFIG_HOME => $ENV{XDG_CONFIG_HOME}, %{ {@_}->{env} || {} }});
}

sub mode { my @st = stat $_[0]; @st ? sprintf('%04o', $st[2] & 07777) : 'none' }
sub test_of { $u->api(GET => "test/$_[0]")->{json} }
sub count_tests { scalar @{ $u->api(GET => 'test?limit=200')->{json}{tests} || [] } }
sub summary_id { $_[0]{stderr} =~ /^grasshopper: test (\d+): .*, (\S+)$/m ? ($1, $2) : () }

# A loopback port where nothing listens.
sub closed_port {
	my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Proto => 'tcp', Listen => 1) or die "listen: $!";
	my $port = $sock->sockport;
	close $sock;
	return $port;
}

# --- login from standard input ----------------------------------------------

my $r = gh(args => ['login', '--server', $s->url . '/'], stdin => "  $token  \n");
is($r->{status}, 0, 'login from standard input: exit 0') or diag $r->{stderr};
like($r->{stderr}, qr/^grasshopper: logged in to \Q@{[$s->url]}\E; the token is kept in \Q$cred\E$/m,
	'says where it is kept');
is(mode($dir), '0700', 'the directory is 0700');
is(mode($cred), '0600', 'the file is 0600');
my $text = slurp($cred);
like($text, qr/^server \Q@{[$s->url]}\E$/m, 'the file holds the server (normalized)');
like($text, qr/^token \Q$token\E$/m, 'and the token, trimmed of blanks');
opendir my $dh, $dir or die;
is_deeply([sort grep !/^\.\.?$/, readdir $dh], ['credentials'], 'no temporary file left beside it');

# --- runs with the stored token ---------------------------------------------

my $before = count_tests();
$r = gh(args => ['-n', 'stored', '--', 'sh', '-c', 'exit 4']);
is($r->{status}, 4, "a run with the stored token: the command's status");
my ($id, $url) = summary_id($r);
ok($id, 'the test was recorded') or diag $r->{stderr};
is($url, $s->url . "/#/test/$id", "at the stored token's server (no -s given)");
is(test_of($id)->{name}, 'stored', 'the test is there');

$r = gh(args => ['-s', $s->url, 'true']);
ok(summary_id($r), '-s naming the stored server: used') or diag $r->{stderr};

my $other = 'http://127.0.0.1:' . closed_port();
$before = count_tests();
for my $how (['-s', sub { (args => ['-s', $other, 'touch', "$tmp/ran"]) }],
	['GRASSHOPPER_SERVER', sub { (args => ['touch', "$tmp/ran"], env => {GRASSHOPPER_SERVER => $other}) }]) {
	my ($what, $opts) = @$how;
	$r = gh($opts->());
	is($r->{status}, 2, "$what naming another server with only a stored token: exit 2");
	like($r->{stderr}, qr/\Agrasshopper: the token in \Q$cred\E is for \Q@{[$s->url]}\E, not \Q$other\E: run grasshopper login --server \Q$other\E, or pass a token with -j or GRASSHOPPER_JWT\n\z/,
		"$what: one line saying what to do");
	ok(!-e "$tmp/ran", "$what: the command did not run");
}

# The stored token never leaves for a server named only in a spool file.
my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
	Proto => 'tcp', Listen => 16, Blocking => 0) or die "listen: $!";
my $elsewhere = 'http://127.0.0.1:' . $listener->sockport;
my $victim = $u->api(POST => 'test', {name => 'victim'})->{json}{id};
my $t0 = now_us() - 10_000_000;
my $spool = "$tmp/elsewhere.jsonl";
open my $fh, '>', $spool or die;
print $fh json_encode({grasshopper_spool => 1, server => $elsewhere, test_id => $victim + 0,
	name => 'elsewhere', description => '', threshold => 0.5,
	start_time => ts($t0), end_time => ts($t0 + 1_000_000),
	stopped => JSON::PP::true, exit_status => 0}), "\n";
print $fh json_encode({timestamp => ts($t0 + $_ * 500_000), cpu_usage => 0.25}), "\n" for 1, 2;
close $fh;
$before = count_tests();
$r = gh(args => ['--replay', $spool]);
is($r->{status}, 0, '--replay of a file recorded for another server: exit 0') or diag $r->{stderr};
like($r->{stderr}, qr/^grasshopper: \Q$spool\E was recorded for \Q$elsewhere\E; sending it to \Q@{[$s->url]}\E as a new test \(test $victim there is left as it is\)$/m,
	'it says where the file was recorded and where it goes');
my $conn = $listener->accept;
ok(!$conn, 'the server named in the file got no connection at all');
($id) = summary_id($r);
isnt($id, $victim, "the samples did not go to the file's test id on this tracker");
is(test_of($victim)->{samples}, 0, 'which is still empty (another run of the same user)');
ok(test_of($victim)->{active}, 'and still active: not stopped by the replay');
is(count_tests(), $before + 1, 'a new test holds them');
my $t = test_of($id // 0);
is($t->{samples}, 2, 'both samples');
ok(!$t->{active} && parse_ts($t->{end_time}) == $t0 + 1_000_000, "stopped at the run's end time");
ok(!-e $spool, 'the file is deleted');

# A spool file's server is printed without its control characters.
open $fh, '>', $spool or die;
print $fh json_encode({grasshopper_spool => 1, server => "http://x\e]0;owned\a\x{9b}2J/",
	test_id => undef, name => 'hostile', description => '', threshold => 0.5,
	start_time => ts($t0), end_time => ts($t0 + 500_000),
	stopped => JSON::PP::false, exit_status => undef}), "\n";
print $fh json_encode({timestamp => ts($t0 + 500_000), cpu_usage => 0.5}), "\n";
close $fh;
$r = gh(args => ['--replay', $spool]);
is($r->{status}, 0, "--replay of a file naming a hostile server: delivered here");
like($r->{stderr}, qr{was recorded for http://x\\x1b\]0;owned\\x07\\xc2\\x9b2J/; sending it to},
	'the server it names is shown with its controls as \xNN');
clean_ok($r->{stderr}, '--replay of it');

# -s still overrides the stored server for a token given for the run.
$r = gh(args => ['-j', $token, '-s', $s->url, 'true']);
ok(summary_id($r), '-j and -s: fine with a stored token for the same server');

# --- the token kept from the command and from ps ----------------------------

$r = gh(args => ['--', 'sh', '-c', 'cat /proc/self/environ; env'],
	env => {GRASSHOPPER_JWT => $token, GRASSHOPPER_SERVER => $s->url});
ok(summary_id($r), 'a run with GRASSHOPPER_JWT') or diag $r->{stderr};
like($r->{stdout}, qr/GRASSHOPPER_SERVER=/, "the command's environment is there");
unlike($r->{stdout}, qr/GRASSHOPPER_JWT/, 'without GRASSHOPPER_JWT');
ok(index($r->{stdout}, $token) < 0, 'and without the token anywhere');

my ($cmdline, $environ) = ('', '');
$r = gh(args => ['-j', $token, '-s', $s->url, '--', 'sleep', '1'],
	during => sub {
		wait_for($_[0], 'sleep');
		$cmdline = slurp("/proc/$_[0]/cmdline");
		$environ = slurp("/proc/$_[0]/environ");
	});
ok(summary_id($r), 'a run with -j TOKEN') or diag $r->{stderr};
like($cmdline, qr/^\Q$GH\E\0-j\0/, "its /proc/PID/cmdline was read ($GH -j ...)");
ok(index($cmdline, $token) < 0, '/proc/PID/cmdline no longer shows the token');
ok(index($cmdline, substr($token, 0, 16)) < 0, 'nor any part of it');
$r = gh(args => ['--', 'sleep', '1'], env => {GRASSHOPPER_JWT => $token, GRASSHOPPER_SERVER => $s->url},
	during => sub { wait_for($_[0], 'sleep'); $environ = slurp("/proc/$_[0]/environ") });
like($environ, qr/GRASSHOPPER_JWT=\0/, "grasshopper's own /proc/PID/environ: the variable's value wiped");
ok(index($environ, $token) < 0, 'the token is not in it');

# --- the credentials file refused -------------------------------------------

chmod 0644, $cred;
$r = gh(args => ['touch', "$tmp/ran"]);
is($r->{status}, 2, 'a credentials file others can read: exit 2');
like($r->{stderr}, qr/\Agrasshopper: \Q$cred\E: others can open it \(mode 0644\).*logout.*\n\z/,
	'one line naming the file, its mode and what to do');
ok(!-e "$tmp/ran", 'the command did not run');
$r = gh(args => ['-q', 'true'], env => {GRASSHOPPER_JWT => $token, GRASSHOPPER_SERVER => $s->url});
is($r->{status}, 0, 'with GRASSHOPPER_JWT the file is not read at all');
chmod 0600, $cred;
open $fh, '>>', $cred or die;
print $fh "token again\n";
close $fh;
$r = gh(args => ['touch', "$tmp/ran"]);
is($r->{status}, 2, 'a malformed credentials file: exit 2');
like($r->{stderr}, qr/\Agrasshopper: \Q$cred\E: line \d+: a second token\n\z/, 'says what is wrong');

# --- logout ------------------------------------------------------------------

$r = gh(args => ['logout']);
is($r->{status}, 0, 'logout: exit 0');
like($r->{stderr}, qr/^grasshopper: logged out: removed \Q$cred\E/m, 'says what it removed (even a broken file)');
ok(!-e $cred, 'the file is gone');
$r = gh(args => ['logout']);
is($r->{status}, 0, 'logout again: exit 0 (nothing stored is not a failure)');
like($r->{stderr}, qr/^grasshopper: not logged in \(no \Q$cred\E\)$/m, 'says there was nothing');
$r = gh(args => ['touch', "$tmp/ran"]);
is($r->{status}, 2, 'no token anywhere: exit 2');
like($r->{stderr}, qr/no token: run grasshopper login/, 'says to log in');

# --- login refused -------------------------------------------------------------

my $bad = $s->jwt({sub => '' . $u->id, iat => time, exp => time + 3600}, key => 'x' x 40);
$r = gh(args => ['login', '-s', $s->url], stdin => "$bad\n");
is($r->{status}, 1, 'a token the tracker rejects: exit 1');
like($r->{stderr}, qr/^grasshopper: login: the tracker at \Q@{[$s->url]}\E rejected the token \(401 unauthorized: [^\n]+\); nothing saved$/m,
	"says so, with the tracker's words");
ok(!-e $cred, 'nothing saved');
ok(index($r->{stderr}, $bad) < 0, 'the rejected token is not printed');

$r = gh(args => ['login', '-s', $other], stdin => "$token\n");
is($r->{status}, 3, 'an unreachable tracker: exit 3');
like($r->{stderr}, qr/^grasshopper: login: cannot reach the tracker at \Q$other\E \(.+\); nothing saved, try again later$/m,
	'says so');
ok(!-e $cred, 'nothing saved');

$r = gh(args => ['login', '-s', $s->url], stdin => '');
is($r->{status}, 2, 'nothing on standard input: exit 2');
like($r->{stderr}, qr/no token on standard input/, 'says so');
$r = gh(args => ['login', '-s', $s->url], stdin => "not a token\n");
is($r->{status}, 2, 'a line with blanks inside: exit 2');
ok(index($r->{stderr}, 'not a token') < 0 || $r->{stderr} =~ /that is not a token/, 'refused without quoting it');
$r = gh(args => ['login', '-s', $s->url], stdin => ('a' x 4001) . "\n");
is($r->{status}, 2, 'a line of 4001 bytes, just past the longest token: exit 2');
like($r->{stderr}, qr/that is not a token/, 'not a token');
$r = gh(args => ['login', '-s', $s->url], stdin => ('a' x 100_000) . "\n");
is($r->{status}, 2, 'a 100 kB line: exit 2');
like($r->{stderr}, qr/too long to be a token/, 'too long');
ok(!-e $cred, 'nothing saved by any of them');

# A good login over an earlier one keeps only the new file; a rejected one
# leaves the earlier one as it was.
gh(args => ['login', '-s', $s->url], stdin => "$token\n");
my $saved = slurp($cred);
$r = gh(args => ['login', '-s', $s->url], stdin => "$bad\n");
is($r->{status}, 1, 'a rejected login over a stored token');
is(slurp($cred), $saved, 'leaves the stored one as it was');
is(mode($cred), '0600', 'still 0600');

# --- login on a terminal: no echo, and echo back after Ctrl-C ----------------

# Run $cmd on a new terminal (script(1)), then for each [qr/.../, TEXT]:
# wait until the terminal has shown that much, type TEXT.
# → (exit status or 'hung', all the terminal showed).
sub on_terminal {
	my ($cmd, @steps) = @_;
	pipe my $rd, my $wr or die "pipe: $!";
	my $out = "$tmp/tty." . time . '.out';
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		close $wr;
		$SIG{$_} = 'DEFAULT' for qw(INT QUIT PIPE TERM HUP CHLD TSTP);
		delete $ENV{$_} for grep /^GRASSHOPPER_/, keys %ENV;
		$ENV{HISTFILE} = '/dev/null';
		open STDIN, '<&', $rd;
		open STDOUT, '>', $out;
		open STDERR, '>&', \*STDOUT;
		exec '/usr/bin/script', '-qefc', $cmd, '/dev/null';
		POSIX::_exit(99);
	}
	close $rd;
	my $t0 = time;
	for my $step (@steps) {
		my ($want, $typed) = @$step;
		sleep 0.02 until slurp($out) =~ $want || time - $t0 > $s->scale(20);
		syswrite $wr, $typed;
	}
	my $st;
	while (time - $t0 < $s->scale(30)) {
		last if waitpid($pid, WNOHANG) == $pid && defined($st = $?);
		sleep 0.02;
	}
	kill 'KILL', $pid unless defined $st;
	close $wr;
	my $shown = slurp($out);
	push @outputs, $shown;
	return (defined $st ? $st >> 8 : 'hung', $shown);
}

SKIP: {
	unless (-x '/usr/bin/script') {
		diag 'NOT TESTED: login on a terminal: no script(1) (apt-get install bsdutils)';
		skip 'no script(1) to make a terminal', 14;
	}
	unlink $cred;
	my $prompt = qr/Token for \S+ \(typing is not shown\): /;
	my ($st, $shown) = on_terminal("$GH login -s " . $s->url, [$prompt, "$token\r"]);
	is($st, 0, 'login on a terminal: exit 0') or diag $shown;
	like($shown, qr/Token for \Q@{[$s->url]}\E \(typing is not shown\): /, 'it prompts');
	ok(index($shown, $token) < 0, 'the typed token is not echoed');
	ok(index($shown, substr($token, 0, 8)) < 0, 'not even its start');
	like(slurp($cred), qr/^token \Q$token\E$/m, 'and it is saved');

	# Ctrl-C at the prompt: grasshopper dies of it, with echo back on
	# (the shell has a trap, so it goes on to show the terminal's modes).
	unlink $cred;
	($st, $shown) = on_terminal(qq{trap 'echo interrupted' INT; $GH login -s } . $s->url
		. q{; echo "status $?"; stty -a}, [$prompt, "abc\x03"]);
	like($shown, qr/^status 130\r?$/m, 'Ctrl-C at the prompt: grasshopper ends of SIGINT (130)') or diag $shown;
	like($shown, qr/(?:^|[ ;])echo(?:[ ;]|$)/m, 'with the terminal echoing again');
	unlike($shown, qr/(?:^|[ ;])-echo(?:[ ;]|$)/m, 'not left without echo');
	ok(!-e $cred, 'nothing saved');

	# Ctrl-Z at the prompt in an interactive shell, then fg: the shell
	# gets the terminal back (echoing), and the token typed after fg is
	# hidden again.
	($st, $shown) = on_terminal('bash --norc --noprofile -i',
		[qr/[#\$] $/, "$GH login -s " . $s->url . "\r"],
		[$prompt, "ab\x1a"],
		[qr/Stopped/, "fg\r"],
		[qr/(?:typing is not shown.*){2}/s, "$token\r"],
		[qr/logged in to .*\n.*[#\$] $/, "exit\r"]);
	like($shown, qr/Stopped/, 'Ctrl-Z at the prompt stops it') or diag $shown;
	like($shown, qr/(?:$prompt.*){2}/s, 'after fg it asks again');
	ok(index($shown, $token) < 0, 'the token typed after fg is not echoed');
	like($shown, qr/grasshopper: logged in to /, 'and it is saved');
	like(slurp($cred), qr/^token \Q$token\E$/m, 'the whole token, not the ab typed before');
}

# --- tracker messages printed without control characters ---------------------

# A tracker that answers every request 401 with a hostile message: ESC
# sequences (a window title, clear screen), BEL, a C1 CSI, a newline.
my $hostile = 'bad token' . "\e]0;pwned\a\e[2J\x{9b}31m\nforged line";
my $body = json_encode({error => "unauthorized\e[5m", message => $hostile});
my $fake = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
	Proto => 'tcp', Listen => 16, ReuseAddr => 1) or die "listen: $!";
my $fake_url = 'http://127.0.0.1:' . $fake->sockport;
my $responder = fork // die "fork: $!";
if ($responder == 0) {
	$SIG{ALRM} = sub { POSIX::_exit(0) };
	alarm POSIX::ceil($s->scale(120));
	while (my $c = $fake->accept) {
		# The whole request, body too: closing on unread input would
		# reset the connection under the answer.
		my $req = '';
		while ($req !~ /\r\n\r\n/) {
			my $n = sysread $c, $req, 4096, length $req;
			last unless $n;
		}
		my ($len) = $req =~ /^Content-Length:\s*(\d+)/mi;
		while (defined $len && length($req) - index($req, "\r\n\r\n") - 4 < $len) {
			my $n = sysread $c, $req, 4096, length $req;
			last unless $n;
		}
		print $c "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
			. 'Content-Length: ' . length($body) . "\r\nConnection: close\r\n\r\n$body";
		close $c;
	}
	POSIX::_exit(0);
}
close $fake;

# No raw control byte in s: C0 but newline, DEL, C1 in UTF-8, a lone 0x80-0x9f.
sub clean_ok {
	my ($s, $what) = @_;
	my @bad = $s =~ /([\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f])/g;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok(!@bad, "$what: no control character printed") or diag explain $s;
}

$r = gh(args => ['login', '-s', $fake_url], stdin => "$token\n");
is($r->{status}, 1, 'login against a hostile 401: exit 1');
clean_ok($r->{stderr}, 'login');
like($r->{stderr}, qr/rejected the token \(401 unauthorized\\x1b\[5m: bad token\\x1b\]0;pwned\\x07\\x1b\[2J\\xc2\\x9b31m\\x0aforged line\); nothing saved$/m,
	'the message is shown with each control as \xNN, on one line');
$r = gh(args => ['-i', '0.1', '--', 'sh', '-c', 'exit 5'],
	env => {GRASSHOPPER_JWT => $token, GRASSHOPPER_SERVER => $fake_url});
is($r->{status}, 5, "a run against it: the command's status");
clean_ok($r->{stderr}, 'a run');
like($r->{stderr}, qr/^grasshopper: the tracker rejected the token \(401 unauthorized\\x1b\[5m: bad token\\x1b\]0;pwned\\x07\\x1b\[2J\\xc2\\x9b31m\\x0aforged line\); get a new one on its web page$/m,
	'the run shows it the same way');
my ($kept) = $r->{stderr} =~ /saved in (\S+);/;
ok($kept && -f $kept, 'its samples are spooled') or diag $r->{stderr};
ok(index(slurp($kept // ''), $token) < 0, 'and the spool file does not hold the token');
unlink $kept if $kept;
kill 'TERM', $responder;
waitpid $responder, 0;

# --- never the token ------------------------------------------------------------

outputs_clean_ok(\@outputs, $token);

$s->stop;
done_testing;
