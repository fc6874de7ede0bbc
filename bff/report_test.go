package bff

import (
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
)

func TestCallReports(t *testing.T) {
	tests := []struct {
		name          string
		calls         []aggregate.CallReport
		timing, summa string
	}{
		{name: "none"},
		{
			name:   "one ok",
			calls:  []aggregate.CallReport{{Name: "user", Upstream: "users", Outcome: "ok", Duration: 1250 * time.Microsecond, Attempts: 1}},
			timing: `user;dur=1.2;desc="users"`,
			summa:  `user:users:ok:1.2ms:1`,
		},
		{
			name: "failures and slow calls",
			calls: []aggregate.CallReport{
				{Name: "user", Upstream: "users", Outcome: "ok", Duration: 80 * time.Microsecond, Attempts: 1},
				{Name: "recommendations", Upstream: "recs", Outcome: "stale timeout", Duration: 12345678 * time.Microsecond, Attempts: 12},
				{Name: "orders", Upstream: "orders", Outcome: "skipped"},
			},
			timing: `user;dur=0.1;desc="users", recommendations;dur=12345.7;desc="recs stale timeout", orders;dur=0.0;desc="orders skipped"`,
			summa:  `user:users:ok:0.1ms:1 recommendations:recs:stale timeout:12345.7ms:12 orders:orders:skipped:0.0ms:0`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serverTiming(tt.calls); got != tt.timing {
				t.Errorf("serverTiming = %q, want %q", got, tt.timing)
			}
			if got := callSummary(tt.calls); got != tt.summa {
				t.Errorf("callSummary = %q, want %q", got, tt.summa)
			}
		})
	}
}

func BenchmarkCallReports(b *testing.B) {
	calls := []aggregate.CallReport{
		{Name: "user", Upstream: "users", Outcome: "ok", Duration: 812 * time.Microsecond, Attempts: 1},
		{Name: "orders", Upstream: "orders", Outcome: "ok", Duration: 934 * time.Microsecond, Attempts: 1},
		{Name: "recommendations", Upstream: "recs", Outcome: "ok", Duration: 1021 * time.Microsecond, Attempts: 1},
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = serverTiming(calls)
		_ = callSummary(calls)
	}
}
