package demo

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	maxUserID = 1_000_000 // valid user ids are 1..maxUserID
	maxSKU    = 999_999   // valid SKUs are SKU-000001..SKU-999999

	ordersPerUser = 20
	itemsPerOrder = 3
	recsPerUser   = 20
)

// Streams keep the generators independent: each entity draws from its own
// sequence, seeded by stream and id, so adding a field to one entity never
// changes another's data.
const (
	streamUser uint64 = iota + 1
	streamOrder
	streamRecs
	streamProduct
	streamCurrency
)

// rng is splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough
// for demo data. It is deterministic by design; never use it for secrets.
type rng struct{ state uint64 }

// newRNG seeds a generator for one entity. Ids stay below 2^48, so distinct
// (stream, id) pairs give distinct seeds.
func newRNG(stream, id uint64) rng { return rng{state: stream<<48 | id} }

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a number in [0, n); n must be positive. The modulo bias is
// below 2^-40 for the small n used here.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

func pick(r *rng, xs []string) string { return xs[r.intn(len(xs))] }

// sentences appends distinct sentences from pool, separated by spaces, until
// the text is at least minLen bytes long or the pool is used up.
func sentences(r *rng, pool []string, minLen int) string {
	var b strings.Builder
	used := make([]bool, len(pool))
	for left := len(pool); b.Len() < minLen && left > 0; left-- {
		i := r.intn(len(pool))
		for used[i] {
			i = (i + 1) % len(pool)
		}
		used[i] = true
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(pool[i])
	}
	return b.String()
}

// rating formats tenths (30..50) as a JSON number with one decimal, "4.0"
// rather than encoding/json's "4" for a float64.
func rating(tenths int) json.Number {
	return json.Number(strconv.Itoa(tenths/10) + "." + strconv.Itoa(tenths%10))
}

// Users.

type user struct {
	ID          int         `json:"id"`
	Name        string      `json:"name"`
	Email       string      `json:"email"`
	AvatarURL   string      `json:"avatar_url"`
	Phone       string      `json:"phone"`
	Address     address     `json:"address"`
	CreatedAt   string      `json:"created_at"`
	Preferences preferences `json:"preferences"`
	Bio         string      `json:"bio"`
}

type address struct {
	Street  string `json:"street"`
	City    string `json:"city"`
	Zip     string `json:"zip"`
	Country string `json:"country"`
}

type preferences struct {
	Theme      string `json:"theme"`
	Language   string `json:"language"`
	Newsletter bool   `json:"newsletter"`
}

func newUser(id int) user {
	r := newRNG(streamUser, uint64(id))
	first, last := pick(&r, firstNames), pick(&r, lastNames)
	since := time.Date(2018, time.January, 1, 0, 0, 0, 0, time.UTC)
	return user{
		ID:        id,
		Name:      first + " " + last,
		Email:     strings.ToLower(first) + "." + strings.ToLower(last) + strconv.Itoa(id) + "@example.com",
		AvatarURL: "https://cdn.example.com/avatars/" + strconv.Itoa(id) + ".jpg",
		Phone:     fmt.Sprintf("+1-%03d-555-%04d", r.between(201, 989), r.intn(10000)),
		Address: address{
			Street:  strconv.Itoa(r.between(1, 2999)) + " " + pick(&r, streetNames) + " " + pick(&r, streetKinds),
			City:    pick(&r, cities),
			Zip:     fmt.Sprintf("%05d", r.intn(100000)),
			Country: pick(&r, countries),
		},
		CreatedAt: since.Add(time.Duration(r.intn(7*365*24*3600)) * time.Second).Format(time.RFC3339),
		Preferences: preferences{
			Theme:      pick(&r, themes),
			Language:   pick(&r, languages),
			Newsletter: r.intn(2) == 1,
		},
		Bio: sentences(&r, bioSentences, 560),
	}
}

func userBody(id int) ([]byte, error) { return json.Marshal(newUser(id)) }

// Orders.

type order struct {
	ID string `json:"id"`
	// UserID is set only when an order is served on its own; in a user's
	// list it is zero and left out, so the two encodings differ by exactly
	// this field.
	UserID     int         `json:"user_id,omitempty"`
	Status     string      `json:"status"`
	TotalCents int         `json:"total_cents"`
	Currency   string      `json:"currency"`
	CreatedAt  string      `json:"created_at"`
	Items      []orderItem `json:"items"`
	Shipping   shipping    `json:"shipping"`
}

type orderItem struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Qty        int    `json:"qty"`
	PriceCents int    `json:"price_cents"`
}

type shipping struct {
	Carrier  string `json:"carrier"`
	Tracking string `json:"tracking"`
	ETA      string `json:"eta"`
}

func orderID(userID, n int) string { return fmt.Sprintf("ord-%d-%02d", userID, n) }

