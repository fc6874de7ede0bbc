package bff_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkEdgeHit is a cache hit through the whole edge chain of a web
// client: CORS, token verification, rate limit, then the view. The rows
// add one link at a time, so each link's cost per request can be read off.
func BenchmarkEdgeHit(b *testing.B) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	esPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	claims := jwt.MapClaims{"sub": "7", "iss": "https://id.example", "aud": "bff", "exp": time.Now().Add(time.Hour).Unix()}
	hsTok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	esTok, _ := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(ecKey)

	cors := &bff.CORS{AllowedOrigins: []string{"https://app.example.com"}, AllowCredentials: true}
	limit := &bff.RateLimit{Limit: bff.Limit{Requests: 1 << 30, Window: time.Hour}}
	verifier := func(key auth.Key) *bff.ClientAuth {
		v, err := auth.New(auth.Config{Issuer: "https://id.example", Audience: "bff", Keys: []auth.Key{key}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(v.Close)
		return &bff.ClientAuth{Verifier: v, Default: "optional"}
	}
	for _, tc := range []struct {
		name  string
		cors  bool
		auth  *auth.Key
		token string
		limit bool
	}{
		{name: "view_only"},
		{name: "cors", cors: true},
		{name: "cors+ratelimit", cors: true, limit: true},
		{name: "cors+HS256+ratelimit", cors: true, auth: &auth.Key{Alg: "HS256", Secret: testSecret}, token: hsTok, limit: true},
		{name: "cors+ES256+ratelimit", cors: true, auth: &auth.Key{Alg: "ES256", PublicKey: esPEM}, token: esTok, limit: true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sets := builtinRoutes(b)
			for i := range sets {
				if sets[i].Client != "web" {
					continue
				}
				if tc.cors {
					sets[i].CORS = cors
				}
				if tc.auth != nil {
					sets[i].Auth = verifier(*tc.auth)
				}
				if tc.limit {
					sets[i].RateLimit = limit
				}
			}
			f, rc := edgeFront(b, sets)
			req := httptest.NewRequest(http.MethodGet, "/web/home/7", nil)
			req.Header.Set("Origin", "https://app.example.com")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			f.ServeHTTP(&discardWriter{h: http.Header{}}, req)
			rc.Wait()
			serveParallel(b, f, []*http.Request{req}, nil)
		})
	}
}

func edgeFront(b *testing.B, sets []bff.RouteSet) (*bff.Front, *cache.Cache) {
	b.Helper()
	doers := demoUpstreams(b, nil)
	rc, err := cache.New(cache.Config{MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	f, err := bff.New(bff.Config{Engine: aggregate.NewEngine(doers), Cache: rc, AccessLog: io.Discard,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), RouteSets: sets})
	if err != nil {
		b.Fatal(err)
	}
	return f, rc
}
