package plan_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/plan"
)

// dnsSubdomain is Kubernetes' DNS-1123 subdomain, which every name Stash
// creates must be; the bounded ones are also label values (at most 63
// characters, checked separately).
var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func TestBoundedName(t *testing.T) {
	long60 := strings.Repeat("a", 60)
	tests := []struct {
		name                 string
		prefix, in, suffix   string
		max                  int
		want                 string // exact, when the name fits
		wantPrefix, wantTail string // when hashed
	}{
		{name: "fits", prefix: "stash-backup-", in: "pg", suffix: "-0", max: 63, want: "stash-backup-pg-0"},
		{name: "exactly max", prefix: "p-", in: strings.Repeat("b", 61), max: 63, want: "p-" + strings.Repeat("b", 61)},
		{name: "one over", prefix: "p-", in: strings.Repeat("b", 62), max: 63, wantPrefix: "p-bbbb", wantTail: ""},
		{name: "suffix kept", prefix: "stash-restore-", in: long60, suffix: "-0-3", max: 63, wantPrefix: "stash-restore-aaaa", wantTail: "-0-3"},
		{name: "no trailing dash or dot before the hash", prefix: "x-", in: strings.Repeat("a", 38) + ".-" + strings.Repeat("c", 30), max: 52, wantPrefix: "x-aaaa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan.BoundedName(tt.prefix, tt.in, tt.suffix, tt.max)
			if tt.want != "" {
				if got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				return
			}
			if len(got) > tt.max || len(got) < tt.max-2 {
				t.Errorf("%q is %d long, want %d (less what was trimmed)", got, len(got), tt.max)
			}
			if !strings.HasPrefix(got, tt.wantPrefix) || !strings.HasSuffix(got, tt.wantTail) {
				t.Errorf("%q does not keep %q...%q", got, tt.wantPrefix, tt.wantTail)
			}
			if !dnsSubdomain.MatchString(got) {
				t.Errorf("%q is not a DNS name", got)
			}
			if again := plan.BoundedName(tt.prefix, tt.in, tt.suffix, tt.max); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		})
	}
}

// TestBoundedNamesDoNotCollide: names that share a 60-character prefix
// (so their truncations are equal) still get different Job, ServiceAccount
// and CronJob names, each within its limit.
func TestBoundedNamesDoNotCollide(t *testing.T) {
	shared := strings.Repeat("team-billing-postgres-", 3)[:60]
	names := []string{shared + "-primary", shared + "-replica", shared + "x", shared + "y", shared + "-primary-1700000000"}
	funcs := map[string]struct {
		f   func(string) string
		max int
	}{
		"BackupJobName":         {plan.BackupJobName, plan.MaxNameLength},
		"BackupServiceAccount":  {plan.BackupServiceAccount, plan.MaxNameLength},
		"RestoreServiceAccount": {plan.RestoreServiceAccount, plan.MaxNameLength},
		"RestoreJobName":        {func(s string) string { return plan.RestoreJobName(s, -1) }, plan.MaxNameLength},
		"RestoreJobName/ord":    {func(s string) string { return plan.RestoreJobName(s, 2) }, plan.MaxNameLength},
		"TriggerName":           {plan.TriggerName, plan.MaxCronJobNameLength},
		"LabelValue":            {plan.LabelValue, plan.MaxNameLength},
	}
	for fname, fn := range funcs {
		seen := map[string]string{}
		for _, n := range names {
			got := fn.f(n)
			if len(got) > fn.max {
				t.Errorf("%s(%q) = %q, %d > %d characters", fname, n, got, len(got), fn.max)
			}
			if !dnsSubdomain.MatchString(got) {
				t.Errorf("%s(%q) = %q is not a DNS name", fname, n, got)
			}
			if prev, dup := seen[got]; dup {
				t.Errorf("%s: %q and %q both give %q", fname, prev, n, got)
			}
			seen[got] = n
		}
	}
	// Short names keep Stash's names, so existing objects are found again.
	for got, want := range map[string]string{
		plan.BackupJobName("pg-backup-1700000000"): "stash-backup-pg-backup-1700000000-0",
		plan.RestoreJobName("rs", -1):              "stash-restore-rs-0",
		plan.RestoreJobName("rs", 1):               "stash-restore-rs-0-1",
		plan.BackupServiceAccount("pg-backup"):     "stash-backup-pg-backup",
		plan.RestoreServiceAccount("rs"):           "stash-restore-rs",
		plan.TriggerName("pg-backup"):              "stash-trigger-pg-backup",
		plan.LabelValue("pg-backup"):               "pg-backup",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
