package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs one request against a fresh handler for the named upstream.
func serve(t testing.TB, name, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	h, ok := Handler(name)
	if !ok {
		t.Fatalf("Handler(%q): not found", name)
	}
	return do(h, method, target)
}

func do(h http.Handler, method, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

// get returns the body of a GET that must answer 200 with JSON.
func get(t testing.TB, name, target string) []byte {
	t.Helper()
	w := serve(t, name, http.MethodGet, target)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %s", target, w.Code, w.Body)
	}
	checkJSONHeaders(t, target, w)
	return w.Body.Bytes()
}

func checkJSONHeaders(t testing.TB, target string, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", target, ct)
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		t.Errorf("GET %s: Content-Length %q for a body of %d bytes", target, cl, w.Body.Len())
	}
	if !json.Valid(w.Body.Bytes()) {
		t.Errorf("GET %s: invalid JSON %s", target, w.Body)
	}
}

// keysOf returns the keys of a JSON object in the order they appear.
func keysOf(t testing.TB, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %.80s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reading key: %v", err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("reading value of %v: %v", tok, err)
		}
	}
	return keys
}

func checkKeys(t testing.TB, what string, raw []byte, want ...string) {
	t.Helper()
	if got := keysOf(t, raw); !slices.Equal(got, want) {
		t.Errorf("%s keys = %v, want %v", what, got, want)
	}
}

func fields(t testing.TB, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %.80s: %v", raw, err)
	}
	return m
}

func decode[T any](t testing.TB, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %.80s into %T: %v", raw, v, err)
	}
	return v
}

var (
	skuPattern    = regexp.MustCompile(`^SKU-[0-9]{6}$`)
	ratingPattern = regexp.MustCompile(`^(3\.[0-9]|4\.[0-9]|5\.0)$`)
)

