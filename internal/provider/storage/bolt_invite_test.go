package storage

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestTakenLoginSpendsTheInvite: a signup of a taken (or deleted) login
// with a valid invite is ErrExists and spends the code, as a successful
// signup does; an invalid code is ErrInviteInvalid whether the login is
// taken or not, and spends nothing.
func TestTakenLoginSpendsTheInvite(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "leapd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for _, c := range []string{"c1", "c2", "c3"} {
		if err := s.AddInvite(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	user := func(login string) *User { return &User{Login: login, Created: time.Now()} }
	if err := s.CreateUser(ctx, user("ivan"), "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, user("ivan"), "nope"); !errors.Is(err, ErrInviteInvalid) {
		t.Fatalf("a taken login with an unknown code: %v, want ErrInviteInvalid", err)
	}
	if err := s.CreateUser(ctx, user("ivan"), "c2"); !errors.Is(err, ErrExists) {
		t.Fatalf("a taken login with a valid code: %v, want ErrExists", err)
	}
	if err := s.CreateUser(ctx, user("judy"), "c2"); !errors.Is(err, ErrInviteInvalid) {
		t.Fatalf("the code a taken login spent: %v, want ErrInviteInvalid", err)
	}
	if _, err := s.User(ctx, "judy"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("judy was stored: %v", err)
	}
	if err := s.CreateUser(ctx, user("judy"), "c3"); err != nil {
		t.Fatalf("a fresh code: %v", err)
	}
	// Without a code, a taken login is ErrExists and nothing else.
	if err := s.CreateUser(ctx, user("judy"), ""); !errors.Is(err, ErrExists) {
		t.Fatalf("a taken login without a code: %v", err)
	}
}