// newOrder returns order n (1..ordersPerUser, newest = ordersPerUser) of a
// user. Each order has its own seed, so one order can be generated without
// its list; creation times fall in disjoint 72-hour windows, so the list is
// strictly newest first.
func newOrder(userID, n int) order {
	r := newRNG(streamOrder, uint64(userID)*100+uint64(n))
	cur := newRNG(streamCurrency, uint64(userID))
	o := order{
		ID:       orderID(userID, n),
		Currency: pick(&cur, currencies),
		Items:    make([]orderItem, itemsPerOrder),
	}
	newest := time.Date(2026, time.May, 31, 18, 0, 0, 0, time.UTC)
	created := newest.Add(-time.Duration(ordersPerUser-n)*72*time.Hour -
		time.Duration(r.intn(71*60))*time.Minute)
	o.CreatedAt = created.Format(time.RFC3339)
	for i := range o.Items {
		p := newProduct(r.between(1, maxSKU))
		it := orderItem{SKU: p.SKU, Name: p.Title, Qty: r.between(1, 4), PriceCents: p.PriceCents}
		o.Items[i] = it
		o.TotalCents += it.Qty * it.PriceCents
	}
	switch age := ordersPerUser - n; {
	case age < 2:
		o.Status = pick(&r, []string{"processing", "shipped"})
	case age < 5:
		o.Status = pick(&r, []string{"shipped", "delivered", "delivered"})
	default:
		o.Status = pick(&r, []string{"delivered", "delivered", "delivered", "delivered", "cancelled", "returned"})
	}
	carrier := carriers[r.intn(len(carriers))]
	o.Shipping = shipping{
		Carrier:  carrier.name,
		Tracking: fmt.Sprintf("%s%012X", carrier.prefix, r.next()>>16),
		ETA:      created.AddDate(0, 0, r.between(2, 7)).Format(time.DateOnly),
	}
	return o
}

func ordersBody(userID int) ([]byte, error) {
	list := struct {
		Orders []order `json:"orders"`
	}{make([]order, 0, ordersPerUser)}
	for n := ordersPerUser; n >= 1; n-- {
		list.Orders = append(list.Orders, newOrder(userID, n))
	}
	return json.Marshal(list)
}

func orderBody(userID, n int) ([]byte, error) {
	o := newOrder(userID, n)
	o.UserID = userID
	return json.Marshal(o)
}

// Recommendations.

type recItem struct {
	ID          string      `json:"id"`
	Title       string      `json:"title"`
	PriceCents  int         `json:"price_cents"`
	ImageURL    string      `json:"image_url"`
	Rating      json.Number `json:"rating"`
	Description string      `json:"description"`
	Tags        []string    `json:"tags"`
}

func recsBody(userID int) ([]byte, error) {
	r := newRNG(streamRecs, uint64(userID))
	list := struct {
		Items []recItem `json:"items"`
	}{make([]recItem, 0, recsPerUser)}
	seen := make(map[int]bool, recsPerUser)
	for len(list.Items) < recsPerUser {
		sku := r.between(1, maxSKU)
		if seen[sku] {
			continue
		}
		seen[sku] = true
		p := newProduct(sku)
		list.Items = append(list.Items, recItem{
			ID:          p.SKU,
			Title:       p.Title,
			PriceCents:  p.PriceCents,
			ImageURL:    p.ImageURL,
			Rating:      p.Rating,
			Description: p.Description,
			Tags:        p.tags,
		})
	}
	return json.Marshal(list)
}

// Catalog.

type product struct {
	SKU         string      `json:"sku"`
	Title       string      `json:"title"`
	Brand       string      `json:"brand"`
	ImageURL    string      `json:"image_url"`
	Rating      json.Number `json:"rating"`
	PriceCents  int         `json:"price_cents"`
	Description string      `json:"description"`
	InStock     bool        `json:"in_stock"`
	tags        []string    // served by recs, not by the catalog
}

func formatSKU(n int) string { return fmt.Sprintf("SKU-%06d", n) }

