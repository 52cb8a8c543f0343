package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Pausing sync (the tray's "Pause sync"): while paused, no account talks
// to the provider on its own: the sync engine's loop (pull, push, the
// notification stream) and the incoming queue's are stopped, and start
// again with a sync at once on resume. Local work goes on: the mail
// client reads and writes the local store, and what it changes waits,
// queued, to be pushed. Explicit steps still reach the provider: a
// login's first sync, a logout's last one, and the outbox, which sends
// what the user submitted. The pause is kept in memory only; a restart
// of bitmaskd syncs again.

// pauseState is the daemon's pause switch and a channel closed when it
// flips (then replaced), so the loops that wait on it need no polling.
type pauseState struct {
	mu      sync.Mutex
	paused  bool
	flipped chan struct{}
}

func (p *pauseState) get() (bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.flipped == nil {
		p.flipped = make(chan struct{})
	}
	return p.paused, p.flipped
}

// SetSyncPaused pauses (true) or resumes (false) every account's sync
// with the provider, those logged in now and later.
func (d *Daemon) SetSyncPaused(paused bool) {
	p := &d.pause
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == paused {
		return
	}
	p.paused = paused
	if p.flipped != nil {
		close(p.flipped)
	}
	p.flipped = make(chan struct{})
	if paused {
		d.log.Info("sync paused")
	} else {
		d.log.Info("sync resumed")
	}
}

// SyncPaused reports whether sync is paused (SetSyncPaused).
func (d *Daemon) SyncPaused() bool {
	paused, _ := d.pause.get()
	return paused
}

// unpaused runs fn while sync is not paused: it cancels fn's context
// when sync is paused and runs fn again on resume. It returns when ctx
// ends, after fn has returned.
func (d *Daemon) unpaused(ctx context.Context, fn func(context.Context)) {
	for {
		paused, flipped := d.pause.get()
		if paused {
			select {
			case <-ctx.Done():
				return
			case <-flipped:
				continue
			}
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); fn(rctx) }()
		select {
		case <-ctx.Done():
		case <-flipped:
		}
		cancel()
		<-done
		if ctx.Err() != nil {
			return
		}
	}
}

// KnownAccounts lists the addresses that have an account on this
// device (an account.json in the data directory), logged in or not,
// sorted. An account.json that cannot be read is skipped.
func (d *Daemon) KnownAccounts() ([]string, error) {
	dirs, err := os.ReadDir(filepath.Join(d.cfg.DataDir, "accounts"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range dirs {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.cfg.DataDir, "accounts", e.Name(), "account.json"))
		if err != nil {
			continue
		}
		// Only the address: the rest of account.json is not parsed.
		var m struct {
			Address string `json:"address"`
		}
		if json.Unmarshal(b, &m) != nil || m.Address == "" {
			continue
		}
		out = append(out, m.Address)
	}
	sort.Strings(out)
	return out, nil
}
