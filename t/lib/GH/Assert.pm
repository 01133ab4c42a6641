package GH::Assert;

# Assertions on the stack's answers (the hashes GH::Stack's api() and raw()
# return), as Test::More tests.  Core Perl only.  Exported on request,
# by this module and again by GH::Stack:
#
#   is_json_ok($res, $status, $name)             status and JSON content type
#   is_error($res, $status, $code, $name, field => F)   an error in the
#                                                API's shape
#   is_num($v), is_bool($v)                      a JSON number, a JSON boolean
#   fresh($res)                                  the body decoded again

use strict;
use warnings;

use B ();
use Exporter qw(import);
use JSON::PP ();
use Test::More ();
use GH::Util qw(json_decode);

our @EXPORT_OK = qw(is_error is_json_ok is_num is_bool fresh);

# fresh($res): the body decoded again, so type checks (is_num) see the
# values as JSON gave them, before any test stringified them.
sub fresh { my $r = shift; return eval { json_decode($r->{content}) } }

# is_num($v): a JSON number (not a string holding one).
sub is_num {
	my $v = shift;
	return 0 if !defined $v || ref $v;
	my $f = B::svref_2object(\$v)->FLAGS;
	return ($f & (B::SVp_IOK | B::SVp_NOK)) && !($f & B::SVp_POK) ? 1 : 0;
}

sub is_bool { JSON::PP::is_bool($_[0]) ? 1 : 0 }

# is_json_ok($res, $status, $name): status and JSON content type.
sub is_json_ok {
	my ($res, $status, $name) = @_;
	my $tb = Test::More->builder;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ct = $res->{headers}{'content-type'} // '';
	my $ok = $res->{status} == $status && lc($ct) eq 'application/json; charset=utf-8'
		&& ref $res->{json};
	$tb->ok($ok, $name) or $tb->diag("expected $status application/json; got "
		. "$res->{status} [$ct] " . substr($res->{content}, 0, 300));
	return $ok;
}

# is_error($res, $status, $code, $name, field => F): an error in the API's
# shape: status, JSON content type, {"error": $code, "message": non-empty}
# ($code may be an array ref of acceptable codes), and when `field` is given
# a message naming it.
sub is_error {
	my ($res, $status, $code, $name, %o) = @_;
	my $tb = Test::More->builder;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $j = $res->{json};
	my $ct = $res->{headers}{'content-type'} // '';
	my @codes = ref $code ? @$code : ($code);
	my @why;
	push @why, "status $res->{status}, expected $status" if $res->{status} != $status;
	push @why, "content-type [$ct]" if lc($ct) ne 'application/json; charset=utf-8';
	if (ref $j ne 'HASH') {
		push @why, 'body is not a JSON object';
	} else {
		push @why, 'error is ' . ($j->{error} // 'missing') . ', expected ' . join('|', @codes)
			unless defined $j->{error} && grep { $_ eq $j->{error} } @codes;
		push @why, 'message missing or empty'
			unless defined $j->{message} && !ref $j->{message} && length $j->{message};
		push @why, "message does not name '$o{field}'"
			if defined $o{field} && defined $j->{message} && !ref $j->{message}
			&& index($j->{message}, $o{field}) < 0;
	}
	$tb->ok(!@why, $name)
		or $tb->diag(join('; ', @why) . "\n  body: " . substr($res->{content}, 0, 300));
	return !@why;
}

1;
