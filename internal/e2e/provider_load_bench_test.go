package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// BenchmarkProviderLoad is the bounded load run of issue 15: N accounts
// (BENCH_LOAD_ACCOUNTS, default 1,000) on one provider, driven through
// the real clients on loopback by loadWorkers goroutines at once:
//
//   - signups/s: Client.SignupAccount (the real SRP and Argon2id client
//     code, with the cheapest Argon2id parameters the format takes, so
//     the client's hashing does not hide the provider);
//   - logins/s: a second device of each account logs in (SRP);
//   - pushes/s: loadPushes one-document pushes per account;
//   - feed-p50-ms, feed-p99-ms: for loadFeedSample accounts, from the
//     start of a push on one device to the event the other device's
//     open event stream gets for it;
//   - mx-msgs/s: 10 KB messages to loadMXRecipients accounts with a
//     published key, through loadMXConns SMTP connections to the MX;
//   - rss-MiB, peak-MiB: the resident memory of the test process after
//     the run and its peak. leapd runs in this process, so that is
//     leapd's plus the clients' (and the test's).
//
// Sub-benchmarks per backend: bolt (the embedded default), postgres
// (skipped without PostgreSQL, failed with BITMASK_REQUIRE_PEERS=1),
// and postgres-2-instances: two leapd instances over one database, each
// account's first device on one and its second device on the other, so
// that logins finish, pushes wake and mail arrives across instances.
// Run: go test -run '^$' -bench ProviderLoad -benchtime 1x ./internal/e2e/
func BenchmarkProviderLoad(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("BENCH_LOAD_ACCOUNTS")); err == nil && v > 0 {
		n = v
	}
	for _, be := range []struct {
		name  string
		start func(b *testing.B) []*testenv.Provider
	}{
		{"bolt", func(b *testing.B) []*testenv.Provider {
			return []*testenv.Provider{testenv.StartProvider(b, loadOptions(""))}
		}},
		{"postgres", func(b *testing.B) []*testenv.Provider {
			return []*testenv.Provider{testenv.StartProvider(b, loadOptions(postgres.Start(b)+"&migrate=1"))}
		}},
		{"postgres-2-instances", func(b *testing.B) []*testenv.Provider {
			o := loadOptions(postgres.Start(b) + "&migrate=1")
			a := testenv.StartProvider(b, o)
			return []*testenv.Provider{a, testenv.StartInstance(b, a, o)}
		}},
	} {
		b.Run(be.name, func(b *testing.B) {
			ps := be.start(b)
			for i := range b.N {
				runProviderLoad(b, ps, n, fmt.Sprintf("l%d", i))
			}
		})
	}
}

// loadOptions is a provider with the store at storeURL ("" for bbolt)
// whose per-account and per-client login limits do not cut the run: the
// load comes from one address.
func loadOptions(storeURL string) testenv.Options {
	return testenv.Options{Config: httpapi.Config{StoreURL: storeURL, LoginPerAccount: -1, LoginPerClient: -1}}
}

const (
	loadWorkers      = 8
	loadPushes       = 4
	loadFeedSample   = 200
	loadMXRecipients = 50
	loadMXConns      = 4
)

// loadAccount is one account of the run: its first device (signed up on
// instance i mod the instances) and its second (logged in on the next
// instance, so with two instances each device's pushes wake the other
// across instances).
type loadAccount struct {
	login  string
	c1, c2 *providerclient.Client
	rev    uint64 // of document "feed"
}

// parallel runs fn(i) for i in [0, n) on loadWorkers goroutines and
// returns the time it took and the first error.
func parallel(n int, fn func(i int) error) (time.Duration, error) {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	start := time.Now()
	for range loadWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errOnce.Do(func() { first = fmt.Errorf("item %d: %w", i, err) })
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), first
}

