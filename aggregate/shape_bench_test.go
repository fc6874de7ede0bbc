package aggregate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// BenchmarkShapeHome shapes the web home view from WORKLOAD-sized bodies:
// the scanner against the gjson-based reference.
func BenchmarkShapeHome(b *testing.B) {
	var user, orders, recs strings.Builder
	user.WriteString(`{"id":7,"name":"Ada Lovelace","email":"ada@example.com","avatar_url":"https://cdn.example.com/a/7.png","phone":"+1-555-0100","address":{"street":"1 Main St","city":"X","zip":"00001","country":"US"},"created_at":"2024-01-01T00:00:00Z","preferences":{"theme":"dark","language":"en","newsletter":true},"bio":"` + strings.Repeat("b", 560) + `"}`)
	orders.WriteString(`{"orders":[`)
	recs.WriteString(`{"items":[`)
	for i := range 20 {
		if i > 0 {
			orders.WriteByte(',')
			recs.WriteByte(',')
		}
		fmt.Fprintf(&orders, `{"id":"ord-7-%02d","status":"shipped","total_cents":12345,"currency":"EUR","created_at":"2026-05-01T10:00:00Z","items":[{"sku":"SKU-000001","name":"Kettle","qty":1,"price_cents":2999},{"sku":"SKU-000002","name":"Mug","qty":2,"price_cents":999},{"sku":"SKU-000003","name":"Lamp","qty":1,"price_cents":4999}],"shipping":{"carrier":"UPS","tracking":"1Z999","eta":"2026-05-05"}}`, 20-i)
		fmt.Fprintf(&recs, `{"id":"prod-%06d","title":"Premium Walnut Speaker","price_cents":4999,"image_url":"https://cdn.example.com/p/%d.jpg","rating":4.5,"description":"%s","tags":["new","eco","gift"]}`, i, i, strings.Repeat("d", 150))
	}
	orders.WriteString(`]}`)
	recs.WriteString(`]}`)
	calls := map[string]int{"user": 0, "orders": 1, "recommendations": 2}
	nodes, err := compileFields([]Field{
		Object("user", "user", Pick("id"), Pick("name"), Pick("email"), Pick("avatar_url")),
		List("orders", "orders.orders", 10, Pick("id"), Pick("status"), Pick("total_cents"), Pick("created_at"), Count("item_count", "items")),
		List("recommendations", "recommendations.items", 10, Pick("id"), Pick("title"), Pick("price_cents"), Pick("image_url"), Pick("rating")),
	}, "shape", calls, nil)
	if err != nil {
		b.Fatal(err)
	}
	bodies := []string{user.String(), orders.String(), recs.String()}
	present := []bool{true, true, true}
	results := make([]gjson.Result, len(bodies))
	for i, s := range bodies {
		results[i] = gjson.Parse(s)
	}
	if got, want := appendShape(nil, nodes, bodies, present), refAppendShape(nil, nodes, results, present); string(got) != string(want) {
		b.Fatalf("scanner and gjson differ:\n%s\n%s", got, want)
	}
	b.Run("shape", func(b *testing.B) {
		buf := make([]byte, 0, 8<<10)
		b.ReportAllocs()
		for b.Loop() {
			buf = appendShape(buf[:0], nodes, bodies, present)
		}
	})
	b.Run("gjson", func(b *testing.B) {
		buf := make([]byte, 0, 8<<10)
		b.ReportAllocs()
		for b.Loop() {
			buf = refAppendShape(buf[:0], nodes, results, present)
		}
	})
}