// parseSKU accepts exactly "SKU-" and six digits, 000001..999999.
func parseSKU(s string) (int, bool) {
	digits, ok := strings.CutPrefix(s, "SKU-")
	if !ok || len(digits) != 6 {
		return 0, false
	}
	n := 0
	for i := range len(digits) {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1
}

func newProduct(sku int) product {
	r := newRNG(streamProduct, uint64(sku))
	adj, material, noun := pick(&r, adjectives), pick(&r, materials), pick(&r, nouns)
	p := product{
		SKU:        formatSKU(sku),
		Title:      adj + " " + material + " " + noun,
		Brand:      pick(&r, brands),
		ImageURL:   fmt.Sprintf("https://cdn.example.com/products/%06d.jpg", sku),
		Rating:     rating(r.between(30, 50)),
		PriceCents: r.between(4, 499)*100 + 99,
		InStock:    r.intn(5) != 0,
	}
	article := "A "
	if strings.ContainsRune("AEIOU", rune(adj[0])) {
		article = "An "
	}
	lead := article + strings.ToLower(adj) + " " + strings.ToLower(noun) + " in " + strings.ToLower(material) + "."
	p.Description = lead
	if more := sentences(&r, productSentences, 130-len(lead)); more != "" {
		p.Description += " " + more
	}
	p.tags = make([]string, 0, 4)
	for want := r.between(2, 4); len(p.tags) < want; {
		if t := pick(&r, tags); !contains(p.tags, t) {
			p.tags = append(p.tags, t)
		}
	}
	return p
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Word lists. Only plain ASCII without quotes, so every body stays readable
// and no string needs escaping.
var (
	firstNames = []string{
		"Ada", "Alan", "Amara", "Ben", "Carla", "Chen", "Dana", "Diego", "Elena", "Emil",
		"Farah", "Grace", "Hugo", "Ines", "Ivan", "Jonas", "Kenji", "Lena", "Luca", "Maya",
		"Nadia", "Noah", "Olga", "Omar", "Priya", "Rosa", "Sami", "Tara", "Theo", "Yara",
	}
	lastNames = []string{
		"Adler", "Baker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jensen",
		"Kowalski", "Larsen", "Meyer", "Novak", "Okafor", "Perez", "Quinn", "Rossi", "Silva", "Tanaka",
		"Urban", "Varga", "Weber", "Xu", "Young", "Zimmer",
	}
	streetNames = []string{"Oak", "Maple", "Cedar", "Birch", "Lake", "Hill", "River", "Park", "Mill", "Station", "Church", "Harbor"}
	streetKinds = []string{"Street", "Avenue", "Road", "Lane", "Way", "Boulevard"}
	cities      = []string{"Springfield", "Riverton", "Lakeside", "Fairview", "Greenville", "Oakdale", "Brookfield", "Northport", "Westbury", "Kingston"}
	countries   = []string{"US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "JP", "AU", "BR"}
	themes      = []string{"light", "dark", "system"}
	languages   = []string{"en", "de", "fr", "es", "it", "nl", "sv", "ja", "pt"}
	currencies  = []string{"USD", "EUR", "GBP"}

	bioSentences = []string{
		"Grew up by the sea and still swims in it every morning from May to October.",
		"Works as a structural engineer and spends weekends restoring an old sailing boat.",
		"Bakes sourdough bread on Sundays and shares the loaves with the neighbours.",
		"Plays the cello in an amateur orchestra that gives two concerts a year.",
		"Keeps a small allotment with tomatoes, beans and far too many courgettes.",
		"Learned to code on a second-hand laptop and now teaches evening classes for beginners.",
		"Runs a book club that has met on the first Tuesday of every month for six years.",
		"Collects vintage maps and is slowly framing one for every room of the house.",
		"Cycles to work all year round, rain or shine, and fixes the bike on the way home.",
		"Volunteers at the animal shelter and has fostered eleven cats so far.",
		"Travels by train whenever possible and keeps a notebook of every journey.",
		"Is learning Japanese with the goal of reading a novel without a dictionary.",
		"Hikes a long-distance trail every summer, one stage at a time.",
		"Enjoys board games with friends and owns more of them than shelves to hold them.",
	}

	adjectives = []string{"Compact", "Classic", "Deluxe", "Ergonomic", "Foldable", "Lightweight", "Modern", "Premium", "Rugged", "Smart", "Vintage", "Wireless"}
	materials  = []string{"Bamboo", "Ceramic", "Cotton", "Glass", "Leather", "Linen", "Oak", "Steel", "Walnut", "Wool"}
	nouns      = []string{"Backpack", "Blanket", "Chair", "Desk Lamp", "Headphones", "Kettle", "Mug", "Notebook", "Speaker", "Tote Bag", "Watch", "Water Bottle"}
	brands     = []string{"Acme", "Fjord", "Hearth", "Kestrel", "Lumen", "Northwind", "Oakline", "Pebble", "Tidewater", "Umber"}
	tags       = []string{"bestseller", "eco", "gift", "home", "kitchen", "new", "office", "outdoor", "premium", "sale", "travel", "kids"}

	productSentences = []string{
		"Built to last for years of daily use.",
		"Easy to clean and quick to dry.",
		"Designed in a small studio and made in limited runs.",
		"Responsibly sourced materials throughout.",
		"Fits neatly on a shelf or in a bag.",
		"Comes with a two-year warranty.",
		"A favourite gift for new homes.",
		"Finished by hand for a soft, even look.",
		"Tested by our team on every commute.",
	}

	carriers = []struct{ name, prefix string }{
		{"UPS", "1Z"}, {"DHL", "JD"}, {"FedEx", "FX"}, {"USPS", "94"},
	}
)
