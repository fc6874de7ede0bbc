package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `bff check` refuses listen addresses serve could not take: the admin
// listener on the public address, an address without a port.
func TestCheckRefusesListenAddressesServeRefuses(t *testing.T) {
	cases := map[string]map[string]string{
		"admin on the public address": {"BFF_ADDR": "127.0.0.1:18499", "BFF_ADMIN_ADDR": "127.0.0.1:18499"},
		"public address without port": {"BFF_ADDR": "127.0.0.1"},
		"admin address without port":  {"BFF_ADMIN_ADDR": "127.0.0.1"},
	}
	for name, env := range cases {
		var out, errs strings.Builder
		code := run(context.Background(), []string{"check"}, func(k string) string { return env[k] }, &out, &errs, nil)
		if code == 0 {
			t.Errorf("%s (%v): bff check exited 0 (%q); serve refuses it at start", name, env, strings.TrimSpace(out.String()))
		}
	}
}

// The address flags win over the variables: a flag that corrects the
// variable (an address without a port, or the admin listener's) starts the
// server, since the addresses are checked once the flags are applied.
func TestAddrFlagsWinOverTheVariables(t *testing.T) {
	cases := map[string]struct {
		env  map[string]string
		args []string
	}{
		"BFF_ADDR without a port, -addr corrects it": {
			env:  map[string]string{"BFF_ADDR": "127.0.0.1", "BFF_ADMIN_ADDR": "off"},
			args: []string{"-addr", "127.0.0.1:0"},
		},
		"BFF_ADDR on the admin default, -admin-addr off": {
			env:  map[string]string{"BFF_ADDR": "127.0.0.1:9090"},
			args: []string{"-addr", "127.0.0.1:0", "-admin-addr", "off"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"BFF_LOG_FORMAT": "text", "BFF_ACCESS_LOG": "false"}
			for k, v := range tc.env {
				env[k] = v
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			listening := make(chan listeners, 1)
			done := make(chan int, 1)
			var logs lockedBuffer
			go func() {
				done <- run(ctx, tc.args, func(k string) string { return env[k] }, &strings.Builder{}, &logs, listening)
			}()
			select {
			case <-listening:
				cancel()
				<-done
			case code := <-done:
				t.Errorf("env %v, flags %v: serve exited %d before listening; want the flags to win; log:\n%s", tc.env, tc.args, code, logs.String())
			}
		})
	}
}

// `bff check` checks the addresses with its -addr and -admin-addr applied,
// as serve would take them.
func TestCheckAppliesAddrFlags(t *testing.T) {
	for _, args := range [][]string{
		{"check", "-addr", "127.0.0.1:9090"},                                    // on the admin default
		{"check", "-addr", "127.0.0.1:18497", "-admin-addr", "127.0.0.1:18497"}, // admin on the public address
		{"check", "-admin-addr", "127.0.0.1"},                                   // no port
	} {
		var out, errs strings.Builder
		code := run(context.Background(), args, func(string) string { return "" }, &out, &errs, nil)
		if code == 0 {
			t.Errorf("bff %v exited 0 (%q); serve with these flags refuses to start", args, strings.TrimSpace(out.String()))
		}
	}
}

// A client's negative jwks_refresh or jwks_min_refresh is refused by `bff
// check`, like every negative duration, rather than run on the defaults.
func TestCheckRefusesNegativeJWKSRefresh(t *testing.T) {
	for _, field := range []string{"jwks_refresh", "jwks_min_refresh"} {
		conf := filepath.Join(t.TempDir(), "bff.yaml")
		body := "clients:\n  web:\n    auth:\n      issuer: https://id.example.com\n      audience: bff-web\n" +
			"      jwks_url: http://127.0.0.1:1/jwks.json\n      " + field + ": -1h\n"
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errs strings.Builder
		code := run(context.Background(), []string{"check", "-config", conf}, func(string) string { return "" }, &out, &errs, nil)
		if code == 0 {
			t.Errorf("clients.web.auth.%s: -1h: bff check exited 0 (%q); want an error naming the field, not the default run instead",
				field, strings.TrimSpace(out.String()))
		}
	}
}
