// Package auth verifies the bearer tokens (JWTs) clients send. The
// algorithm is pinned by the key that verifies it, never taken from the
// token alone: no "none", no RSA public key used as an HMAC secret.
package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Key is one verification key given in the config.
type Key struct {
	// ID is the token header's kid that selects this key. Empty: the key
	// verifies tokens without a kid.
	ID string
	// Alg is the one algorithm this key verifies: HS256/384/512 for a
	// Secret; RS*, PS*, ES* or EdDSA for a PublicKey.
	Alg string
	// Secret is an HMAC secret.
	Secret []byte
	// PublicKey is a PEM "PUBLIC KEY" (PKIX): RSA, ECDSA or Ed25519.
	PublicKey []byte
}

// Config is what a verifier accepts.
type Config struct {
	Keys []Key
	// JWKSURL, if set, is fetched for more keys (by kid): refreshed every
	// JWKSRefresh (default 1h) and, at most once per JWKSMinRefresh
	// (default 1m), when a token names a kid it does not know.
	JWKSURL        string
	JWKSRefresh    time.Duration
	JWKSMinRefresh time.Duration
	// JWKSClient fetches the key set. Nil: a client with a 10s timeout.
	JWKSClient *http.Client
	// Issuer and Audience must match the token's iss and one of its aud.
	// Both are required: a token minted for another service is refused.
	Issuer   string
	Audience string
	// Leeway absorbs clock skew on exp and nbf. Zero means 30s.
	Leeway time.Duration
	// MaxTokenBytes refuses longer tokens before parsing. Zero means 8 KiB.
	MaxTokenBytes int
}

// Claims are a verified token's.
type Claims struct {
	Subject string
	// Scopes come from "scope" (space-separated) or "scp" (a list),
	// sorted, each once.
	Scopes []string
	// All holds every claim, for views that read others.
	All map[string]any

	digest     sync.Once
	digestText string
}

// grantOnly are the claims Digest leaves out: those that change with every
// token of one grant, not with what it grants (so a refreshed token has the
// same digest), and the scopes, which Scopes holds sorted.
var grantOnly = map[string]bool{"exp": true, "iat": true, "nbf": true, "jti": true, "auth_time": true, "scope": true, "scp": true}

