package demo

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

const (
	// cachedIDs bounds the body caches: user ids 1..cachedIDs are generated
	// once per handler, larger ids on every request.
	cachedIDs = 4096

	// maxSKUs is the most SKUs one catalog request may name.
	maxSKUs = 100
)

// Names lists the upstreams the demo can serve: "users", "orders", "recs",
// "catalog".
func Names() []string { return []string{"users", "orders", "recs", "catalog"} }

// Handler returns the http.Handler serving the named demo upstream, or false
// if unknown. Each call returns a new handler with its own body cache.
func Handler(name string) (http.Handler, bool) {
	switch name {
	case "users":
		c := newCache(userBody)
		return handler(func(r *http.Request) (int, []byte) {
			id, ok := strings.CutPrefix(r.URL.Path, "/users/")
			if !ok {
				return notFound()
			}
			return c.serve(id)
		}), true
	case "orders":
		c := newCache(ordersBody)
		return handler(func(r *http.Request) (int, []byte) {
			if r.URL.Path == "/orders" {
				return c.serve(r.URL.Query().Get("user_id"))
			}
			if id, ok := strings.CutPrefix(r.URL.Path, "/orders/"); ok {
				return serveOrder(id)
			}
			return notFound()
		}), true
	case "recs":
		c := newCache(recsBody)
		return handler(func(r *http.Request) (int, []byte) {
			if r.URL.Path != "/recommendations" {
				return notFound()
			}
			return c.serve(r.URL.Query().Get("user_id"))
		}), true
	case "catalog":
		return handler(func(r *http.Request) (int, []byte) {
			if r.URL.Path == "/products" {
				return serveProducts(r.URL.Query().Get("skus"))
			}
			if sku, ok := strings.CutPrefix(r.URL.Path, "/products/"); ok {
				return serveProduct(sku)
			}
			return notFound()
		}), true
	}
	return nil, false
}

// handler adapts an endpoint, which returns a status and a JSON body, to an
// http.Handler. It answers /healthz and rejects methods other than GET and
// HEAD before the endpoint sees the request.
type handler func(r *http.Request) (status int, body []byte)

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		write(w, r, http.StatusMethodNotAllowed, "application/json", errorBody("method not allowed"))
		return
	}
	if r.URL.Path == "/healthz" {
		write(w, r, http.StatusOK, "text/plain; charset=utf-8", []byte("ok"))
		return
	}
	status, body := h(r)
	write(w, r, status, "application/json", body)
}

func write(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // a failed write means the client has gone
	}
}

// errorBody returns {"error":msg}; msg must not need JSON escaping.
func errorBody(msg string) []byte { return []byte(`{"error":"` + msg + `"}`) }

func notFound() (int, []byte) { return http.StatusNotFound, errorBody("not found") }

func internalError() (int, []byte) {
	return http.StatusInternalServerError, errorBody("internal error")
}

// parseUserID accepts a user id in canonical decimal form (no sign, no
// leading zero) in 1..maxUserID, so each user has exactly one spelling.
func parseUserID(s string) (int, bool) {
	if len(s) == 0 || len(s) > len("1000000") || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= maxUserID
}

// cache holds the bodies of user ids 1..cachedIDs, filled on first use. Two
// concurrent misses for one id both generate it and store the same bytes.
type cache struct {
	gen   func(userID int) ([]byte, error)
	slots []atomic.Pointer[[]byte] // index is the user id
}

func newCache(gen func(int) ([]byte, error)) *cache {
	return &cache{gen: gen, slots: make([]atomic.Pointer[[]byte], cachedIDs+1)}
}

// serve answers the body for the user id spelled s.
func (c *cache) serve(s string) (int, []byte) {
	id, ok := parseUserID(s)
	if !ok {
		return notFound()
	}
	if id >= len(c.slots) {
		return generated(c.gen(id))
	}
	if b := c.slots[id].Load(); b != nil {
		return http.StatusOK, *b
	}
	b, err := c.gen(id)
	if err != nil {
		return internalError()
	}
	c.slots[id].Store(&b)
	return http.StatusOK, b
}

func generated(body []byte, err error) (int, []byte) {
	if err != nil {
		return internalError()
	}
	return http.StatusOK, body
}

// serveOrder answers one order by id, "ord-{user_id}-{nn}" with nn 01..20.
func serveOrder(id string) (int, []byte) {
	rest, ok := strings.CutPrefix(id, "ord-")
	if !ok {
		return notFound()
	}
	user, nn, ok := strings.Cut(rest, "-")
	if !ok || len(nn) != 2 || nn[0] < '0' || nn[0] > '9' || nn[1] < '0' || nn[1] > '9' {
		return notFound()
	}
	userID, ok := parseUserID(user)
	n := int(nn[0]-'0')*10 + int(nn[1]-'0')
	if !ok || n < 1 || n > ordersPerUser {
		return notFound()
	}
	return generated(orderBody(userID, n))
}

// serveProducts answers the products named by a comma-separated SKU list,
// in request order without duplicates.
func serveProducts(list string) (int, []byte) {
	body := struct {
		Products []product `json:"products"`
	}{Products: []product{}}
	if list == "" {
		return generated(json.Marshal(body))
	}
	if strings.Count(list, ",") >= maxSKUs {
		return http.StatusBadRequest, errorBody("too many skus (at most 100)")
	}
	seen := make(map[int]bool)
	for s := range strings.SplitSeq(list, ",") {
		sku, ok := parseSKU(s)
		if !ok {
			return http.StatusBadRequest, errorBody("malformed sku")
		}
		if !seen[sku] {
			seen[sku] = true
			body.Products = append(body.Products, newProduct(sku))
		}
	}
	return generated(json.Marshal(body))
}

func serveProduct(s string) (int, []byte) {
	sku, ok := parseSKU(s)
	if !ok {
		return notFound()
	}
	return generated(json.Marshal(newProduct(sku)))
}
