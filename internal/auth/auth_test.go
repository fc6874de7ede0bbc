package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/auth"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("0123456789abcdef0123456789abcdef")

func pemOf(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "user-7", "iss": "https://id.example", "aud": "bff", "exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(), "scope": "profile orders"}
	if mod != nil {
		mod(c)
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	v, err := auth.New(auth.Config{
		Issuer: "https://id.example", Audience: "bff",
		Keys: []auth.Key{
			{ID: "hs", Alg: "HS256", Secret: secret},
			{ID: "rs", Alg: "RS256", PublicKey: pemOf(t, &rsaKey.PublicKey)},
			{ID: "es", Alg: "ES256", PublicKey: pemOf(t, &ecKey.PublicKey)},
			{ID: "ed", Alg: "EdDSA", PublicKey: pemOf(t, edPub)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	for name, tok := range map[string]string{
		"HS256": sign(t, jwt.SigningMethodHS256, "hs", secret, claims(nil)),
		"RS256": sign(t, jwt.SigningMethodRS256, "rs", rsaKey, claims(nil)),
		"ES256": sign(t, jwt.SigningMethodES256, "es", ecKey, claims(nil)),
		"EdDSA": sign(t, jwt.SigningMethodEdDSA, "ed", edKey, claims(nil)),
	} {
		c, err := v.Verify(ctx, tok)
		if err != nil || c.Subject != "user-7" || !c.HasScopes([]string{"orders"}) || c.HasScopes([]string{"admin"}) {
			t.Errorf("%s: %+v, %v", name, c, err)
		}
	}

	// The attacks, each refused as ErrInvalid.
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	rsaPEM := pemOf(t, &rsaKey.PublicKey)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, tok := range map[string]string{
		"alg none":                      none,
		"HS256 signed with the RSA pem": sign(t, jwt.SigningMethodHS256, "rs", rsaPEM, claims(nil)),
		"expired":                       sign(t, jwt.SigningMethodHS256, "hs", secret, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
		"no exp":                        sign(t, jwt.SigningMethodHS256, "hs", secret, claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"not yet valid":                 sign(t, jwt.SigningMethodHS256, "hs", secret, claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })),
		"wrong audience":                sign(t, jwt.SigningMethodHS256, "hs", secret, claims(func(c jwt.MapClaims) { c["aud"] = "payments" })),
		"wrong issuer":                  sign(t, jwt.SigningMethodHS256, "hs", secret, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })),
		"no subject":                    sign(t, jwt.SigningMethodHS256, "hs", secret, claims(func(c jwt.MapClaims) { delete(c, "sub") })),
		"unknown kid":                   sign(t, jwt.SigningMethodHS256, "nope", secret, claims(nil)),
		"another RSA key":               sign(t, jwt.SigningMethodRS256, "rs", other, claims(nil)),
		"RS256 under the ES256 kid":     sign(t, jwt.SigningMethodRS256, "es", rsaKey, claims(nil)),
		"too long":                      sign(t, jwt.SigningMethodHS256, "hs", secret, claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 9000) })),
		"garbage":                       "a.b.c",
	} {
		if c, err := v.Verify(ctx, tok); err == nil || !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("%s: accepted (%+v, %v)", name, c, err)
		}
	}
	// Small clock skew is absorbed.
	skew := sign(t, jwt.SigningMethodHS256, "hs", secret, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() }))
	if _, err := v.Verify(ctx, skew); err != nil {
		t.Errorf("10s past exp, within the leeway: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  auth.Config
		want string
	}{
		{auth.Config{Keys: []auth.Key{{Alg: "HS256", Secret: secret}}}, "issuer and audience are required"},
		{auth.Config{Issuer: "i", Audience: "a"}, "no keys"},
		{auth.Config{Issuer: "i", Audience: "a", Keys: []auth.Key{{Alg: "HS256", Secret: []byte("short")}}}, "at least 32 bytes"},
		{auth.Config{Issuer: "i", Audience: "a", Keys: []auth.Key{{Alg: "none"}}}, `alg "none"`},
		{auth.Config{Issuer: "i", Audience: "a", Keys: []auth.Key{{Alg: "RS256", PublicKey: []byte("nope")}}}, "not PEM"},
		{auth.Config{Issuer: "i", Audience: "a", Keys: []auth.Key{{Alg: "HS256", Secret: secret}}, Leeway: -time.Second}, "leeway -1s is negative"},
		{auth.Config{Issuer: "i", Audience: "a", JWKSURL: "http://id.example/jwks.json"}, "want https (http only on loopback)"},
		{auth.Config{Issuer: "i", Audience: "a", JWKSURL: "http://10.0.0.1/jwks.json"}, "want https (http only on loopback)"},
		{auth.Config{Issuer: "i", Audience: "a", JWKSURL: "ftp://id.example/jwks.json"}, "want https"},
		{auth.Config{Issuer: "i", Audience: "a", JWKSURL: "/jwks.json"}, "not an absolute URL"},
	} {
		if _, err := auth.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.cfg, err, tc.want)
		}
	}
}

