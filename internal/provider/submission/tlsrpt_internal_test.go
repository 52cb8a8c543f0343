package submission

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestTLSReportDaily: the counts of a UTC day are written when the day
// changes, as a report covering exactly that day, and counting starts
// again; detail lines are bounded.
func TestTLSReportDaily(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	now := day.Add(15 * time.Hour)
	r := newTLSReporter(dir, "mx.example.test", "postmaster@example.test", slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return now }
	r.st.Start = day
	s := rptSession{domain: "remote.test", mx: "mx.remote.test", ip: "192.0.2.1", sendingIP: "192.0.2.9"}
	r.success(s)
	for i := range rptMaxFailures + 50 {
		s.ip = "192.0.2." + strconv.Itoa(i%250)
		s.mx = "mx" + strconv.Itoa(i) + ".remote.test"
		r.failure(context.Background(), s, "starttls-not-supported", "", "")
	}
	r.tick()
	if _, err := os.Stat(filepath.Join(dir, "tlsrpt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a report was written before the day ended: %v", err)
	}
	now = day.Add(25 * time.Hour)
	r.tick()
	name := "mx.example.test!remote.test!" + strconv.FormatInt(day.Unix(), 10) + "!" + strconv.FormatInt(day.Add(24*time.Hour).Unix(), 10) + ".json"
	if _, err := os.Stat(filepath.Join(dir, "tlsrpt", name)); err != nil {
		t.Fatalf("no report for the day: %v", err)
	}
	p := r.st.Domains["remote.test"]
	if p != nil || !r.st.Start.Equal(day.Add(24*time.Hour)) {
		t.Fatalf("counting did not start again: %+v", r.st)
	}
	st := rptState{Start: day, Domains: map[string]map[string]*rptPolicy{}}
	r.st = st
	for i := range rptMaxFailures + 50 {
		s.mx = "mx" + strconv.Itoa(i) + ".remote.test"
		r.failure(context.Background(), s, "starttls-not-supported", "", "")
	}
	got := r.st.Domains["remote.test"][rptNoPolicy]
	if len(got.Details) != rptMaxFailures || got.Failures != rptMaxFailures+50 {
		t.Fatalf("%d details, %d failures; want %d details, all %d failures counted", len(got.Details), got.Failures, rptMaxFailures, rptMaxFailures+50)
	}
}
