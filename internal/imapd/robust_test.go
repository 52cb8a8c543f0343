package imapd

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// A store that loses the event of a message this session added: the
// session reads the mailbox again and still reports EXISTS.
func TestMissingOwnEvent(t *testing.T) {
	store := newFakeStore()
	store.drop = func(ev mailstore.Event) bool { return ev.Kind == mailstore.EventAdded }
	e := startServerWith(t, store)
	e.srv.ownEventWait = 50 * time.Millisecond
	c := e.dial(nil)
	mustSelect(t, c, "INBOX", false)
	appendMsg(t, c, "INBOX", simpleMsg("x@example.org", "y@example.org", "lost", "Mon, 1 Jan 2024 10:00:00 +0000", "b"), nil)
	if n := c.Mailbox().NumMessages; n != 1 {
		t.Fatalf("EXISTS %d after a lost event", n)
	}
	msgs := fetchAll(t, c, imap.SeqSetNum(1), &imap.FetchOptions{UID: true, Envelope: true})
	if len(msgs) != 1 || msgs[0].Envelope.Subject != "lost" {
		t.Fatalf("fetch: %+v", msgs)
	}
}

// Several sessions and "sync" change one mailbox at once; afterwards every
// session's view matches the store, message for message.
func TestConcurrentSessions(t *testing.T) {
	e := startServer(t)
	const clients = 4
	var cs []*imapclient.Client
	for range clients {
		c := e.dial(nil)
		mustSelect(t, c, "INBOX", false)
		cs = append(cs, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for j := range 40 {
				var err error
				switch rng.IntN(6) {
				case 0:
					raw := simpleMsg("x@example.org", "y@example.org", fmt.Sprintf("c%d-%d", i, j), "Mon, 1 Jan 2024 10:00:00 +0000", "b")
					cmd := c.Append("INBOX", int64(len(raw)), nil)
					cmd.Write(raw)
					cmd.Close()
					_, err = cmd.Wait()
				case 1:
					_, err = c.Store(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: rng.IntN(2) == 0, Flags: []imap.Flag{imap.Flag("$T" + fmt.Sprint(i))}}, nil).Collect()
				case 2:
					mbox := c.Mailbox()
					if mbox == nil {
						errs <- fmt.Errorf("client %d step %d: no mailbox selected (connection ended?)", i, j)
						return
					}
					if n := mbox.NumMessages; n > 0 {
						seq := uint32(1 + rng.IntN(int(n)))
						_, err = c.Store(imap.SeqSetNum(seq), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect()
					}
				case 3:
					_, err = c.Expunge().Collect()
				case 4:
					_, err = c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
				case 5:
					_, err = c.Search(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
				}
				// Another session may expunge what a FETCH names.
				if err != nil && imapCode(err) != "EXPUNGEISSUED" {
					errs <- fmt.Errorf("client %d step %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := range 30 {
			m := e.store.deliver("INBOX", simpleMsg("sync@example.org", "y@example.org", fmt.Sprintf("s%d", j), "Mon, 1 Jan 2024 10:00:00 +0000", "b"))
			if j%3 == 0 {
				e.store.setFlags("INBOX", m.UID, `\Deleted`)
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	want, _ := e.store.Messages("INBOX")
	for i, c := range cs {
		// Poll until this session has heard of everything (events are
		// asynchronous), then compare.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if err := c.Noop().Wait(); err != nil {
				t.Fatal(err)
			}
			if c.Mailbox().NumMessages == uint32(len(want)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		got := fetchAll(t, c, imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true})
		if len(got) != len(want) || c.Mailbox().NumMessages != uint32(len(want)) {
			t.Fatalf("client %d sees %d (EXISTS %d), store has %d", i, len(got), c.Mailbox().NumMessages, len(want))
		}
		for k := range got {
			if got[k].SeqNum != uint32(k+1) || uint32(got[k].UID) != want[k].UID || len(noRecent(got[k].Flags)) != len(want[k].Flags) {
				t.Fatalf("client %d message %d: %+v, store %+v", i, k+1, got[k], want[k])
			}
		}
	}
}

// A large message goes in and out intact, in plain text and over TLS.
func TestLargeMessage(t *testing.T) {
	e := startServer(t)
	var body strings.Builder
	for i := 0; body.Len() < 3<<20; i++ {
		fmt.Fprintf(&body, "line %07d of a long message, with some text to fill it up\r\n", i)
	}
	raw := append(crlf("From: big@example.org\nSubject: big\nContent-Type: text/plain\n\n"), body.String()...)
	plain := e.dial(nil)
	data := appendMsg(t, plain, "INBOX", raw, nil)

	tc, err := imapclient.DialTLS(e.tlsAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: e.roots, ServerName: "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Login(testUser, testToken).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*imapclient.Client{plain, tc} {
		mustSelect(t, c, "INBOX", true)
		all := &imap.FetchItemBodySection{Peek: true}
		part := &imap.FetchItemBodySection{Part: []int{1}, Peek: true, Partial: &imap.SectionPartial{Offset: 1 << 20, Size: 64}}
		msgs := fetchAll(t, c, imap.UIDSetNum(data.UID), &imap.FetchOptions{RFC822Size: true, BodySection: []*imap.FetchItemBodySection{all, part}})
		if len(msgs) != 1 || !bytes.Equal(msgs[0].FindBodySection(all), raw) || msgs[0].RFC822Size != int64(len(raw)) {
			t.Fatalf("large message differs (%d bytes)", len(msgs[0].FindBodySection(all)))
		}
		wantPart := body.String()[1<<20 : 1<<20+64]
		if got := string(msgs[0].FindBodySection(part)); got != wantPart {
			t.Errorf("BODY[1]<1048576.64> = %q", got)
		}
	}
}
