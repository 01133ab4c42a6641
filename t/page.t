# The web page in a real browser (issue 4): t/page/browser.mjs drives Debian's
# chromium with playwright-core against a private stack, as a person would —
# sign up, log in, copy the token, read the runs, the chart and the CSV, log
# out; then the tokens panel (issue 11): create, use and revoke a named token,
# change the password, log out everywhere, each checked against the API — and
# prints each check as a line of JSON that becomes a TAP test here. Later
# views have scenarios of their own beside it (t/page/*.mjs, sharing
# t/page/lib.mjs). Screenshots go to $GH_BUILDDIR/t/artifacts/page-*.png.
#
# Needs chromium, node, playwright-core ($GH_NODE_MODULES, from `npm ci`) and
# the vendored uPlot (html/vendor/, from make): script/bootstrap installs
# them. Without them the test is skipped with the reason, except under CI,
# where a browser test that did not run is a failure.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use Test::More;
use GH::Stack qw(json_decode);

my $src = $ENV{GH_SRCDIR} || abs_path(dirname(__FILE__) . '/..');
my $build = $ENV{GH_BUILDDIR} || $src;
my $modules = $ENV{GH_NODE_MODULES} || "$src/node_modules";
my $chromium = $ENV{GH_CHROMIUM} || '/usr/bin/chromium';
my $artifacts = "$build/t/artifacts";

my @missing;
push @missing, "no chromium at $chromium (apt-get install chromium)" unless -x $chromium;
push @missing, 'no node in PATH (apt-get install nodejs)'
	unless grep { -x "$_/node" } split /:/, $ENV{PATH} // '';
push @missing, "no playwright-core in $modules (npm ci)"
	unless -f "$modules/playwright-core/index.mjs";
push @missing, "no uPlot in $src/html/vendor (npm ci, then make)"
	unless -f "$src/html/vendor/uPlot.iife.min.js";
if (@missing) {
	my $why = join '; ', @missing;
	my $ci = ($ENV{CI} // '') !~ /^(|0|false|no)$/i;
	print STDERR "\n", '#' x 72, "\n# t/page.t: THE BROWSER TEST CANNOT RUN: $why.\n",
		"# script/bootstrap installs all of it.\n", '#' x 72, "\n";
	if ($ci) {
		fail("the browser test runs (CI is set): $why");
		done_testing;
		exit 1;
	}
	plan skip_all => "NOT TESTED IN A BROWSER: $why (script/bootstrap installs them)";
}

my $s = GH::Stack->new->start;

# Another user's run: the page must not show it to ours.
my $bob = $s->user;
my $r = $bob->api(POST => 'test', {name => 'other-users-secret-run'});
is($r->{status}, 201, "another user's run") or diag $r->{content};

make_path($artifacts);
unlink glob "$artifacts/page-*.png";
local $ENV{GH_URL} = $s->url;
local $ENV{GH_OTHER_RUN} = $r->{json}{id};
local $ENV{GH_ARTIFACTS} = $artifacts;
local $ENV{GH_NODE_MODULES} = $modules;
local $ENV{GH_CHROMIUM} = $chromium;
local $ENV{GH_SLOW} = $s->slow;    # browser.mjs scales its waits by it

# Each scenario (t/page/*.mjs but lib.mjs) is its own bounded browser session:
# a hung browser fails, never blocks. browser.mjs is the version-1 walk
# through the page; the others are the views added since.
my %least = ('browser.mjs' => 120, 'run.mjs' => 80, 'list.mjs' => 90);
for my $scenario (sort map { basename($_) } glob "$src/t/page/*.mjs") {
	next if $scenario eq 'lib.mjs';
	my $checks = run_scenario($scenario);
	cmp_ok($checks, '>=', $least{$scenario} // 1, "$scenario reported all its checks");
}

# Run one scenario; every line of JSON it prints is a test; returns how many.
sub run_scenario {
	my ($scenario) = @_;
	my $pid = open(my $out, '-|') // die "fork: $!";
	if ($pid == 0) {
		open STDERR, '>&', \*STDOUT;
		exec 'timeout', '-k', '10', $s->scale(300), 'node', "$src/t/page/$scenario"
			or die "exec node: $!";
	}
	my $checks = 0;
	while (my $line = <$out>) {
		chomp $line;
		my $c = $line =~ /^\{/ ? eval { json_decode($line) } : undef;
		if (!$c) {
			note $line;    # the browser's or node's own output
			next;
		}
		$checks++;
		ok($c->{ok}, $c->{name}) or diag $c->{diag};
	}
	close $out;
	is($? >> 8, 0, "$scenario exited 0") or diag "node exited with $?";
	return $checks;
}
note "screenshots: $artifacts/page-*.png";

$s->stop;
done_testing;
