package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
)

// The PostgreSQL tests run against a real server (internal/testenv/
// postgres): one per test binary, a fresh database per test. The
// conformance suite runs in postgres_conformance_test.go; these are what
// only a shared database has: several stores (instances) at once, and
// the schema's migrations.

// TestMain stops the test binary's PostgreSQL after the tests (there is
// one TestMain per test binary: storage and storage_test share it).
func TestMain(m *testing.M) { postgres.Main(m) }

// openPG opens a store on url, migrating, closed when t ends.
func openPG(t *testing.T, url string) *Postgres {
	t.Helper()
	s, err := OpenPostgres(t.Context(), url+"&migrate=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pgUser(t *testing.T, s Store, login string) {
	t.Helper()
	u := &User{Login: login, SRPSalt: []byte("salt"), SRPVerifier: []byte("v"), WrappedSecret: []byte("w"), Created: time.Now()}
	if err := s.CreateUser(t.Context(), u, ""); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresMigrations(t *testing.T) {
	url := postgres.Start(t)
	ctx := t.Context()
	want := SchemaVersion()
	if want < 1 {
		t.Fatalf("SchemaVersion() = %d", want)
	}
	// A fresh database is refused until migrated, with what to do.
	_, err := OpenPostgres(ctx, url)
	if err == nil || !strings.Contains(err.Error(), "leapd migrate") {
		t.Fatalf("opening an empty database: %v, want a word to run leapd migrate", err)
	}
	// Four migrators at once (four instances starting): each migration
	// is applied once, by one of them, and none fails.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied []int
		errs    []error
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := MigratePostgres(ctx, url)
			mu.Lock()
			defer mu.Unlock()
			applied = append(applied, a...)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent migrations: %v", errs)
	}
	slices.Sort(applied)
	var all []int
	ms, _ := migrations()
	for _, m := range ms {
		all = append(all, m.version)
	}
	if !slices.Equal(applied, all) {
		t.Fatalf("concurrent migrations applied %v, want each of %v once", applied, all)
	}
	// Again: nothing to do.
	if a, err := MigratePostgres(ctx, url); err != nil || len(a) != 0 {
		t.Fatalf("migrating a current database: applied %v, %v", a, err)
	}
	s, err := OpenPostgres(ctx, url)
	if err != nil {
		t.Fatalf("opening a migrated database: %v", err)
	}
	pgUser(t, s, "alice")
	// A database a newer leapd migrated is refused, by Open and by
	// migrate, and left as it is.
	if _, err := s.pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", want+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenPostgres(ctx, url); !errors.Is(err, errSchemaAhead) {
		t.Fatalf("opening a database ahead of the binary: %v", err)
	}
	if _, err := OpenPostgres(ctx, url+"&migrate=1"); !errors.Is(err, errSchemaAhead) {
		t.Fatalf("opening (migrate=1) a database ahead of the binary: %v", err)
	}
	if _, err := MigratePostgres(ctx, url); !errors.Is(err, errSchemaAhead) {
		t.Fatalf("migrating a database ahead of the binary: %v", err)
	}
	// A bad migrate= is an error, not ignored.
	if _, err := OpenPostgres(ctx, url+"&migrate=maybe"); err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("migrate=maybe: %v", err)
	}
}

// TestPostgresOpenByURL: storage.Open takes postgres:// and postgresql://
// URLs, and an error never shows the password.
func TestPostgresOpenByURL(t *testing.T) {
	url := postgres.Start(t)
	for _, u := range []string{url + "&migrate=1", "postgresql" + strings.TrimPrefix(url, "postgres")} {
		st, err := Open(t.Context(), t.TempDir(), u, "")
		if err != nil {
			t.Fatalf("Open(%s): %v", u, err)
		}
		pgUser(t, st, fmt.Sprintf("u%d", len(u)))
		st.Close()
	}
	_, err := OpenPostgres(t.Context(), "postgres://leapd:s3cret@127.0.0.1:1/x?connect_timeout=1")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("an unreachable server: %v (must fail, without the password)", err)
	}
	_, err = OpenPostgres(t.Context(), "postgres://leapd:s3cret@127.0.0.1:1/x?sslmode=sometimes")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "sslmode") {
		t.Fatalf("a bad parameter: %v (must fail, say which, without the password)", err)
	}
}