func TestNames(t *testing.T) {
	if got, want := Names(), []string{"users", "orders", "recs", "catalog"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, name := range Names() {
		if h, ok := Handler(name); !ok || h == nil {
			t.Errorf("Handler(%q) = %v, %v", name, h, ok)
		}
	}
	if _, ok := Handler("nope"); ok {
		t.Error(`Handler("nope") reported ok`)
	}
}

func TestUser(t *testing.T) {
	for _, id := range []int{7, 1, cachedIDs + 1, maxUserID} {
		t.Run(strconv.Itoa(id), func(t *testing.T) {
			body := get(t, "users", "/users/"+strconv.Itoa(id))
			checkKeys(t, "user", body, "id", "name", "email", "avatar_url", "phone", "address",
				"created_at", "preferences", "bio")
			u := fields(t, body)
			checkKeys(t, "address", u["address"], "street", "city", "zip", "country")
			checkKeys(t, "preferences", u["preferences"], "theme", "language", "newsletter")

			if got := string(u["id"]); got != strconv.Itoa(id) {
				t.Errorf("id = %s, want the number %d", got, id)
			}
			created := decode[string](t, u["created_at"])
			if _, err := time.Parse(time.RFC3339, created); err != nil {
				t.Errorf("created_at %q: %v", created, err)
			}
			prefs := decode[map[string]any](t, u["preferences"])
			if _, ok := prefs["newsletter"].(bool); !ok {
				t.Errorf("newsletter = %#v, want a bool", prefs["newsletter"])
			}
			for _, k := range []string{"name", "email", "avatar_url", "phone", "bio"} {
				if s := decode[string](t, u[k]); s == "" {
					t.Errorf("%s is empty", k)
				}
			}
			if n := len(body); n < 700 || n > 1300 {
				t.Errorf("body is %d bytes, want about 1 KB", n)
			}
		})
	}
}

func TestOrders(t *testing.T) {
	for _, id := range []int{7, cachedIDs + 1} {
		t.Run(strconv.Itoa(id), func(t *testing.T) {
			body := get(t, "orders", "/orders?user_id="+strconv.Itoa(id))
			checkKeys(t, "list", body, "orders")
			orders := decode[struct{ Orders []json.RawMessage }](t, body).Orders
			if len(orders) != 20 {
				t.Fatalf("%d orders, want 20", len(orders))
			}
			var prev time.Time
			for i, raw := range orders {
				checkKeys(t, "order", raw, "id", "status", "total_cents", "currency", "created_at", "items", "shipping")
				o := fields(t, raw)
				checkKeys(t, "shipping", o["shipping"], "carrier", "tracking", "eta")

				if got, want := decode[string](t, o["id"]), fmt.Sprintf("ord-%d-%02d", id, 20-i); got != want {
					t.Errorf("order %d: id %q, want %q", i, got, want)
				}
				created, err := time.Parse(time.RFC3339, decode[string](t, o["created_at"]))
				if err != nil {
					t.Errorf("order %d: created_at: %v", i, err)
				}
				if i > 0 && !created.Before(prev) {
					t.Errorf("order %d created %v, not before order %d (%v): not newest first", i, created, i-1, prev)
				}
				prev = created
				if _, err := time.Parse(time.DateOnly, decode[map[string]string](t, o["shipping"])["eta"]); err != nil {
					t.Errorf("order %d: eta: %v", i, err)
				}

				items := decode[[]json.RawMessage](t, o["items"])
				if len(items) != 3 {
					t.Fatalf("order %d: %d items, want 3", i, len(items))
				}
				sum := 0
				for _, raw := range items {
					checkKeys(t, "item", raw, "sku", "name", "qty", "price_cents")
					it := decode[struct {
						SKU        string
						Qty        int
						PriceCents int `json:"price_cents"`
					}](t, raw)
					if !skuPattern.MatchString(it.SKU) {
						t.Errorf("order %d: sku %q", i, it.SKU)
					}
					if it.Qty < 1 || it.PriceCents < 1 {
						t.Errorf("order %d: qty %d, price_cents %d", i, it.Qty, it.PriceCents)
					}
					sum += it.Qty * it.PriceCents
				}
				if total := decode[int](t, o["total_cents"]); total != sum {
					t.Errorf("order %d: total_cents %d, want sum of items %d", i, total, sum)
				}
			}
			if n := len(body); n < 6000 || n > 10000 {
				t.Errorf("body is %d bytes, want about 8 KB", n)
			}
		})
	}
}

func TestOrderByIDEqualsListElement(t *testing.T) {
	for _, user := range []int{7, cachedIDs + 1, maxUserID} {
		list := decode[struct{ Orders []json.RawMessage }](t,
			get(t, "orders", "/orders?user_id="+strconv.Itoa(user))).Orders
		for _, raw := range list {
			want := decode[map[string]any](t, raw)
			id := want["id"].(string)
			one := get(t, "orders", "/orders/"+id)
			checkKeys(t, id, one, "id", "user_id", "status", "total_cents", "currency", "created_at", "items", "shipping")
			got := decode[map[string]any](t, one)
			if got["user_id"] != float64(user) {
				t.Errorf("%s: user_id = %v, want %d", id, got["user_id"], user)
			}
			delete(got, "user_id")
			if !reflect.DeepEqual(got, want) {
				t.Errorf("/orders/%s differs from its list element:\n got %v\nwant %v", id, got, want)
			}
		}
	}
}

func TestRecommendations(t *testing.T) {
	body := get(t, "recs", "/recommendations?user_id=7")
	checkKeys(t, "list", body, "items")
	items := decode[struct{ Items []json.RawMessage }](t, body).Items
	if len(items) != 20 {
		t.Fatalf("%d items, want 20", len(items))
	}
	ids := map[string]bool{}
	for i, raw := range items {
		checkKeys(t, "item", raw, "id", "title", "price_cents", "image_url", "rating", "description", "tags")
		f := fields(t, raw)
		if r := string(f["rating"]); !ratingPattern.MatchString(r) {
			t.Errorf("item %d: rating %s, want one decimal in 3.0..5.0", i, r)
		}
		if d := decode[string](t, f["description"]); len(d) < 110 || len(d) > 200 {
			t.Errorf("item %d: description of %d chars, want about 150: %q", i, len(d), d)
		}
		tags := decode[[]string](t, f["tags"])
		if len(tags) < 2 || len(tags) > 4 {
			t.Errorf("item %d: %d tags, want 2..4", i, len(tags))
		}
		id := decode[string](t, f["id"])
		if ids[id] {
			t.Errorf("item %d: id %q repeated", i, id)
		}
		ids[id] = true
	}
	if n := len(body); n < 5000 || n > 8000 {
		t.Errorf("body is %d bytes, want about 6 KB", n)
	}
}

func TestProducts(t *testing.T) {
	body := get(t, "catalog", "/products?skus=SKU-000042,SKU-000001,SKU-000042,SKU-999999,SKU-000001")
	checkKeys(t, "list", body, "products")
	products := decode[struct{ Products []json.RawMessage }](t, body).Products
	var skus []string
	for _, raw := range products {
		checkKeys(t, "product", raw, "sku", "title", "brand", "image_url", "rating", "price_cents", "description", "in_stock")
		f := fields(t, raw)
		sku := decode[string](t, f["sku"])
		skus = append(skus, sku)
		if r := string(f["rating"]); !ratingPattern.MatchString(r) {
			t.Errorf("%s: rating %s", sku, r)
		}
		if _, ok := decode[any](t, f["in_stock"]).(bool); !ok {
			t.Errorf("%s: in_stock is not a bool", sku)
		}
		if one := get(t, "catalog", "/products/"+sku); !bytes.Equal(one, raw) {
			t.Errorf("/products/%s = %s, want the list element %s", sku, one, raw)
		}
	}
	if want := []string{"SKU-000042", "SKU-000001", "SKU-999999"}; !slices.Equal(skus, want) {
		t.Errorf("skus = %v, want %v (request order, no duplicates)", skus, want)
	}

	for _, target := range []string{"/products", "/products?skus="} {
		if got := get(t, "catalog", target); string(got) != `{"products":[]}` {
			t.Errorf("GET %s = %s, want an empty list", target, got)
		}
	}

	hundred := make([]string, 100)
	for i := range hundred {
		hundred[i] = fmt.Sprintf("SKU-%06d", i+1)
	}
	if got := decode[struct{ Products []any }](t, get(t, "catalog", "/products?skus="+strings.Join(hundred, ","))); len(got.Products) != 100 {
		t.Errorf("100 skus gave %d products", len(got.Products))
	}

	bad := map[string]string{
		"101 skus":       strings.Join(append(hundred, "SKU-000101"), ","),
		"short":          "SKU-1",
		"long":           "SKU-0000001",
		"lower case":     "sku-000001",
		"zero":           "SKU-000000",
		"letter":         "SKU-00000a",
		"trailing comma": "SKU-000001,",
		"empty element":  "SKU-000001,,SKU-000002",
		"space":          "SKU-000001, SKU-000002",
		"sign":           "SKU--00001",
	}
	for name, skus := range bad {
		t.Run(name, func(t *testing.T) {
			target := "/products?skus=" + url.QueryEscape(skus)
			w := serve(t, "catalog", http.MethodGet, target)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("GET %s: status %d, want 400", target, w.Code)
			}
			checkJSONHeaders(t, target, w)
			if _, ok := decode[map[string]string](t, w.Body.Bytes())["error"]; !ok {
				t.Errorf("body %s has no error", w.Body)
			}
		})
	}
}