// Digest stands for every claim but the token's times and scopes: where an
// upstream reads the token itself, an org or tenant claim chooses its
// answer as much as the subject does. Worked out once per verified token
// (verified tokens' claims are kept), not per request.
func (c *Claims) Digest() string {
	c.digest.Do(func() {
		names := make([]string, 0, len(c.All))
		for k := range c.All {
			if !grantOnly[k] {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		h := sha256.New()
		for _, k := range names {
			v, _ := json.Marshal(c.All[k]) // values decoded from JSON encode again
			fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(v), v)
		}
		c.digestText = hex.EncodeToString(h.Sum(nil)[:16])
	})
	return c.digestText
}

// HasScopes reports whether every one of want was granted.
func (c *Claims) HasScopes(want []string) bool {
	for _, s := range want {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// ErrInvalid is every reason a token is refused: callers learn that it was,
// not why (the log may say more).
var ErrInvalid = errors.New("invalid token")

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	keys   map[string]staticKey // by kid
	jwks   keyfunc.Keyfunc
	parser *jwt.Parser
	cancel context.CancelFunc
	// verified remembers tokens whose signature was checked, until their
	// exp or verifiedFor: an ES256 signature costs more than the rest of a
	// cache hit, and clients send the same token many times.
	verified *ristretto.Cache[string, *Claims]
	// jwksFailed is the key set's last failed read, until a read succeeds;
	// reported, if set, hears of each failure.
	jwksFailed atomic.Pointer[error]
	reported   atomic.Pointer[func(error)]
}

// ReportJWKSErrors has report called with every failed read of the key
// set from now on, and at once with the last one if the set could not be
// read yet (at start: New does not fail for an identity provider that is
// down, since its keys may come back).
func (v *Verifier) ReportJWKSErrors(report func(error)) {
	v.reported.Store(&report)
	if err := v.jwksFailed.Load(); err != nil {
		report(*err)
	}
}

func (v *Verifier) jwksError(err error) {
	v.jwksFailed.Store(&err)
	if r := v.reported.Load(); r != nil {
		(*r)(err)
	}
}

// verifiedFor bounds how long a verified token is trusted without a new
// check, so a key withdrawn from the key set stops working soon.
const verifiedFor = 5 * time.Minute

type staticKey struct {
	alg string
	key any
}

// asymmetric are the algorithms a key set may use; an HMAC secret never
// comes from a URL.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// New validates cfg and, with a JWKS URL, starts refreshing it; Close
// stops that.
func New(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("auth: issuer and audience are required: a token minted for another service must be refused")
	}
	if len(cfg.Keys) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("auth: no keys: give keys or a jwks_url")
	}
	switch {
	case cfg.Leeway < 0:
		return nil, fmt.Errorf("auth: leeway %s is negative: it would refuse tokens still valid", cfg.Leeway)
	case cfg.Leeway == 0:
		cfg.Leeway = 30 * time.Second
	}
	if cfg.JWKSURL != "" {
		if err := checkJWKSURL(cfg.JWKSURL); err != nil {
			return nil, err
		}
	}
	if cfg.MaxTokenBytes <= 0 {
		cfg.MaxTokenBytes = 8 << 10
	}
	v := &Verifier{cfg: cfg, keys: map[string]staticKey{}}
	algs := map[string]bool{}
	for i, k := range cfg.Keys {
		sk, err := parseKey(k)
		if err != nil {
			return nil, fmt.Errorf("auth: keys[%d] (kid %q): %w", i, k.ID, err)
		}
		if _, dup := v.keys[k.ID]; dup {
			return nil, fmt.Errorf("auth: keys[%d]: kid %q is given twice", i, k.ID)
		}
		v.keys[k.ID] = sk
		algs[sk.alg] = true
	}
	if cfg.JWKSURL != "" {
		for _, a := range asymmetric {
			algs[a] = true
		}
		kf, cancel, err := newJWKS(cfg, v.jwksError, func() { v.jwksFailed.Store(nil) })
		if err != nil {
			return nil, err
		}
		v.jwks, v.cancel = kf, cancel
	}
	var methods []string
	for a := range algs {
		methods = append(methods, a)
	}
	slices.Sort(methods)
	// Last, so no failure above leaves its goroutines behind.
	verified, err := ristretto.NewCache(&ristretto.Config[string, *Claims]{
		NumCounters: 100_000, MaxCost: 10_000, BufferItems: 64, // at most 10k tokens, one each
	})
	if err != nil {
		if v.cancel != nil {
			v.cancel()
		}
		return nil, fmt.Errorf("auth: %w", err)
	}
	v.verified = verified
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
	)
	return v, nil
}

// checkJWKSURL wants https: whoever can change the key set in transit can
// mint tokens. Plain http is for loopback (a local identity provider, tests).
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("auth: jwks_url %q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("auth: jwks_url %q: want https (http only on loopback): a key set read in the clear can be swapped for one that signs anything", raw)
}

func newJWKS(cfg Config, failed func(error), read func()) (keyfunc.Keyfunc, context.CancelFunc, error) {
	refresh, minRefresh := cfg.JWKSRefresh, cfg.JWKSMinRefresh
	if refresh <= 0 {
		refresh = time.Hour
	}
	if minRefresh <= 0 {
		minRefresh = time.Minute
	}
	client := cfg.JWKSClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	storage, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       ctx,
		HTTPTimeout:               10 * time.Second,
		NoErrorReturnFirstHTTPReq: true, // an identity provider down at start must not stop the BFF
		RefreshErrorHandler: func(ctx context.Context, err error) {
			// An unknown kid refreshes on the caller's context: a caller
			// that hung up is no failure of the identity provider's.
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return
			}
			failed(err)
		},
		Storage:         readStorage{Storage: jwkset.NewMemoryStorage(), read: read},
		RefreshInterval: refresh,
	})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("auth: jwks_url: %w", err)
	}
	hc, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{cfg.JWKSURL: storage},
		// An unknown kid refreshes the set, at most this often: a flood of
		// made-up kids cannot make the BFF hammer the identity provider.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(minRefresh), 1),
		// No wait cap here: jwkset fetches the set under the same context,
		// so a cap also bounds the fetch (a 1ms cap meant that no refresh
		// over a real network could finish). Verify bounds the context
		// instead; the limiter refuses at once a wait past its deadline.
	})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("auth: jwks_url: %w", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: hc})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("auth: jwks_url: %w", err)
	}
	return kf, cancel, nil
}

