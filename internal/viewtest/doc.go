// Package viewtest runs views against fixtures: files that give, per case,
// the client's request, what each upstream answers (or how it fails) and
// what the client must receive. Each case runs through the real front,
// engine and upstream clients against httptest servers serving the
// fixtures, with the cache off; a mismatch is reported per JSON path, and
// an upstream request no fixture foresaw fails the case and names the
// request, which is how a team learns what its view asks for.
//
// It does not find files on its own (cmd/bff's `bff test` does: the
// built-in views' bff/web/tests and bff/mobile/tests, and a views
// directory's tests/), and it never calls a real upstream.
//
// # Fixture files
//
// A file named *.test.yaml holds cases for one view. Keys are strict, as
// in view files: a typo is an error with the file and line.
//
//	view: web.home                 # the view under test, by name
//	upstreams:                     # optional: answers every case gets
//	  users:
//	    - path: /users/42
//	      body: {id: 42, name: Ada}
//	cases:
//	  - name: recommendations time out
//	    request: /web/home/42      # or {path, method, headers: {Accept-Language: de}, body: {...}, auth: {sub: "42", scope: profile}}
//	    upstreams:                 # this case's answers; one for the same request
//	      recs:                    # replaces the file's
//	        - {path: /recommendations, query: user_id=42, timeout: true}
//	    expect:
//	      status: 200              # default 200 (any status when problem is set)
//	      partial: recommendations;reason=timeout   # Bff-Partial; absent: must be absent
//	      headers: {Cache-Control: no-store}        # null: must be absent
//	      body: {user: {id: 42, name: Ada}, recommendations: []}
//
// request.auth has the runner sign a token for that caller with a key of
// its own, which the view's client trusts for the case; request.body is
// sent as application/json (for mutation views).
//
// An answer matches a request by method (default GET), path and query
// (compared as parsed values; no query: the request must have none) and,
// if request_headers is given, those headers. It sends status (default
// 200), headers and body, an inline YAML value sent as JSON with its keys
// in file order, or body_file, a file relative to the fixture file sent
// as it is (so it may be broken JSON on purpose). delay holds the answer
// back; timeout: true never answers, so the caller gives up (below); reset:
// true drops the connection. A request no answer matches gets a 404 and
// fails the case; an answer no request asks for is fine. When a required
// call fails, the view's other calls may or may not have been sent by
// then: answer them too (the file's upstreams do), or the case fails now
// and then on an unexpected request.
//
// The expected body (body, or body_file holding JSON) is compared as JSON
// values, and object keys must come in the same order: a view writes them
// in definition order. A problem response is checked by status and
// problem (its type, e.g. upstream-timeout for urn:bff:problem:upstream-timeout).
//
// Nothing in a case is timed but what the fixtures say. A timeout answer
// holds the request until the upstream client gives up, and the runner
// sets that client's timeout to a quarter of the view's (or the
// configured one, if shorter): a call left to run into the view's own
// deadline ends only timeout/20 (at most 50ms) before it, a margin a busy
// machine can overrun, turning the partial answer a case expects into a
// 504. A call whose view sets its own timeout keeps it. view_timeout, per
// file or per case, replaces the view's timeout, e.g. to test it with a
// delay.
package viewtest