// Order items and recommendations name catalog products and carry their
// title and price, so a view can join the upstreams.
func TestCatalogJoins(t *testing.T) {
	type product struct {
		SKU        string
		Title      string
		PriceCents int `json:"price_cents"`
		Rating     float64
	}
	lookup := func(skus []string) map[string]product {
		body := get(t, "catalog", "/products?skus="+strings.Join(skus, ","))
		m := map[string]product{}
		for _, p := range decode[struct{ Products []product }](t, body).Products {
			m[p.SKU] = p
		}
		return m
	}

	orders := decode[struct {
		Orders []struct {
			Items []struct {
				SKU        string
				Name       string
				PriceCents int `json:"price_cents"`
			}
		}
	}](t, get(t, "orders", "/orders?user_id=7")).Orders
	var skus []string
	for _, o := range orders {
		for _, it := range o.Items {
			skus = append(skus, it.SKU)
		}
	}
	catalog := lookup(skus)
	for _, o := range orders {
		for _, it := range o.Items {
			if p := catalog[it.SKU]; p.Title != it.Name || p.PriceCents != it.PriceCents {
				t.Errorf("order item %+v, catalog %+v", it, p)
			}
		}
	}

	recs := decode[struct {
		Items []struct {
			ID         string
			Title      string
			PriceCents int `json:"price_cents"`
			Rating     float64
		}
	}](t, get(t, "recs", "/recommendations?user_id=7")).Items
	skus = skus[:0]
	for _, r := range recs {
		skus = append(skus, r.ID)
	}
	catalog = lookup(skus)
	for _, r := range recs {
		if p := catalog[r.ID]; p.Title != r.Title || p.PriceCents != r.PriceCents || p.Rating != r.Rating {
			t.Errorf("recommendation %+v, catalog %+v", r, p)
		}
	}
}