// TestPostgresConcurrentPushes: two instances pushing for one user at
// once get distinct sequences with no gap, and usage counts every
// document.
func TestPostgresConcurrentPushes(t *testing.T) {
	url := postgres.Start(t)
	a, b := openPG(t, url), openPG(t, url)
	pgUser(t, a, "alice")
	const workers, batches, perBatch = 6, 10, 5
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs []uint64
	)
	errc := make(chan error, workers)
	for w := range workers {
		st := a
		if w%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				var docs []providerapi.DocPush
				for j := range perBatch {
					docs = append(docs, providerapi.DocPush{ID: fmt.Sprintf("d%d-%d-%d", w, i, j), Rev: 1, Ciphertext: []byte("ct")})
				}
				res, err := st.PushDocs(context.Background(), "alice", docs)
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				for _, r := range res {
					if r.Status != providerapi.PushOK {
						mu.Unlock()
						errc <- fmt.Errorf("push of %s: %s", r.ID, r.Status)
						return
					}
					seqs = append(seqs, r.Seq)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	const total = workers * batches * perBatch
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("sequences %v...: want 1..%d, each once", seqs[:min(len(seqs), i+2)], total)
		}
	}
	if n, err := b.LastSeq(t.Context(), "alice"); err != nil || n != total {
		t.Fatalf("LastSeq = %d, %v; want %d", n, err, total)
	}
	if u, err := a.Usage(t.Context(), "alice"); err != nil || u.Docs != total || u.DocBytes != 2*total {
		t.Fatalf("Usage = %+v, %v; want %d documents of 2 bytes", u, err, total)
	}
	// The feed through either instance has every document once, in
	// sequence order.
	docs, last, more, err := b.Changes(t.Context(), "alice", 0, total+10)
	if err != nil || more || last != total || len(docs) != total {
		t.Fatalf("Changes: %d docs, last %d, more %v, %v", len(docs), last, more, err)
	}
}

// TestPostgresConcurrentIncoming: the incoming counter through two
// instances at once: distinct, gap-free.
func TestPostgresConcurrentIncoming(t *testing.T) {
	url := postgres.Start(t)
	a, b := openPG(t, url), openPG(t, url)
	pgUser(t, a, "alice")
	const n = 60
	got := make(chan uint64, n)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c, err := st.PutIncoming(context.Background(), "alice", []byte("message"))
			if err != nil {
				errc <- err
				return
			}
			got <- c
		}()
	}
	wg.Wait()
	close(got)
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	var cs []uint64
	for c := range got {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	for i, c := range cs {
		if c != uint64(i+1) {
			t.Fatalf("counters %v: want 1..%d", cs, n)
		}
	}
	items, more, err := b.ListIncoming(t.Context(), "alice", n)
	if err != nil || more || len(items) != n {
		t.Fatalf("ListIncoming: %d items, more %v, %v", len(items), more, err)
	}
}