func runProviderLoad(b *testing.B, ps []*testenv.Provider, n int, prefix string) {
	ctx := b.Context()
	// One bootstrap per instance, as every device of it would do; each
	// client then has its own connections.
	var prs []*providerclient.Provider
	for _, p := range ps {
		pr, err := providerclient.Bootstrap(ctx, p.URL, p.Fingerprint, testenv.CloseIdle(b))
		if err != nil {
			b.Fatal(err)
		}
		prs = append(prs, pr)
	}
	// The clients' transports, so that their idle connections can be
	// closed before leapd's memory is read.
	var (
		trMu sync.Mutex
		trs  []interface{ CloseIdleConnections() }
	)
	opts := providerclient.Options{WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		if tr, ok := rt.(interface{ CloseIdleConnections() }); ok {
			trMu.Lock()
			trs = append(trs, tr)
			trMu.Unlock()
		}
		return rt
	}}
	closeIdle := func() {
		trMu.Lock()
		defer trMu.Unlock()
		for _, tr := range trs {
			tr.CloseIdleConnections()
		}
	}
	defer closeIdle()
	newClient := func(inst int) (*providerclient.Client, error) {
		return providerclient.New(prs[inst], opts)
	}
	kdf, err := seal.FastKDFParams()
	if err != nil {
		b.Fatal(err)
	}
	accts := make([]*loadAccount, n)
	report := func(what string, d time.Duration, count int) {
		rate := float64(count) / d.Seconds()
		b.ReportMetric(rate, what+"/s")
		b.Logf("%s: %d in %.2f s, %.1f/s", what, count, d.Seconds(), rate)
	}

	b.ResetTimer()
	d, err := parallel(n, func(i int) error {
		a := &loadAccount{login: fmt.Sprintf("%s-user%05d", prefix, i)}
		c, err := newClient(i % len(ps))
		if err != nil {
			return err
		}
		_, _, tok, _, err := c.SignupAccount(ctx, a.login, []byte(password), kdf, "")
		if err != nil {
			return fmt.Errorf("signup: %w", err)
		}
		c.SetToken(tok)
		a.c1 = c
		accts[i] = a
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	report("signups", d, n)

	d, err = parallel(n, func(i int) error {
		c, err := newClient((i + 1) % len(ps))
		if err != nil {
			return err
		}
		if _, err := c.Login(ctx, accts[i].login, []byte(password)); err != nil {
			return fmt.Errorf("login: %w", err)
		}
		accts[i].c2 = c
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	report("logins", d, n)

	ct := bytes.Repeat([]byte{0xa5}, 1024)
	d, err = parallel(n*loadPushes, func(j int) error {
		a := accts[j/loadPushes]
		res, err := a.c1.Push(ctx, []providerapi.DocPush{{ID: fmt.Sprintf("doc%d", j%loadPushes), Rev: 1, Ciphertext: ct}})
		if err != nil {
			return err
		}
		if len(res.Results) != 1 || res.Results[0].Status != providerapi.PushOK {
			return fmt.Errorf("push: %+v", res.Results)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	report("pushes", d, n*loadPushes)

	lat, err := feedLatencies(ctx, accts[:min(n, loadFeedSample)])
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "feed-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "feed-p99-ms")
	b.Logf("changes feed, push to the other device's event: p50 %v, p99 %v (%d samples)", p50, p99, len(lat))

	b.StopTimer()
	rcpts := accts[:min(n, loadMXRecipients)]
	if _, err := parallel(len(rcpts), func(i int) error {
		addr := rcpts[i].login + "@" + testenv.Domain
		e, err := pgpkey.Generate(addr, 0, time.Now())
		if err != nil {
			return err
		}
		pub, err := pgpkey.ArmorPublic(e)
		if err != nil {
			return err
		}
		return rcpts[i].c1.PublishKey(ctx, pub)
	}); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	msgs := n
	d, err = sendLoadMail(ps, rcpts, msgs)
	if err != nil {
		b.Fatal(err)
	}
	report("mx-msgs", d, msgs)
	// Every message answered 250 is in its recipient's queue.
	var queued uint64
	for _, a := range rcpts {
		l, err := a.c2.ListIncoming(ctx, 1000)
		if err != nil {
			b.Fatal(err)
		}
		queued += uint64(len(l.Items))
	}
	if queued != uint64(msgs) {
		b.Fatalf("%d messages in the incoming queues, %d answered 250", queued, msgs)
	}

	// Memory: the peak holds the clients' too (2 per account, each with
	// its own TLS connections); after their connections are closed and
	// the garbage is returned, what stays is mostly leapd's.
	_, _, peak := procRSS(os.Getpid())
	closeIdle()
	runtime.GC()
	debug.FreeOSMemory()
	rss, _, _ := procRSS(os.Getpid())
	b.ReportMetric(float64(rss)/1024, "rss-MiB")
	b.ReportMetric(float64(peak)/1024, "peak-MiB")
	b.Logf("test process (leapd in-process, %d instance(s)): RSS %d MiB with %d accounts after the clients' connections closed; peak %d MiB with the clients", len(ps), rss/1024, n, peak/1024)
}

// feedLatencies measures, for each account, the time from the start of
// a push on its first device to the event the second device's open
// event stream gets for it.
func feedLatencies(ctx context.Context, accts []*loadAccount) ([]time.Duration, error) {
	lat := make([]time.Duration, len(accts))
	ct := bytes.Repeat([]byte{0x5a}, 1024)
	_, err := parallel(len(accts), func(i int) error {
		a := accts[i]
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		events := make(chan uint64, 16)
		done := make(chan error, 1)
		go func() {
			done <- a.c2.Events(sctx, func(ev providerapi.Event) {
				select {
				case events <- ev.Seq:
				default:
				}
			})
		}()
		// The first event says the stream is open.
		select {
		case <-events:
		case err := <-done:
			return fmt.Errorf("event stream: %w", err)
		case <-time.After(time.Minute):
			return errors.New("no first event in a minute")
		}
		start := time.Now()
		res, err := a.c1.Push(ctx, []providerapi.DocPush{{ID: "feed", BaseRev: a.rev, Rev: a.rev + 1, Ciphertext: ct}})
		if err != nil {
			return err
		}
		if len(res.Results) != 1 || res.Results[0].Status != providerapi.PushOK {
			return fmt.Errorf("push: %+v", res.Results)
		}
		a.rev++
		want := res.Results[0].Seq
		for {
			select {
			case seq := <-events:
				if seq < want {
					continue
				}
				lat[i] = time.Since(start)
				cancel()
				<-done
				return nil
			case err := <-done:
				return fmt.Errorf("event stream ended: %w", err)
			case <-time.After(time.Minute):
				return errors.New("no event for the push in a minute")
			}
		}
	})
	return lat, err
}

// sendLoadMail sends msgs 10 KB messages to rcpts, round robin, over
// loadMXConns connections spread over the instances' MXs.
func sendLoadMail(ps []*testenv.Provider, rcpts []*loadAccount, msgs int) (time.Duration, error) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := time.Now()
	for w := range loadMXConns {
		wg.Go(func() {
			c, err := smtp.Dial(ps[w%len(ps)].MXAddr)
			if err == nil {
				err = c.Hello("sender.test")
			}
			for err == nil {
				i := int(next.Add(1)) - 1
				if i >= msgs {
					break
				}
				to := rcpts[i%len(rcpts)].login + "@" + testenv.Domain
				err = c.SendMail("s@sender.test", []string{to}, bytes.NewReader(message10k(i, to)))
			}
			if c != nil {
				c.Close()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				next.Store(int64(msgs))
			}
		})
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}
