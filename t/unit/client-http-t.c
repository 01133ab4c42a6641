/*
 * The client's reading of HTTP/1.x answers (http_parse): framing by
 * Content-Length, chunks or the end of the connection; interim answers;
 * whether the connection may be kept; what is not HTTP.
 */
#include "grasshopper.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* Parse the whole text s (eof as given) into a; return http_parse's. */
static int
parse(const char *s, bool eof, struct http_answer *a)
{
	return http_parse(s, strlen(s), eof, a);
}

/* Every proper prefix of s asks for more; s itself is whole. */
static void
arrives_whole(const char *s, const char *what)
{
	struct http_answer a = {0};
	size_t n = strlen(s), bad = 0;
	for (size_t i = 0; i < n && !bad; i++)
		if (http_parse(s, i, false, &a) != 0)
			bad = i + 1;
	ok(!bad, "%s: each of its %zu prefixes waits for more%s", what, n,
	   bad ? " (one did not)" : "");
	is_int(http_parse(s, n, false, &a), 1, "%s: whole once all is in",
	       what);
	buf_free(&a.body);
}

int
main(void)
{
	struct http_answer a = {0};
	const char *s;

	/* --- Content-Length --- */
	s = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
	    "Content-Length: 8\r\n\r\n{\"id\":1}";
	is_int(parse(s, false, &a), 1, "a 201 with a Content-Length");
	is_int(a.code, 201, "its status");
	is_str(a.body.p, "{\"id\":1}", "its body");
	ok(a.keep_alive, "HTTP/1.1 keeps the connection");
	is_int(a.consumed, strlen(s), "all of it consumed");
	arrives_whole(s, "Content-Length");

	s = "HTTP/1.1 200 OK\r\ncontent-length:2\r\n\r\n{}HTTP/1.1 200";
	is_int(parse(s, false, &a), 1, "header names in any case, no blank");
	is_int(a.consumed, strlen(s) - strlen("HTTP/1.1 200"),
	       "what follows the answer is not consumed");

	is_int(
	    parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", true, &a),
	    0, "cut short at the end of the connection: still not whole");

	/* --- chunks --- */
	s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "4\r\n{\"a\"\r\n9;ext=1\r\n:1234567}\r\n0\r\nX-Trailer: y\r\n\r\n";
	is_int(parse(s, false, &a), 1, "a chunked answer");
	is_str(a.body.p, "{\"a\":1234567}", "the chunks joined");
	is_int(a.consumed, strlen(s), "up to the end of the trailers");
	ok(a.keep_alive, "kept alive");
	arrives_whole(s, "chunked");
	s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "A\r\n0123456789\r\n0\r\n\r\n";
	is_int(parse(s, false, &a), 1, "a chunk size in upper-case hex");
	is_int(a.body.len, 10, "ten bytes");
	is_int(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "zz\r\n",
		     false, &a),
	       -1, "a chunk size that is not hex is refused");
	is_int(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "2\r\nabc\r\n0\r\n\r\n",
		     false, &a),
	       -1, "a chunk longer than its size is refused");
	is_int(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "ffffffffffffffffff\r\n",
		     false, &a),
	       -1, "a huge chunk size is refused");

	/* --- to the end of the connection --- */
	s = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}";
	is_int(parse(s, false, &a), 0, "no length: more until the end");
	is_int(parse(s, true, &a), 1, "whole at the end of the connection");
	is_str(a.body.p, "{}", "the body");
	ok(!a.keep_alive, "and the connection is not kept");

	/* --- no body --- */
	is_int(parse("HTTP/1.1 204 No Content\r\n\r\n", false, &a), 1,
	       "a 204 has no body");
	is_int(a.body.len, 0, "empty");
	is_int(parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 "
		     "Unauthorized\r\nContent-Length: 2\r\n\r\n{}",
		     false, &a),
	       1, "an interim 100 is skipped");
	is_int(a.code, 401, "the final status counts");
	arrives_whole("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
		      "Content-Length: 0\r\n\r\n",
		      "after a 100");

	/* --- keeping the connection --- */
	parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
	      "0\r\n\r\n",
	      false, &a);
	ok(!a.keep_alive, "Connection: close is not kept");
	parse("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\n"
	      "Content-Length: 0\r\n\r\n",
	      false, &a);
	ok(!a.keep_alive, "close among other tokens, in any case");
	parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, &a);
	ok(!a.keep_alive, "HTTP/1.0 is not kept by default");
	parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: "
	      "0\r\n\r\n",
	      false, &a);
	ok(a.keep_alive, "unless it says keep-alive");
	is_int(parse("HTTP/1.1 200\nContent-Length: 1\n\nx", false, &a), 1,
	       "bare LF line ends and no reason phrase");
	is_str(a.body.p, "x", "the body after them");

	/* --- not HTTP --- */
	const struct {
		const char *text, *what;
	} bad[] = {
	    {"SSH-2.0-OpenSSH_9.2\r\n", "another protocol"},
	    {"HTTP/2 200\r\n\r\n", "HTTP/2"},
	    {"HTTP/1.1 2000 OK\r\n\r\n", "a four-digit status"},
	    {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "a header without :"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
	     "a length that is not a number"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "an empty length"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: "
	     "3\r\n\r\nabc",
	     "two lengths that disagree"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	     "a length beyond any answer"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		is_int(parse(bad[i].text, false, &a), -1, "not an answer: %s",
		       bad[i].what);
	is_int(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length:"
		     " 2\r\n\r\nab",
		     false, &a),
	       1, "a repeated Content-Length that agrees is fine");

	buf_free(&a.body);
	return done_testing();
}
