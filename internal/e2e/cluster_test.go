package e2e

import (
	"bytes"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
	"github.com/bitmask-go/bitmask/internal/testenv/s3"
)

// TestCluster: two leapd instances of one provider behind the same name
// (docs/storage.md, "Several instances"), each with its own listeners
// and data directory holding copies of the shared files, both with their
// outbound queues running. On "postgres-s3" they share a real PostgreSQL
// and a real S3 server (versitygw), as an operator runs them; on "bolt"
// the embedded store is shared in one process (a bbolt file has one
// process at a time), which proves the callers with the in-memory
// handshakes, wake-ups and claims. make e2e-scale runs it with
// BITMASK_REQUIRE_PEERS=1, where a missing peer fails instead of
// skipping.
//
// Signup through A; device 1 logs in through A, device 2 through B; mail
// in through A's MX reaches both; a change pushed through B reaches
// device 1 on A by its event stream (within less than the daemons' one
// minute sync interval); a message sent through B's submission reaches
// the outside MX exactly once.
func TestCluster(t *testing.T) {
	for _, be := range []struct {
		name string
		opts func(t *testing.T) testenv.Options
	}{
		{"bolt", func(t *testing.T) testenv.Options { return testenv.Options{} }},
		{"postgres-s3", func(t *testing.T) testenv.Options {
			store := postgres.Start(t) + "&migrate=1"
			blobs := s3.Start(t, s3.Options{}).NewBucketURL(t)
			return testenv.Options{Config: httpapi.Config{StoreURL: store, BlobsURL: blobs}}
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			if be.name == "bolt" && os.Getenv("BITMASK_CLUSTER_ONLY_PEERS") == "1" {
				t.Skip("BITMASK_CLUSTER_ONLY_PEERS=1")
			}
			testCluster(t, be.opts(t))
		})
	}
}

func testCluster(t *testing.T, o testenv.Options) {
	out := startOutsideMX(t)
	_, port := splitPort(t, out.addr)
	o.DNS = map[string]mockdns.Zone{
		"outside.test.":    {MX: []net_MX{{Host: "mx.outside.test.", Pref: 10}}},
		"mx.outside.test.": {A: []string{"127.0.0.1"}},
	}
	o.OutboundPort = port
	a := testenv.StartProvider(t, o)
	b := testenv.StartInstance(t, a, o)
	if a.Submission == nil || b.Submission == nil {
		t.Fatal("both instances must run their outbound queues")
	}

	d1 := signup(t, a, "cleo")
	d2 := login(t, b, "cleo")

	// Mail in through A's MX reaches both devices (device 2 hears of
	// it from B).
	msg := plainMessage("carol@sender.test", d1.acct.Address, "into the cluster", "cluster-in-marker-3f1e")
	deliver(t, a, "carol@sender.test", d1.acct.Address, msg)
	waitMessages(t, d1, "INBOX", 1)
	waitMessages(t, d2, "INBOX", 1)

	// A change made on device 2 (a flag: a document, no blob) is
	// pushed through B; device 1, on A, hears of it by its event
	// stream: its periodic sync is a minute away.
	msgs, err := d2.acct.Mail.Messages("INBOX")
	if err != nil || len(msgs) != 1 {
		t.Fatalf("device 2's INBOX: %v, %v", msgs, err)
	}
	if _, err := d2.acct.Mail.StoreFlags(t.Context(), "INBOX", []uint32{msgs[0].UID}, mailstore.FlagsAdd, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 45*time.Second, "device 1 (on A) has the flag set on device 2 (on B)", func() bool {
		msgs, err := d1.acct.Mail.Messages("INBOX")
		return err == nil && len(msgs) == 1 && slices.Contains(msgs[0].Flags, `\Flagged`)
	})

	// Out through B's submission (device 2's provider.json names B's),
	// with both queues running: the outside MX gets it once.
	sent := plainMessage(d1.acct.Address, "zoe@outside.test", "out of the cluster", "cluster-out-marker-9a0b")
	if err := d2.submit(t, d1.acct.Address, []string{"zoe@outside.test"}, sent); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 45*time.Second, "delivery to the outside MX", func() bool { return len(out.received()) >= 1 })
	testenv.Eventually(t, 30*time.Second, "both outbound queues empty", func() bool {
		items, err := a.Store.ListDueOutbound(t.Context(), time.Now().Add(24*time.Hour), 10)
		return err == nil && len(items) == 0
	})
	// Both instances stopped: no attempt is under way any more.
	b.Stop()
	a.Stop()
	n := 0
	for _, m := range out.received() {
		if bytes.Contains(m.data, []byte("out of the cluster")) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the outside MX got the message %d times, want once", n)
	}
}
