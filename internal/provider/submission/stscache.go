package submission

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The MTA-STS policy cache on disk: DATADIR/mta-sts.json, written after
// each change (to a temporary file, synced, renamed over the old one)
// and read at start, so that after a restart an attacker who blocks the
// policy lookups (the TXT record, the HTTPS fetch) still cannot strip a
// policy the relay has seen (RFC 8461 §5). It holds, per domain, the
// TXT record's id, the policy as fetched, when it was fetched and when
// it expires:
//
//	{"version":1,"policies":[{"domain":"example.org","id":"20250101",
//	  "policy":"version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmax_age: 86400\r\n",
//	  "fetched":"2025-01-01T00:00:00Z","expires":"2025-01-02T00:00:00Z"}]}
//
// An entry that does not parse, or has expired, is left out at load; a
// file that cannot be read as a whole is renamed to mta-sts.json.bad
// (kept for the admin) and the relay starts with an empty cache.

const (
	stsCacheFile    = "mta-sts.json"
	stsCacheVersion = 1
	stsCacheMaxSize = 64 << 20
	// stsCacheMax bounds the domains kept; past it, the entries that
	// expire first are dropped.
	stsCacheMax = 100000
)

type stsCacheFileJSON struct {
	Version  int             `json:"version"`
	Policies []stsCacheEntry `json:"policies"`
}

type stsCacheEntry struct {
	Domain  string    `json:"domain"`
	ID      string    `json:"id"`
	Policy  string    `json:"policy"`
	Fetched time.Time `json:"fetched"`
	Expires time.Time `json:"expires"`
}

// stsCachePath is the cache file in dataDir; "" (memory only) without one.
func stsCachePath(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, stsCacheFile)
}

// load reads the cache file into m.cache.
func (m *mtaSTS) load() error {
	if m.path == "" {
		return nil
	}
	f, err := os.Open(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("submission: reading the MTA-STS cache: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, stsCacheMaxSize+1))
	if err != nil {
		return fmt.Errorf("submission: reading the MTA-STS cache: %w", err)
	}
	var c stsCacheFileJSON
	if err = json.Unmarshal(b, &c); err == nil && c.Version != stsCacheVersion {
		err = fmt.Errorf("version %d", c.Version)
	}
	if err == nil && len(b) > stsCacheMaxSize {
		err = errors.New("larger than 64 MiB")
	}
	if err != nil {
		bad := m.path + ".bad"
		m.log.Error("submission: the MTA-STS cache is unreadable; set aside, starting empty", "file", m.path, "moved_to", bad, "err", err)
		if rerr := os.Rename(m.path, bad); rerr != nil {
			return fmt.Errorf("submission: setting aside the unreadable MTA-STS cache: %w", rerr)
		}
		return nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range c.Policies {
		p, err := parseSTSPolicy(e.Policy)
		if err != nil || e.Domain == "" || !now.Before(e.Expires) {
			continue
		}
		m.cache[e.Domain] = &stsCached{id: e.ID, policy: p, body: e.Policy, fetched: e.Fetched, expires: e.Expires}
	}
	return nil
}

// save writes m.cache to the cache file. A failure is logged: the
// policies still apply from memory.
func (m *mtaSTS) save() {
	if m.path == "" {
		return
	}
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	c := stsCacheFileJSON{Version: stsCacheVersion}
	m.mu.Lock()
	for d, e := range m.cache {
		c.Policies = append(c.Policies, stsCacheEntry{Domain: d, ID: e.id, Policy: e.body, Fetched: e.fetched, Expires: e.expires})
	}
	m.mu.Unlock()
	if len(c.Policies) > stsCacheMax {
		// Keep those that expire last.
		slices.SortFunc(c.Policies, func(a, b stsCacheEntry) int { return a.Expires.Compare(b.Expires) })
		c.Policies = c.Policies[len(c.Policies)-stsCacheMax:]
	}
	if err := writeFileAtomic(m.path, c); err != nil {
		m.log.Error("submission: writing the MTA-STS cache", "file", m.path, "err", err)
	}
}

// writeFileAtomic writes v as JSON to path, atomically (writeRawAtomic).
func writeFileAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeRawAtomic(path, b)
}
