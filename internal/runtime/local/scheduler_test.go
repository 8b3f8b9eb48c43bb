package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/manifest"
)

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	waiting *sync.Cond
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	c := &fakeClock{now: now}
	c.waiting = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	c.waiting.Broadcast()
	return ch
}

// advance moves the clock by d, waking the waiters it passes, and then
// waits until the scheduler waits again.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	for len(c.waiters) == 0 {
		c.waiting.Wait()
	}
	c.now = c.now.Add(d)
	var keep []waiter
	woke := false
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			woke = true
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
	for woke && len(c.waiters) == 0 {
		c.waiting.Wait()
	}
	c.mu.Unlock()
}

func loadSet(t *testing.T, yaml string) *manifest.Set {
	t.Helper()
	f := filepath.Join(t.TempDir(), "bc.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := manifest.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func backupConfigs(specs map[string]string) string {
	var out string
	for name, sched := range specs {
		paused := false
		if sched[0] == '!' {
			paused, sched = true, sched[1:]
		}
		out += fmt.Sprintf(`apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: %s, namespace: demo}
spec:
  schedule: %q
  paused: %t
  repository: {name: repo}
  target: {ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: data}, paths: [/data]}
---
`, name, sched, paused)
	}
	return out
}

// TestSchedulerRunsOnSchedule: with a clock the test moves, the scheduler
// starts each BackupConfiguration's sessions at its cron times and no
// others, never a paused one, and follows changed manifests: a schedule
// paused stops, a new one starts at its next time.
func TestSchedulerRunsOnSchedule(t *testing.T) {
	start := time.Date(2026, 12, 5, 12, 1, 0, 0, time.UTC)
	clock := newFakeClock(start)
	var (
		mu   sync.Mutex
		runs = map[string][]string{}
	)
	s := &Scheduler{Clock: clock, Poll: time.Minute, trigger: func(_ context.Context, ns, name string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		// Sessions start on goroutines of their own, in any order.
		runs[name] = append(runs[name], at.Format("15:04"))
		slices.Sort(runs[name])
	}}
	initial := loadSet(t, backupConfigs(map[string]string{"five": "*/5 * * * *", "hourly": "@hourly", "paused": "!* * * * *"}))
	var next *manifest.Set
	var nextMu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.loop(ctx, initial, func() (*manifest.Set, bool) {
			nextMu.Lock()
			defer nextMu.Unlock()
			set := next
			next = nil
			return set, set != nil
		})
	}()
	for range 59 { // 12:01 → 13:00
		clock.advance(time.Minute)
	}
	s.running.Wait()
	mu.Lock()
	if got := fmt.Sprint(runs["five"]); got != "[12:05 12:10 12:15 12:20 12:25 12:30 12:35 12:40 12:45 12:50 12:55 13:00]" {
		t.Errorf("*/5 ran at %s", got)
	}
	if got := fmt.Sprint(runs["hourly"]); got != "[13:00]" {
		t.Errorf("@hourly ran at %s", got)
	}
	if len(runs["paused"]) != 0 {
		t.Errorf("a paused BackupConfiguration ran at %v", runs["paused"])
	}
	mu.Unlock()

	nextMu.Lock()
	next = loadSet(t, backupConfigs(map[string]string{"five": "!*/5 * * * *", "hourly": "@hourly", "new": "30 * * * *"}))
	nextMu.Unlock()
	for range 60 { // 13:00 → 14:00
		clock.advance(time.Minute)
	}
	cancel()
	<-done
	s.running.Wait()
	mu.Lock()
	defer mu.Unlock()
	if n := len(runs["five"]); n != 12 {
		t.Errorf("*/5 ran %d times in all after it was paused at 13:01, want the 12 before", n)
	}
	if got := fmt.Sprint(runs["new"]); got != "[13:30]" {
		t.Errorf("a schedule added at 13:01 ran at %s", got)
	}
	if got := fmt.Sprint(runs["hourly"]); got != "[13:00 14:00]" {
		t.Errorf("@hourly ran at %s", got)
	}
}