// Keys from a JWKS URL: tokens by a listed kid verify; a flood of unknown
// kids refreshes the set at most once per JWKSMinRefresh.
func TestJWKS(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	var fetches atomic.Int64
	b64 := base64.RawURLEncoding.EncodeToString
	set, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes()),
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(set)
	}))
	defer srv.Close()
	v, err := auth.New(auth.Config{Issuer: "https://id.example", Audience: "bff", JWKSURL: srv.URL, JWKSMinRefresh: time.Hour,
		JWKSClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	if c, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k1", rsaKey, claims(nil))); err != nil || c.Subject != "user-7" {
		t.Fatalf("a JWKS key: %+v %v", c, err)
	}
	before := fetches.Load()
	for i := range 200 {
		tok := sign(t, jwt.SigningMethodRS256, "made-up-"+string(rune('a'+i%26))+strings.Repeat("x", i%7), rsaKey, claims(nil))
		if _, err := v.Verify(ctx, tok); err == nil {
			t.Fatal("an unknown kid verified")
		}
	}
	if n := fetches.Load() - before; n > 1 {
		t.Errorf("200 unknown kids fetched the key set %d times; want at most 1", n)
	}
	// HS256 never verifies against a key set, whatever the kid.
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, "k1", secret, claims(nil))); err == nil {
		t.Error("an HS256 token verified against a key set")
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	v, err := auth.New(auth.Config{Issuer: "i", Audience: "a", Keys: []auth.Key{{Alg: "HS256", Secret: secret}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	f.Fuzz(func(t *testing.T, tok string) {
		if c, err := v.Verify(context.Background(), tok); err == nil {
			t.Fatalf("random input verified: %+v", c)
		}
	})
}

// A verified token is remembered (its signature is not checked again), but
// never past its exp.
func TestVerifiedTokensAreRememberedUntilExp(t *testing.T) {
	v, err := auth.New(auth.Config{Issuer: "https://id.example", Audience: "bff", Leeway: time.Millisecond,
		Keys: []auth.Key{{Alg: "HS256", Secret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	tok := sign(t, jwt.SigningMethodHS256, "", secret, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(3 * time.Second).Unix() }))
	first, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	prev := first
	for {
		again, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("second verify: %v", err)
		}
		if again == prev { // the same *Claims twice: from the cache
			break
		}
		prev = again
		if time.Now().After(deadline) {
			t.Fatal("a verified token was never remembered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Past exp, the token fails again, cache or not.
	for time.Now().Before(time.Unix(int64(first.All["exp"].(float64)), 0).Add(50 * time.Millisecond)) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := v.Verify(ctx, tok); err == nil {
		t.Error("an expired token verified from the cache")
	}
}

// Keys rotate: a token signed with a key the set did not have at start
// verifies once the set is fetched again (on the unknown kid), and the set
// is also refreshed on its schedule.
func TestJWKSRotationAndSchedule(t *testing.T) {
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := func(kid string, k *rsa.PrivateKey) map[string]any {
		return map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	}
	var rotated atomic.Bool
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		keys := []any{jwk("k1", k1)}
		if rotated.Load() {
			keys = []any{jwk("k2", k2)}
			time.Sleep(20 * time.Millisecond) // an identity provider across a network
		}
		b, _ := json.Marshal(map[string]any{"keys": keys})
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	ctx := context.Background()
	newVerifier := func(refresh, minRefresh time.Duration) *auth.Verifier {
		v, err := auth.New(auth.Config{Issuer: "https://id.example", Audience: "bff", JWKSURL: srv.URL, JWKSClient: srv.Client(),
			JWKSRefresh: refresh, JWKSMinRefresh: minRefresh})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Close)
		return v
	}

	// On an unknown kid. No scheduled refresh can fetch k2 first (hourly),
	// and the set is fetched on unknown kids as often as asked: the first
	// fetch runs in the background, and a k1 token arriving before it is
	// stored is an unknown kid too (a loaded machine saw that spend the
	// one refresh an hour allows, when both ran in one verifier).
	v := newVerifier(time.Hour, time.Millisecond)
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k1", k1, claims(nil))); err != nil {
		t.Fatalf("k1: %v", err)
	}
	rotated.Store(true)
	if c, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k2", k2, claims(nil))); err != nil || c.Subject != "user-7" {
		t.Errorf("a token of the new key: %v", err)
	}

	// Unknown kids refresh at most at the configured rate.
	rated := newVerifier(time.Hour, time.Hour)
	_, _ = rated.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k2", k2, claims(nil)))
	before := fetches.Load()
	for _, kid := range []string{"x1", "x2", "x3"} {
		if _, err := rated.Verify(ctx, sign(t, jwt.SigningMethodRS256, kid, k2, claims(nil))); err == nil {
			t.Errorf("kid %s verified", kid)
		}
	}
	if n := fetches.Load() - before; n > 1 {
		t.Errorf("%d fetches for three unknown kids within the minimum refresh interval; want at most 1", n)
	}

	// On its schedule.
	newVerifier(50*time.Millisecond, time.Hour)
	before = fetches.Load()
	deadline := time.Now().Add(10 * time.Second)
	for fetches.Load() < before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("the key set was not refreshed on its schedule (%d fetches)", fetches.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
