package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeViews writes the views the rows add next to the built-in ones and
// returns their directory. Neither is cached, so every request reaches the
// upstreams whatever the cache does:
//
//	/web/user/{id}   chaos.user: users only (required), for rows about one upstream
//	/web/chome/{id}  chaos.home: web.home's calls (users, orders required; recs
//	                 optional) with the row's deadline
//	POST /web/note/{id}  chaos.note: a mutation, its body sent to users once
func writeViews(t *testing.T, timeout time.Duration) string {
	t.Helper()
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	dir := t.TempDir()
	src := fmt.Sprintf(`client: web
views:
  - name: chaos.user
    route: /user/{id}
    params: {id: '[0-9]{1,18}'}
    timeout: %[1]s
    calls:
      user: {upstream: users, path: '/users/{id}'}
    shape:
      user: {from: user, fields: [id, name]}
  - name: chaos.home
    route: /chome/{id}
    params: {id: '[0-9]{1,18}'}
    timeout: %[1]s
    calls:
      user: {upstream: users, path: '/users/{id}'}
      orders: {upstream: orders, path: /orders, query: 'user_id={id}'}
      recommendations: {upstream: recs, path: /recommendations, query: 'user_id={id}', optional: true}
    shape:
      user: {from: user, fields: [id, name]}
      orders: {list: orders.orders, limit: 10, fields: [id, status]}
      recommendations: {list: recommendations.items, limit: 10, fields: [id, title]}
  - name: chaos.note
    route: /note/{id}
    method: POST
    params: {id: '[0-9]{1,18}'}
    timeout: %[1]s
    body: {schema: {type: object}}
    calls:
      note: {upstream: users, method: POST, path: '/users/{id}/notes', body: request}
    shape:
      ok: note.ok
`, timeout)
	if err := os.WriteFile(filepath.Join(dir, "chaos.yaml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