// TestPostgresClaimsAcrossInstances: two instances claiming the due
// outbound queue at once never take the same item, and take them all.
func TestPostgresClaimsAcrossInstances(t *testing.T) {
	url := postgres.Start(t)
	a, b := openPG(t, url), openPG(t, url)
	ctx := t.Context()
	now := time.Now()
	const n = 40
	for i := range n {
		it := &OutboundItem{Login: "alice", From: "alice@example.org", Message: []byte("m"), NextAttempt: now.Add(-time.Duration(n-i) * time.Second)}
		if err := a.PutOutbound(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		taken = map[string]int{}
	)
	errc := make(chan error, 4)
	for w := range 4 {
		st := a
		if w%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				items, err := st.ClaimDueOutbound(context.Background(), now, 3, time.Hour)
				if err != nil {
					errc <- err
					return
				}
				if len(items) == 0 {
					return
				}
				mu.Lock()
				for _, it := range items {
					taken[it.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(taken) != n {
		t.Fatalf("%d items claimed, want %d", len(taken), n)
	}
	for id, c := range taken {
		if c != 1 {
			t.Fatalf("item %s claimed %d times", id, c)
		}
	}
	// Claimed: not due again until the lease ends, then due again.
	if due, err := b.ListDueOutbound(ctx, now, n); err != nil || len(due) != 0 {
		t.Fatalf("due after the claims: %d, %v", len(due), err)
	}
	if due, err := b.ListDueOutbound(ctx, now.Add(time.Hour), n); err != nil || len(due) != n {
		t.Fatalf("due when the lease ends: %d, %v; want %d", len(due), err, n)
	}
}

// TestPostgresWakeAcrossInstances: a wake sent through one instance
// reaches Wakeups running on another.
func TestPostgresWakeAcrossInstances(t *testing.T) {
	url := postgres.Start(t)
	a, b := openPG(t, url), openPG(t, url)
	ch := watchWakes(t, b)
	wakeUntilSeen(t, a, ch, "alice")
}

// TestPostgresWakeupsReconnect: when the listening connection is lost,
// Wakeups reconnects and then wakes every account (the wakes sent
// meanwhile are lost with the connection), and goes on delivering.
func TestPostgresWakeupsReconnect(t *testing.T) {
	url := postgres.Start(t)
	a, b := openPG(t, url), openPG(t, url)
	pgUser(t, a, "alice")
	pgUser(t, a, "bob")
	ch := watchWakes(t, b)
	wakeUntilSeen(t, a, ch, "ready")
	// Cut the listener's connection from the server's side.
	var killed int
	err := a.pool.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminating the listener: %d, %v", killed, err)
	}
	// Nobody wakes alice or bob: the sweep after the reconnect does.
	seen := map[string]bool{}
	for !seen["alice"] || !seen["bob"] {
		select {
		case l := <-ch:
			seen[l] = true
		case <-t.Context().Done():
			t.Fatalf("no wake for every account after the reconnect (saw %v)", seen)
		}
	}
	wakeUntilSeen(t, a, ch, "carol")
}

func watchWakes(t *testing.T, s Store) <-chan string {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan string, 1024)
	done := make(chan error, 1)
	go func() {
		done <- s.Wakeups(ctx, func(login string) {
			select {
			case ch <- login:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Wakeups ended with %v, want context.Canceled", err)
		}
	})
	return ch
}

// wakeUntilSeen wakes login through s until ch reports it: Wakeups
// gives no signal that it listens.
func wakeUntilSeen(t *testing.T, s Store, ch <-chan string, login string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.Wake(t.Context(), login); err != nil {
			t.Fatal(err)
		}
		select {
		case l := <-ch:
			if l == login {
				return
			}
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("the wake of %s never came", login)
		}
	}
}

// TestPostgresBlobChunks: a blob of several chunks streams in and out
// whole; one whose reader fails in the second chunk leaves nothing, not
// even its first chunk.
func TestPostgresBlobChunks(t *testing.T) {
	url := postgres.Start(t)
	s := openPG(t, url)
	ctx := t.Context()
	pgUser(t, s, "alice")
	data := make([]byte, 2*pgBlobChunk+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := s.PutBlob(ctx, "alice", "big", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, size, err := s.Blob(ctx, "alice", "big")
	if err != nil || size != int64(len(data)) {
		t.Fatalf("Blob: %d, %v", size, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), equal %v", len(got), err, bytes.Equal(got, data))
	}
	var chunks int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM blob_chunks WHERE login = 'alice' AND id = 'big'").Scan(&chunks); err != nil || chunks != 3 {
		t.Fatalf("%d chunks (%v), want 3", chunks, err)
	}
	short := io.MultiReader(bytes.NewReader(data[:pgBlobChunk+10]), iotestErrReader{})
	if err := s.PutBlob(ctx, "alice", "broken", short, int64(len(data))); err == nil {
		t.Fatal("a reader failing half way stored a blob")
	}
	if _, _, err := s.Blob(ctx, "alice", "broken"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed blob: %v, want ErrNotFound", err)
	}
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM blob_chunks WHERE id = 'broken'").Scan(&chunks); err != nil || chunks != 0 {
		t.Fatalf("%d chunks of the failed blob left (%v)", chunks, err)
	}
	if u, err := s.Usage(ctx, "alice"); err != nil || u.Blobs != 1 || u.BlobBytes != int64(len(data)) {
		t.Fatalf("Usage = %+v, %v", u, err)
	}
	// A deletion while a reader is between chunks: the reader says so.
	rc, _, err = s.Blob(ctx, "alice", "big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := s.DeleteAccount(ctx, "alice", "alice@example.org", "deleted"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); err == nil {
		t.Fatal("reading a blob whose account was deleted under it: no error")
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestPostgresUploadsHoldNoConnection: blob uploads whose clients stall
// half way hold none of the pool's connections (a few slow clients would
// otherwise stop every other request of the instance), and an account
// deleted under them leaves nothing when they finish.
func TestPostgresUploadsHoldNoConnection(t *testing.T) {
	url := postgres.Start(t)
	s := openPG(t, url+"&pool_max_conns=2")
	ctx := t.Context()
	pgUser(t, s, "alice")
	const uploads = 5
	var pws []*io.PipeWriter
	done := make(chan error, uploads)
	half := bytes.Repeat([]byte("x"), pgBlobChunk) // of a 2-chunk blob
	for i := range uploads {
		pr, pw := io.Pipe()
		pws = append(pws, pw)
		go func() { done <- s.PutBlob(ctx, "alice", fmt.Sprintf("b%d", i), pr, 2*int64(len(half))) }()
		if _, err := pw.Write(half); err != nil { // taken: the upload reads its body
			t.Fatal(err)
		}
	}
	if n := s.pool.Stat().AcquiredConns(); n != 0 {
		t.Fatalf("%d connections held by stalled uploads", n)
	}
	if _, err := s.User(ctx, "alice"); err != nil {
		t.Fatalf("a request beside the stalled uploads: %v", err)
	}
	// Two finish; the account goes; the rest finish after it.
	for _, pw := range pws[:2] {
		if _, err := pw.Write(half); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		if err := <-done; err != nil {
			t.Fatalf("an upload: %v", err)
		}
	}
	c, err := s.DeleteAccount(ctx, "alice", "", "deleted")
	if err != nil || c.Blobs != 2 {
		t.Fatalf("deletion: %d blobs, %v; want 2", c.Blobs, err)
	}
	for _, pw := range pws[2:] {
		if _, err := pw.Write(half); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		if err := <-done; !errors.Is(err, ErrNotFound) {
			t.Fatalf("an upload finished after the deletion: %v, want ErrNotFound", err)
		}
	}
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM blob_chunks)").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d blob rows left (%v)", n, err)
	}
}

// TestPostgresTakenLoginSpendsTheInvite: as on bbolt
// (TestTakenLoginSpendsTheInvite), a taken or deleted login with a valid
// invite is ErrExists and spends the code; an invalid code spends
// nothing and says only that.
func TestPostgresTakenLoginSpendsTheInvite(t *testing.T) {
	s := openPG(t, postgres.Start(t))
	ctx := t.Context()
	for _, c := range []string{"c1", "c2", "c3", "c4"} {
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
	if _, err := s.DeleteAccount(ctx, "ivan", "", "deleted"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, user("ivan"), "c3"); !errors.Is(err, ErrExists) {
		t.Fatalf("a deleted login with a valid code: %v, want ErrExists", err)
	}
	if err := s.CreateUser(ctx, user("judy"), "c3"); !errors.Is(err, ErrInviteInvalid) {
		t.Fatalf("the code a deleted login spent: %v, want ErrInviteInvalid", err)
	}
	if err := s.CreateUser(ctx, user("judy"), "c4"); err != nil {
		t.Fatalf("a fresh code: %v", err)
	}
	if err := s.CreateUser(ctx, user("judy"), ""); !errors.Is(err, ErrExists) {
		t.Fatalf("a taken login without a code: %v", err)
	}
}

// BenchmarkPostgresPush pushes batches of 100 documents of 1 KiB for one
// user (new documents: every push is accepted) and reports documents/s.
func BenchmarkPostgresPush(b *testing.B) {
	url := postgres.Start(b)
	s, err := OpenPostgres(b.Context(), url+"&migrate=1")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(b.Context(), &User{Login: "alice"}, ""); err != nil {
		b.Fatal(err)
	}
	ct := bytes.Repeat([]byte("x"), 1024)
	n := 0
	for i := 0; b.Loop(); i++ {
		docs := make([]providerapi.DocPush, 100)
		for j := range docs {
			docs[j] = providerapi.DocPush{ID: fmt.Sprintf("d%d-%d", i, j), Rev: 1, Ciphertext: ct}
		}
		if _, err := s.PushDocs(b.Context(), "alice", docs); err != nil {
			b.Fatal(err)
		}
		n += len(docs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkPostgresChanges reads the changes feed 100 documents at a time
// from a random point of 10,000.
func BenchmarkPostgresChanges(b *testing.B) {
	url := postgres.Start(b)
	s, err := OpenPostgres(b.Context(), url+"&migrate=1")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(b.Context(), &User{Login: "alice"}, ""); err != nil {
		b.Fatal(err)
	}
	ct := bytes.Repeat([]byte("x"), 1024)
	for i := range 10 {
		docs := make([]providerapi.DocPush, 1000)
		for j := range docs {
			docs[j] = providerapi.DocPush{ID: fmt.Sprintf("d%d-%d", i, j), Rev: 1, Ciphertext: ct}
		}
		if _, err := s.PushDocs(b.Context(), "alice", docs); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; b.Loop(); i++ {
		if _, _, _, err := s.Changes(b.Context(), "alice", uint64(i*97%9900), 100); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPostgresWakeupsSilentDrop: a listening connection that goes
// silent (a firewall or NAT dropping it without a word: no reset, no
// answer) is found out by the ping after a quiet spell; Wakeups
// reconnects, wakes every account and goes on.
func TestPostgresWakeupsSilentDrop(t *testing.T) {
	every, timeout := wakeCheckEvery, wakeCheckTimeout
	wakeCheckEvery, wakeCheckTimeout = 100*time.Millisecond, 500*time.Millisecond
	t.Cleanup(func() { wakeCheckEvery, wakeCheckTimeout = every, timeout })
	direct := postgres.Start(t)
	p := newBlackholeProxy(t, direct)
	a := openPG(t, direct)
	pgUser(t, a, "alice")
	pgUser(t, a, "bob")
	b, err := OpenPostgres(t.Context(), p.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ch := watchWakes(t, b)
	wakeUntilSeen(t, a, ch, "ready")
	p.blackhole() // every connection b has now, its listener's too
	seen := map[string]bool{}
	for !seen["alice"] || !seen["bob"] {
		select {
		case l := <-ch:
			seen[l] = true
		case <-t.Context().Done():
			t.Fatalf("no wake for every account after the silent drop (saw %v)", seen)
		}
	}
	wakeUntilSeen(t, a, ch, "carol")
}

// blackholeProxy forwards TCP connections on loopback to the test
// server's unix socket; blackhole makes the connections open at that
// moment swallow everything from then on, both ways, without closing.
type blackholeProxy struct {
	url   string
	mu    sync.Mutex
	pairs []*atomic.Bool
}

func newBlackholeProxy(t *testing.T, pgURL string) *blackholeProxy {
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(u.Query().Get("host"), ".s.PGSQL.5432")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	q := u.Query()
	q.Del("host")
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	q.Set("port", port)
	u.Host, u.RawQuery = host, q.Encode()
	p := &blackholeProxy{url: u.String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("unix", sock)
			if err != nil {
				c.Close()
				continue
			}
			dead := new(atomic.Bool)
			p.mu.Lock()
			p.pairs = append(p.pairs, dead)
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				defer dst.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						return
					}
					if !dead.Load() {
						if _, err := dst.Write(buf[:n]); err != nil {
							return
						}
					}
				}
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return p
}

func (p *blackholeProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.pairs {
		d.Store(true)
	}
}

// FuzzPostgresCounterID: the ids of the incoming and outbound queues
// come from API paths; parseCounterID takes exactly the 16 lower-case
// hex digits counterID makes (of a number PostgreSQL's bigint holds)
// and nothing else, and never panics.
func FuzzPostgresCounterID(f *testing.F) {
	for _, s := range []string{"0000000000000001", "7fffffffffffffff", "8000000000000000", "000000000000000A", "+000000000000001", "1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		n, ok := parseCounterID(id)
		if !ok {
			return
		}
		if n < 0 || counterID(uint64(n)) != id {
			t.Fatalf("parseCounterID(%q) = %d, which counterID writes %q", id, n, counterID(uint64(n)))
		}
	})
}

// BenchmarkPostgresWake measures a wake through one instance reaching
// Wakeups on another (pg_notify to LISTEN), one at a time.
func BenchmarkPostgresWake(b *testing.B) {
	url := postgres.Start(b)
	a, err := OpenPostgres(b.Context(), url+"&migrate=1")
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	c, err := OpenPostgres(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	ch := make(chan string, 16)
	go c.Wakeups(ctx, func(l string) { //nolint:errcheck // ends with ctx
		select {
		case ch <- l:
		case <-ctx.Done():
		}
	})
	// Wait for the listener: wake until one comes through.
	for ready := false; !ready; {
		if err := a.Wake(ctx, "ready"); err != nil {
			b.Fatal(err)
		}
		select {
		case <-ch:
			ready = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	for len(ch) > 0 {
		<-ch
	}
	for b.Loop() {
		if err := a.Wake(ctx, "alice"); err != nil {
			b.Fatal(err)
		}
		for l := <-ch; l != "alice"; l = <-ch {
		}
	}
}
