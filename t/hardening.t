# The release build is hardened (configure's default; off with
# --disable-hardening and under the sanitizers): both programs are PIE, with
# full RELRO (relro + now), the stack protector and _FORTIFY_SOURCE's
# checked string functions. Read from the binaries with readelf(1).
use strict;
use warnings;

use Test::More;

plan skip_all => 'built without hardening (sanitizers or --disable-hardening)'
	unless ($ENV{GH_HARDENING} // '') eq 'yes';
plan skip_all => 'readelf not found (apt-get install binutils)'
	unless grep { -x "$_/readelf" } split /:/, $ENV{PATH};

my $builddir = $ENV{GH_BUILDDIR} // '.';
my @programs = grep { -x "$builddir/$_" } qw(grasshopper grasshopper-tracker);
ok(scalar @programs, 'found the programs to check') or diag "in $builddir";

for my $p (@programs) {
	my $bin = "$builddir/$p";
	my $header = `readelf -h $bin`;
	my $dynamic = `readelf -d $bin`;
	my $segments = `readelf -lW $bin`;
	my $symbols = `readelf --dyn-syms -W $bin`;
	like($header, qr/Type:\s+DYN/, "$p: position-independent executable (PIE)");
	like($segments, qr/GNU_RELRO/, "$p: RELRO segment");
	like($dynamic, qr/\(FLAGS\)\s+BIND_NOW|\(FLAGS_1\)\s+Flags:.*\bNOW\b/, "$p: bound now (full RELRO)");
	like($symbols, qr/\b__stack_chk_fail\b/, "$p: stack protector");
	like($symbols, qr/\b__\w+_chk\b(?<!__stack_chk)/, "$p: _FORTIFY_SOURCE's checked functions")
		or diag join ' ', $symbols =~ /(\w+_chk)/g;
}

done_testing;
