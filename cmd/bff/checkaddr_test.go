package main

import (
	"context"
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
