package daemon

import (
	"context"
	"log/slog"
	"testing"
)

// unpaused cancels what it runs when sync is paused, runs it again on
// resume, and returns after it when its context ends.
func TestUnpausedStopsAndRestarts(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	started, ended := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		d.unpaused(ctx, func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
			ended <- struct{}{}
		})
	}()
	<-started
	d.SetSyncPaused(true)
	d.SetSyncPaused(true) // no flip: nothing happens
	<-ended
	if !d.SyncPaused() {
		t.Fatal("not paused")
	}
	d.SetSyncPaused(false)
	<-started
	cancel()
	<-ended
	<-returned

	// Paused from the start: it runs only on resume.
	d.SetSyncPaused(true)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	returned = make(chan struct{})
	go func() {
		defer close(returned)
		d.unpaused(ctx, func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
			ended <- struct{}{}
		})
	}()
	d.SetSyncPaused(false)
	<-started
	cancel()
	<-ended
	<-returned
}
