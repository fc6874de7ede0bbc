package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bffproxy/bff/internal/config"
	"github.com/golang-jwt/jwt/v5"
)

// mintToken signs a token with a client's HMAC key from the config, for
// trying auth out and for tests against a running BFF. Production tokens
// come from the identity provider.
//
//	bff token -config FILE [-client web] -sub 7 [-scope "profile orders"] [-ttl 1h]
func mintToken(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bff token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config file with clients.CLIENT.auth")
	client := fs.String("client", "web", "the client whose key signs")
	sub := fs.String("sub", "", "the subject (required)")
	scope := fs.String("scope", "", "space-separated scopes")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, err := sign(*configPath, *client, *sub, *scope, *ttl, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "bff token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, token)
	return 0
}

func sign(configPath, client, sub, scope string, ttl time.Duration, getenv func(string) string) (string, error) {
	if sub == "" {
		return "", errors.New("-sub is required")
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return "", err
	}
	cc := cfg.Clients[client]
	if cc == nil || cc.Auth == nil {
		return "", fmt.Errorf("the config has no clients.%s.auth", client)
	}
	for _, k := range cc.Auth.Keys {
		if !strings.HasPrefix(k.Alg, "HS") {
			continue
		}
		secret := k.Secret
		if k.SecretEnv != "" {
			secret = getenv(k.SecretEnv)
		}
		if secret == "" {
			continue
		}
		claims := jwt.MapClaims{"sub": sub, "iss": cc.Auth.Issuer, "aud": cc.Auth.Audience,
			"iat": time.Now().Unix(), "exp": time.Now().Add(ttl).Unix()}
		if scope != "" {
			claims["scope"] = scope
		}
		t := jwt.NewWithClaims(jwt.GetSigningMethod(k.Alg), claims)
		if k.KID != "" {
			t.Header["kid"] = k.KID
		}
		return t.SignedString([]byte(secret))
	}
	return "", fmt.Errorf("clients.%s.auth has no HMAC key (alg HS256/384/512 with a secret) to sign with", client)
}
