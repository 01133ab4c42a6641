#!/usr/bin/perl
# Start a private grasshopper stack (t/lib/GH/Stack.pm) for bench/client.sh:
# print "URL TOKEN" on one line, hold the stack until stdin closes, stop it.
use strict;
use warnings;
use GH::Stack;

$| = 1;
my $s = GH::Stack->new(quiet => 1)->start;
my $u = $s->user;
print $s->url, ' ', $u->token, "\n";
1 while defined <STDIN>;
$s->stop(implicit => 1);