var dataTargets = []struct{ name, target string }{
	{"users", "/users/7"},
	{"users", "/users/123456"},
	{"orders", "/orders?user_id=7"},
	{"orders", "/orders?user_id=123456"},
	{"orders", "/orders/ord-7-05"},
	{"recs", "/recommendations?user_id=7"},
	{"recs", "/recommendations?user_id=123456"},
	{"catalog", "/products?skus=SKU-000001,SKU-000042,SKU-999999"},
	{"catalog", "/products/SKU-000123"},
}

// Same id, same bytes: from one handler (the second answer comes from the
// cache for small ids) and from another.
func TestDeterministic(t *testing.T) {
	for _, name := range Names() {
		first, _ := Handler(name)
		second, _ := Handler(name)
		for _, tc := range dataTargets {
			if tc.name != name {
				continue
			}
			a := do(first, http.MethodGet, tc.target).Body.Bytes()
			b := do(first, http.MethodGet, tc.target).Body.Bytes()
			c := do(second, http.MethodGet, tc.target).Body.Bytes()
			if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
				t.Errorf("GET %s: answers differ", tc.target)
			}
		}
	}
}

// The golden files pin the bytes across runs and versions of this package.
// Regenerate them with: go test ./internal/demo -run TestGolden -update
func TestGolden(t *testing.T) {
	for _, tc := range dataTargets {
		file := strings.NewReplacer("/", "_", "?", "_", "=", "_", ",", "_").Replace(strings.TrimPrefix(tc.target, "/"))
		path := filepath.Join("testdata", file+".json")
		t.Run(file, func(t *testing.T) {
			got := get(t, tc.name, tc.target)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("GET %s differs from %s:\n got %s\nwant %s", tc.target, path, got, want)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	cases := []struct{ name, target string }{
		{"users", "/users/0"},
		{"users", "/users/-1"},
		{"users", "/users/+7"},
		{"users", "/users/007"},
		{"users", "/users/abc"},
		{"users", "/users/7x"},
		{"users", "/users/1000001"},
		{"users", "/users/99999999999999999999999"},
		{"users", "/users/"},
		{"users", "/users"},
		{"users", "/users/7/"},
		{"users", "/users/7/orders"},
		{"users", "/orders?user_id=7"},
		{"users", "/"},
		{"orders", "/orders"},
		{"orders", "/orders?user_id="},
		{"orders", "/orders?user_id=0"},
		{"orders", "/orders?user_id=1000001"},
		{"orders", "/orders?user_id=x"},
		{"orders", "/orders?userid=7"},
		{"orders", "/orders/"},
		{"orders", "/orders/ord-7-00"},
		{"orders", "/orders/ord-7-21"},
		{"orders", "/orders/ord-7-1"},
		{"orders", "/orders/ord-7-001"},
		{"orders", "/orders/ord-7-0a"},
		{"orders", "/orders/ord-0-01"},
		{"orders", "/orders/ord-07-01"},
		{"orders", "/orders/ord-1000001-01"},
		{"orders", "/orders/ord--7-01"},
		{"orders", "/orders/ord-7"},
		{"orders", "/orders/ORD-7-01"},
		{"orders", "/orders/ord-7-01/"},
		{"recs", "/recommendations"},
		{"recs", "/recommendations?user_id=-3"},
		{"recs", "/recommendations/7"},
		{"catalog", "/products/"},
		{"catalog", "/products/SKU-1"},
		{"catalog", "/products/SKU-000000"},
		{"catalog", "/products/SKU-000001/x"},
	}
	for _, tc := range cases {
		t.Run(tc.name+tc.target, func(t *testing.T) {
			w := serve(t, tc.name, http.MethodGet, tc.target)
			if w.Code != http.StatusNotFound {
				t.Fatalf("GET %s: status %d, want 404", tc.target, w.Code)
			}
			checkJSONHeaders(t, tc.target, w)
			if got := w.Body.String(); got != `{"error":"not found"}` {
				t.Errorf("body %s", got)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		w := serve(t, "users", method, "/users/7")
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", method, w.Code)
		}
		if allow := w.Header().Get("Allow"); allow != "GET, HEAD" {
			t.Errorf("%s: Allow %q", method, allow)
		}
	}

	h, _ := Handler("orders")
	get := do(h, http.MethodGet, "/orders?user_id=7")
	head := do(h, http.MethodHead, "/orders?user_id=7")
	if head.Code != http.StatusOK || head.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, %d body bytes", head.Code, head.Body.Len())
	}
	if got, want := head.Header().Get("Content-Length"), strconv.Itoa(get.Body.Len()); got != want {
		t.Errorf("HEAD: Content-Length %s, want %s", got, want)
	}
}

func TestHealthz(t *testing.T) {
	for _, name := range Names() {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			w := serve(t, name, method, "/healthz")
			if w.Code != http.StatusOK || w.Header().Get("Content-Length") != "2" {
				t.Errorf("%s %s /healthz: status %d, Content-Length %q", name, method, w.Code, w.Header().Get("Content-Length"))
			}
			if method == http.MethodGet && w.Body.String() != "ok" {
				t.Errorf("%s /healthz: body %q", name, w.Body)
			}
		}
	}
}

func TestStart(t *testing.T) {
	s, err := Start(Names())
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	fetch := func(url string) (int, []byte, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, err
	}
	paths := map[string]string{
		"users":   "/users/7",
		"orders":  "/orders?user_id=7",
		"recs":    "/recommendations?user_id=7",
		"catalog": "/products/SKU-000007",
	}
	for _, name := range Names() {
		base := s.URL(name)
		if !strings.HasPrefix(base, "http://127.0.0.1:") {
			t.Fatalf("URL(%q) = %q", name, base)
		}
		if code, body, err := fetch(base + "/healthz"); err != nil || code != http.StatusOK || string(body) != "ok" {
			t.Errorf("%s /healthz: %d %q %v", name, code, body, err)
		}
		code, body, err := fetch(base + paths[name])
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s %s: %d %v", name, paths[name], code, err)
		}
		if want := get(t, name, paths[name]); !bytes.Equal(body, want) {
			t.Errorf("%s %s: server and Handler answer differently", name, paths[name])
		}
	}
	if got := s.URL("nope"); got != "" {
		t.Errorf(`URL("nope") = %q, want ""`, got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	tr.CloseIdleConnections()
	if _, _, err := fetch(s.URL("users") + "/healthz"); err == nil {
		t.Error("a closed server still answers")
	}
	tr.CloseIdleConnections()
	goleak.VerifyNone(t)
}

func TestStartErrors(t *testing.T) {
	for name, names := range map[string][]string{
		"unknown":   {"users", "orders", "nope"},
		"duplicate": {"users", "users"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Start(names)
			if err == nil || s != nil {
				t.Fatalf("Start(%q) = %v, %v; want an error", names, s, err)
			}
			goleak.VerifyNone(t)
		})
	}

	s, err := Start(nil)
	if err != nil {
		t.Fatalf("Start(nil): %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// A request still running when ctx ends is cut off, and Close says so.
func TestCloseHard(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := &Servers{byName: map[string]*server{}}
	err := s.serve("slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	done := make(chan error)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get(s.URL("slow") + "/")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if err := <-done; err == nil {
		t.Error("the cut-off request succeeded")
	}
	close(release)
}

func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"/users/7", "/users/1000000", "/users/1000001", "/users/0", "/users/-1", "/users/%37",
		"/orders?user_id=7", "/orders?user_id=7&user_id=8", "/orders?user_id=%zz", "/orders/ord-7-20",
		"/orders/ord-7-", "/orders/ord--", "/recommendations?user_id=99999", "/products?skus=SKU-000001",
		"/products?skus=,,,", "/products/SKU-999999", "/healthz", "//users/7", "/users/../orders", "",
		"*", "/products?skus=SKU-000001;SKU-000002", "/\x00", "/users/\xff",
	} {
		f.Add(http.MethodGet, seed)
	}
	f.Add(http.MethodHead, "/orders?user_id=12")
	f.Add("BREW", "/users/7")

	handlers := make([]http.Handler, 0, len(Names()))
	for _, name := range Names() {
		h, _ := Handler(name)
		handlers = append(handlers, h)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		path, query, _ := strings.Cut(target, "?")
		for _, h := range handlers {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, &http.Request{
				Method: method,
				URL:    &url.URL{Path: path, RawQuery: query},
				Header: http.Header{},
			})
			if class := w.Code / 100; class != 2 && class != 4 {
				t.Fatalf("%s %q: status %d", method, target, w.Code)
			}
			if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) && method != http.MethodHead {
				t.Fatalf("%s %q: Content-Length %s for %d bytes", method, target, cl, w.Body.Len())
			}
			if path != "/healthz" && method != http.MethodHead && !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %q: invalid JSON %q", method, target, w.Body)
			}
		}
	})
}

func BenchmarkHandler(b *testing.B) {
	for _, tc := range dataTargets {
		b.Run(strings.TrimPrefix(tc.target, "/"), func(b *testing.B) {
			h, _ := Handler(tc.name)
			req := httptest.NewRequest(http.MethodGet, tc.target, nil)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
