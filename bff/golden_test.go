package bff_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Every built-in view over the demo upstreams, byte for byte. Regenerate
// with: go test ./bff -run TestGoldenViews -update
func TestGoldenViews(t *testing.T) {
	h := newHarness(t, options{})
	for _, path := range []string{"/web/home/7", "/mobile/home/7", "/web/orders/ord-7-20", "/mobile/orders/ord-7-20", "/web/home/123456"} {
		t.Run(path, func(t *testing.T) {
			w := h.get(t, path)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			file := filepath.Join("testdata", strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_")+".json")
			if *update {
				var pretty bytes.Buffer
				_ = json.Indent(&pretty, w.Body.Bytes(), "", "  ")
				if err := os.WriteFile(file, append(pretty.Bytes(), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, want); err != nil {
				t.Fatal(err)
			}
			if w.Body.String() != compact.String() {
				t.Errorf("%s differs from %s:\n got %s\nwant %s", path, file, w.Body, compact.String())
			}
		})
	}
}

// The order views' counts and joins agree with the upstream data.
func TestOrderViewsAgreeWithUpstreams(t *testing.T) {
	h := newHarness(t, options{})
	order := upstreamJSON(t, "orders", "/orders/ord-7-20")
	items := order["items"].([]any)
	for _, path := range []string{"/web/orders/ord-7-20", "/mobile/orders/ord-7-20"} {
		var got struct {
			Order struct {
				ID        string `json:"id"`
				ItemCount int    `json:"item_count"`
				Items     []any  `json:"items"`
			} `json:"order"`
			Products []struct {
				SKU string `json:"sku"`
			} `json:"products"`
		}
		if err := json.Unmarshal(h.get(t, path).Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Order.ID != "ord-7-20" || got.Order.ItemCount != len(items) {
			t.Errorf("%s: order %+v, upstream has %d items", path, got.Order, len(items))
		}
		if strings.HasPrefix(path, "/web") && len(got.Order.Items) != len(items) {
			t.Errorf("%s: %d items, want %d", path, len(got.Order.Items), len(items))
		}
		if len(got.Products) != len(items) {
			t.Fatalf("%s: %d products for %d items", path, len(got.Products), len(items))
		}
		for i, p := range got.Products {
			if p.SKU != items[i].(map[string]any)["sku"] {
				t.Errorf("%s: product %d is %s, item has %v", path, i, p.SKU, items[i].(map[string]any)["sku"])
			}
		}
	}
}