func parseKey(k Key) (staticKey, error) {
	switch {
	case strings.HasPrefix(k.Alg, "HS"):
		if len(k.Secret) < 32 {
			return staticKey{}, fmt.Errorf("%s secret must be at least 32 bytes", k.Alg)
		}
		if len(k.PublicKey) > 0 {
			return staticKey{}, errors.New("an HMAC key has a secret, not a public key")
		}
		if m := jwt.GetSigningMethod(k.Alg); m == nil {
			return staticKey{}, fmt.Errorf("alg %q is not known", k.Alg)
		}
		return staticKey{alg: k.Alg, key: k.Secret}, nil
	case slices.Contains(asymmetric, k.Alg):
		if len(k.Secret) > 0 {
			return staticKey{}, fmt.Errorf("%s verifies with a public key, not a secret", k.Alg)
		}
		block, _ := pem.Decode(k.PublicKey)
		if block == nil {
			return staticKey{}, errors.New(`public_key is not PEM ("-----BEGIN PUBLIC KEY-----")`)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return staticKey{}, fmt.Errorf("public_key: %w", err)
		}
		if !fits(k.Alg, pub) {
			return staticKey{}, fmt.Errorf("a %T cannot verify %s", pub, k.Alg)
		}
		return staticKey{alg: k.Alg, key: pub}, nil
	}
	return staticKey{}, fmt.Errorf("alg %q: want HS256/384/512, RS*, PS*, ES* or EdDSA", k.Alg)
}

func fits(alg string, pub crypto.PublicKey) bool {
	switch pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// jwksFetchTimeout bounds a key set fetch made for a token with an unknown kid.
const jwksFetchTimeout = 2 * time.Second

// Remembered returns the claims of a token already verified and not yet
// due for a new check: no signature is checked.
func (v *Verifier) Remembered(token string) (*Claims, bool) {
	return v.verified.Get(token)
}

// Verify checks a token: signature by a key that pins its algorithm, exp
// (required) and nbf with leeway, iss and aud. Every failure is ErrInvalid,
// wrapped with the reason for logs.

func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > v.cfg.MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, v.cfg.MaxTokenBytes)
	}
	if c, ok := v.verified.Get(token); ok {
		return c, nil
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := v.keys[kid]; ok {
			if t.Method.Alg() != k.alg {
				return nil, fmt.Errorf("kid %q verifies %s, not %s", kid, k.alg, t.Method.Alg())
			}
			return k.key, nil
		}
		if v.jwks != nil && kid != "" && !strings.HasPrefix(t.Method.Alg(), "HS") {
			// An unknown kid may fetch the set: a bounded fetch, and no
			// waiting for the refresh limiter (its next slot is further off).
			kctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
			defer cancel()
			return v.jwks.KeyfuncCtx(kctx)(t)
		}
		return nil, fmt.Errorf("no key for kid %q", kid)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := &Claims{All: claims}
	c.Subject, _ = claims["sub"].(string)
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: no sub", ErrInvalid)
	}
	switch s := claims["scope"].(type) {
	case string:
		c.Scopes = strings.Fields(s)
	}
	if list, ok := claims["scp"].([]any); ok {
		for _, x := range list {
			if s, ok := x.(string); ok {
				c.Scopes = append(c.Scopes, s)
			}
		}
	}
	slices.Sort(c.Scopes) // one order for one grant: per-user cache keys hold them
	c.Scopes = slices.Compact(c.Scopes)
	// Remembered until exp (less the leeway already granted) or verifiedFor.
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		if ttl := min(time.Until(exp.Time), verifiedFor); ttl > 0 {
			v.verified.SetWithTTL(token, c, 1, ttl)
		}
	}
	return c, nil
}

// Close stops refreshing the key set.
func (v *Verifier) Close() {
	if v.cancel != nil {
		v.cancel()
	}
	v.verified.Close()
}

// readStorage tells of each successful read of the key set: jwkset replaces
// every key at once when, and only when, a read succeeds.
type readStorage struct {
	jwkset.Storage
	read func()
}

func (s readStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := s.Storage.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	s.read()
	return nil
}
