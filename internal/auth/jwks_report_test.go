package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

// ReportJWKSErrors reports at once only a failure not followed by a read
// that succeeded: a key set that failed at start and has since been read
// must not be logged as refusing tokens that verify.
func TestReportJWKSErrorsDoesNotReportAFailureSinceRecovered(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	b64 := base64.RawURLEncoding.EncodeToString
	set, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes()),
	}}})
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(set)
	}))
	defer srv.Close()
	v, err := auth.New(auth.Config{Issuer: "https://id.example", Audience: "bff", JWKSURL: srv.URL, JWKSClient: srv.Client(),
		JWKSMinRefresh: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	up.Store(true) // the identity provider is back
	// An unknown kid refreshes the set: it is read now.
	if c, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, "k1", rsaKey, claims(nil))); err != nil || c.Subject != "user-7" {
		t.Fatalf("after the set was read, a token by its key: %+v %v", c, err)
	}

	var reported []error
	v.ReportJWKSErrors(func(err error) { reported = append(reported, err) })
	if len(reported) != 0 {
		t.Errorf("the key set was read, yet ReportJWKSErrors reported at once %v (the failure at start, since recovered)", reported)
	}
}

// A caller that hangs up while its token's unknown kid refreshes the key
// set is no failure of the identity provider's: nothing is reported.
func TestCallerHangingUpDuringRefreshIsNotReported(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	arrived, release := make(chan struct{}, 8), make(chan struct{})
	var reads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reads.Add(1) > 1 { // the read at start answers; the refresh hangs
			arrived <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	defer close(release)
	v, err := auth.New(auth.Config{Issuer: "https://id.example", Audience: "bff", JWKSURL: srv.URL, JWKSClient: srv.Client(),
		JWKSMinRefresh: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var reported atomic.Int64
	v.ReportJWKSErrors(func(error) { reported.Add(1) })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k9", rsaKey, claims(nil)))
	}()
	<-arrived
	cancel()
	<-done
	if n := reported.Load(); n != 0 {
		t.Errorf("%d key-set failures reported for a caller that hung up", n)
	}
}
