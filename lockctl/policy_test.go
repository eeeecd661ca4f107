package lockctl

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheckUnlock(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	from, until := t0, t0.Add(2*time.Second)
	ok := GroupLink{LinkEnabled: true, ValidFrom: &from, ValidUntil: &until}
	open := Lock{Online: true}
	tests := []struct {
		name    string
		link    GroupLink
		lock    Lock
		inGroup bool
		now     time.Time
		want    *Denial
	}{
		{"inside window", ok, open, true, t0.Add(time.Second), nil},
		{"at valid_from", ok, open, true, t0, nil},
		{"last instant", ok, open, true, until.Add(-time.Nanosecond), nil},
		{"at valid_until", ok, open, true, until, &Denial{403, CodeNoLongerValid, "Access is no longer valid"}},
		{"after valid_until", ok, open, true, t0.Add(3 * time.Second), &Denial{403, CodeNoLongerValid, "Access is no longer valid"}},
		{"before valid_from", ok, open, true, t0.Add(-time.Second), &Denial{403, CodeNotYetValid, "Access is not yet valid"}},
		{"no window", GroupLink{LinkEnabled: true}, open, true, t0.AddDate(10, 0, 0), nil},
		{"disabled", GroupLink{}, open, true, t0, &Denial{403, CodeLinkInvalid, "Link is disabled"}},
		{"lock outside group", ok, open, false, t0, &Denial{404, CodeNotFound, "Lock not found"}},
		{"expired beats outside group", ok, open, false, until, &Denial{403, CodeNoLongerValid, "Access is no longer valid"}},
		{"offline", ok, Lock{}, true, t0, &Denial{403, CodeLockOffline, "Lock is offline"}},
		{"locked down", ok, Lock{Online: true, LockedDown: true}, true, t0, &Denial{403, CodeLockedDown, "Lock is locked down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckUnlock(tt.link, tt.lock, tt.inGroup, tt.now)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("CheckUnlock (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseInterval(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		in          string
		since, till time.Time
		wantErr     bool
	}{
		{"", now.Add(-90 * day), now, false},
		{"2026-03-01T00:00:00Z/2026-03-02T00:00:00Z", now.Add(-33 * time.Hour), now.Add(-9 * time.Hour), false},
		{"2026-03-01T00:00:00Z/PT2H30M", now.Add(-33 * time.Hour), now.Add(-33*time.Hour + 150*time.Minute), false},
		{"P1D/2026-03-02T00:00:00Z", now.Add(-33 * time.Hour), now.Add(-9 * time.Hour), false},
		{"P1W/2026-03-02T00:00:00Z", now.Add(-9*time.Hour - 7*day), now.Add(-9 * time.Hour), false},
		{"2026-03-02T00:00:00Z/2026-03-01T00:00:00Z", time.Time{}, time.Time{}, true},
		{"P91D/2026-03-02T00:00:00Z", time.Time{}, time.Time{}, true},
		{"yesterday/today", time.Time{}, time.Time{}, true},
		{"2026-03-01T00:00:00Z", time.Time{}, time.Time{}, true},
		{"2026-03-01T00:00:00Z/PT", time.Time{}, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			since, till, err := parseInterval(tt.in, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !since.Equal(tt.since) || !till.Equal(tt.till) {
				t.Errorf("got %s/%s, want %s/%s", since, till, tt.since, tt.till)
			}
		})
	}
}

func TestParseFlag(t *testing.T) {
	tests := []struct {
		in     string
		want   bool
		wantOK bool
	}{
		{"online", true, true},
		{"offline", false, true},
		{`{"online":true}`, true, true},
		{`{"online":false}`, false, true},
		{`{"status":"offline"}`, false, true},
		{"1", true, true},
		{"banana", false, false},
	}
	for _, tt := range tests {
		got, ok := parseFlag([]byte(tt.in), "online", "online", "offline")
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseFlag(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
