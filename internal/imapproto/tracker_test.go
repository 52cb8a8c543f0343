package imapproto

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// recorder is a client as the tracker's updates make it: the UIDs of its
// messages in its order, and what it was told, as text.
type recorder struct {
	t        *testing.T
	uids     []imap.UID // the client's view
	log      []imap.UID // every UID the server ever appended, in order
	next     int        // log[next] is the next message an EXISTS brings
	keywords map[imap.Flag]bool
	lines    []string
}

func newRecorder(t *testing.T, initial []imap.UID) *recorder {
	return &recorder{t: t, uids: slices.Clone(initial), log: slices.Clone(initial), next: len(initial), keywords: map[imap.Flag]bool{}}
}

func (r *recorder) WriteExpunge(seq uint32) error {
	r.lines = append(r.lines, fmt.Sprintf("EXPUNGE %d", seq))
	if seq == 0 || int(seq) > len(r.uids) {
		r.t.Fatalf("EXPUNGE %d with %d messages", seq, len(r.uids))
	}
	r.uids = slices.Delete(r.uids, int(seq)-1, int(seq))
	return nil
}

func (r *recorder) WriteVanished(uids imap.UIDSet, earlier bool) error {
	r.lines = append(r.lines, "VANISHED "+uids.String())
	for _, rg := range uids {
		for u := rg.Start; ; u++ {
			i := slices.Index(r.uids, u)
			if i < 0 {
				r.t.Fatalf("VANISHED %v: the client has no UID %d", uids, u)
			}
			r.uids = slices.Delete(r.uids, i, i+1)
			if u == rg.Stop {
				break
			}
		}
	}
	return nil
}

func (r *recorder) WriteNumMessages(n uint32) error {
	r.lines = append(r.lines, fmt.Sprintf("EXISTS %d", n))
	if int(n) <= len(r.uids) {
		r.t.Fatalf("EXISTS %d with %d messages", n, len(r.uids))
	}
	add := int(n) - len(r.uids)
	r.uids = append(r.uids, r.log[r.next:r.next+add]...)
	r.next += add
	return nil
}

func (r *recorder) WriteMailboxFlags(flags, permanent []imap.Flag) error {
	s := make([]string, len(flags))
	for i, f := range flags {
		s[i] = string(f)
		r.keywords[f] = true
	}
	line := "FLAGS (" + strings.Join(s, " ") + ")"
	if permanent != nil {
		line += fmt.Sprintf(" PERMANENT %d", len(permanent))
	}
	r.lines = append(r.lines, line)
	return nil
}

func (r *recorder) WriteMessageFlags(seq uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	s := make([]string, len(flags))
	for i, f := range flags {
		s[i] = string(f)
		if !strings.HasPrefix(string(f), `\`) && !r.keywords[f] {
			r.t.Fatalf("FETCH %d FLAGS with %s before FLAGS listed it", seq, f)
		}
	}
	line := fmt.Sprintf("FETCH %d UID %d FLAGS (%s)", seq, uid, strings.Join(s, " "))
	if modSeq != 0 {
		line += fmt.Sprintf(" MODSEQ %d", modSeq)
	}
	r.lines = append(r.lines, line)
	if seq == 0 || int(seq) > len(r.uids) || r.uids[seq-1] != uid {
		r.t.Fatalf("%s: the client has %v", line, r.uids)
	}
	return nil
}

func (r *recorder) take() string {
	s := strings.Join(r.lines, "; ")
	r.lines = nil
	return s
}

func TestTrackerOrderAndModes(t *testing.T) {
	mt := NewMailboxTracker(5)
	a, b := mt.NewSession(), mt.NewSession()
	ra := newRecorder(t, []imap.UID{1, 2, 3, 4, 5})
	rb := newRecorder(t, []imap.UID{1, 2, 3, 4, 5})

	mt.QueueMailboxFlags([]imap.Flag{`\Seen`, "$Work"}, []imap.Flag{`\Seen`, "$Work", `\*`})
	mt.QueueMessageFlags(2, 2, []imap.Flag{"$Work"}, 7, a) // a made the change
	mt.QueueExpunge(2, 2)
	mt.QueueExpunge(2, 3)
	mt.QueueExpunge(3, 5)
	ra.log = append(ra.log, 6, 7)
	rb.log = append(rb.log, 6, 7)
	mt.QueueNumMessages(3)
	mt.QueueNumMessages(4) // merged with the one before
	mt.QueueMessageFlags(4, 7, []imap.Flag{`\Flagged`}, 9, nil)

	// Without expunges allowed, only what comes before the first.
	if err := a.poll(ra, false, false, false); err != nil {
		t.Fatal(err)
	}
	if got, want := ra.take(), "FLAGS (\\Seen $Work) PERMANENT 3"; got != want {
		t.Errorf("a, no expunge: %q, want %q", got, want)
	}
	if got := a.DecodeSeqNum(3); got != 0 {
		t.Errorf("a: DecodeSeqNum(3) of an expunged message = %d", got)
	}
	if got := a.DecodeSeqNum(4); got != 2 {
		t.Errorf("a: DecodeSeqNum(4) = %d, want 2", got)
	}
	if got := a.EncodeSeqNum(4); got != 0 {
		t.Errorf("a: EncodeSeqNum(4) of a message not announced = %d", got)
	}
	if got := a.EncodeSeqNum(2); got != 4 {
		t.Errorf("a: EncodeSeqNum(2) = %d, want 4", got)
	}
	if got := a.NumMessages(); got != 5 {
		t.Errorf("a: NumMessages = %d, want 5", got)
	}
	if err := a.poll(ra, true, false, false); err != nil {
		t.Fatal(err)
	}
	if got, want := ra.take(), "EXPUNGE 2; EXPUNGE 2; EXPUNGE 3; EXISTS 4; FETCH 4 UID 7 FLAGS (\\Flagged)"; got != want {
		t.Errorf("a: %q, want %q", got, want)
	}
	if a.Pending() {
		t.Error("a: still pending after a full poll")
	}

	// b enabled QRESYNC: one VANISHED for the run, MODSEQ.
	if err := b.poll(rb, true, true, true); err != nil {
		t.Fatal(err)
	}
	want := "FLAGS (\\Seen $Work) PERMANENT 3; FETCH 2 UID 2 FLAGS ($Work) MODSEQ 7; VANISHED 2:3,5; EXISTS 4; FETCH 4 UID 7 FLAGS (\\Flagged) MODSEQ 9"
	if got := rb.take(); got != want {
		t.Errorf("b: %q, want %q", got, want)
	}
	if !slices.Equal(ra.uids, []imap.UID{1, 4, 6, 7}) || !slices.Equal(rb.uids, ra.uids) {
		t.Errorf("views: a %v, b %v", ra.uids, rb.uids)
	}
	a.Close()
	mt.QueueExpunge(1, 1)
	if a.Pending() {
		t.Error("a closed session got an update")
	}
	b.Close()
}

func TestTrackerPanicsOnNonsense(t *testing.T) {
	for name, f := range map[string]func(*MailboxTracker){
		"expunge 0":          func(mt *MailboxTracker) { mt.QueueExpunge(0, 1) },
		"expunge beyond":     func(mt *MailboxTracker) { mt.QueueExpunge(4, 1) },
		"count down":         func(mt *MailboxTracker) { mt.QueueNumMessages(2) },
		"flags beyond count": func(mt *MailboxTracker) { mt.QueueMessageFlags(9, 9, nil, 0, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f(NewMailboxTracker(3))
		})
	}
}

// TestTrackerRandom runs interleaved appends, expunges, flag changes and
// polls against several sessions and checks after each step that the
// sequence number translations agree with what each client was told.
func TestTrackerRandom(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { trackerRandom(t, seed) })
	}
}

func trackerRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	var server []imap.UID
	nextUID := imap.UID(1)
	for range rng.IntN(6) {
		server = append(server, nextUID)
		nextUID++
	}
	mt := NewMailboxTracker(uint32(len(server)))
	type sess struct {
		st      *SessionTracker
		r       *recorder
		qresync bool
	}
	var sessions []*sess
	for i := range 3 {
		sessions = append(sessions, &sess{st: mt.NewSession(), r: newRecorder(t, server), qresync: i == 1})
	}
	keywords := map[imap.Flag]bool{}
	var modSeq uint64
	for step := range 300 {
		switch op := rng.IntN(10); {
		case op < 3: // append one or a few
			n := 1 + rng.IntN(3)
			for range n {
				server = append(server, nextUID)
				for _, s := range sessions {
					s.r.log = append(s.r.log, nextUID)
				}
				nextUID++
			}
			mt.QueueNumMessages(uint32(len(server)))
		case op < 6 && len(server) > 0: // expunge a few, from the top down
			n := 1 + rng.IntN(min(3, len(server)))
			for range n {
				i := rng.IntN(len(server))
				mt.QueueExpunge(uint32(i+1), server[i])
				server = slices.Delete(server, i, i+1)
			}
		case op < 8 && len(server) > 0: // a flag change, sometimes with a new keyword
			i := rng.IntN(len(server))
			f := imap.Flag(`\Seen`)
			if rng.IntN(2) == 0 {
				f = imap.Flag(fmt.Sprintf("k%d", rng.IntN(8)))
				if !keywords[f] {
					keywords[f] = true
					var all []imap.Flag
					for k := range keywords {
						all = append(all, k)
					}
					mt.QueueMailboxFlags(all, nil)
				}
			}
			modSeq++
			var source *SessionTracker
			if rng.IntN(3) == 0 {
				source = sessions[rng.IntN(len(sessions))].st
			}
			mt.QueueMessageFlags(uint32(i+1), server[i], []imap.Flag{f}, modSeq, source)
		default: // a session polls
			s := sessions[rng.IntN(len(sessions))]
			if err := s.st.poll(s.r, rng.IntN(3) > 0, s.qresync, true); err != nil {
				t.Fatal(err)
			}
		}
		for k, s := range sessions {
			check := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("step %d, session %d: "+format+"\nserver %v\nclient %v", append([]any{step, k}, append(args, server, s.r.uids)...)...)
			}
			if got := s.st.NumMessages(); int(got) != len(s.r.uids) {
				check("NumMessages %d", got)
			}
			for c := 1; c <= len(s.r.uids)+1; c++ {
				sn := s.st.DecodeSeqNum(uint32(c))
				if c > len(s.r.uids) {
					if sn != 0 {
						check("DecodeSeqNum(%d) beyond the client's count = %d", c, sn)
					}
					continue
				}
				i := slices.Index(server, s.r.uids[c-1])
				if (i < 0 && sn != 0) || (i >= 0 && int(sn) != i+1) {
					check("DecodeSeqNum(%d) = %d, want %d", c, sn, i+1)
				}
			}
			for sn := 1; sn <= len(server)+1; sn++ {
				c := s.st.EncodeSeqNum(uint32(sn))
				if sn > len(server) {
					if c != 0 {
						check("EncodeSeqNum(%d) beyond the mailbox = %d", sn, c)
					}
					continue
				}
				i := slices.Index(s.r.uids, server[sn-1])
				if (i < 0 && c != 0) || (i >= 0 && int(c) != i+1) {
					check("EncodeSeqNum(%d) = %d, want %d", sn, c, i+1)
				}
			}
		}
	}
	// Everything told, every client has the server's list.
	for _, s := range sessions {
		if err := s.st.poll(s.r, true, s.qresync, true); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.r.uids, server) {
			t.Fatalf("after the last poll: client %v, server %v", s.r.uids, server)
		}
		s.st.Close()
	}
}

func TestTrackerIdle(t *testing.T) {
	mt := NewMailboxTracker(1)
	st := mt.NewSession()
	defer st.Close()
	mt.QueueNumMessages(2) // pending before Idle starts: written at once
	got := make(chan string, 16)
	w := &chanSink{ch: got}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- st.idle(w, stop) }()
	if s := <-got; s != "EXISTS 2" {
		t.Fatalf("first: %q", s)
	}
	mt.QueueExpunge(1, 1)
	if s := <-got; s != "EXPUNGE 1" {
		t.Fatalf("second: %q", s)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// chanSink sends what it is told on a channel.
type chanSink struct{ ch chan string }

func (c *chanSink) WriteExpunge(seq uint32) error {
	c.ch <- fmt.Sprintf("EXPUNGE %d", seq)
	return nil
}
func (c *chanSink) WriteVanished(uids imap.UIDSet, earlier bool) error {
	c.ch <- "VANISHED " + uids.String()
	return nil
}
func (c *chanSink) WriteNumMessages(n uint32) error {
	c.ch <- fmt.Sprintf("EXISTS %d", n)
	return nil
}
func (c *chanSink) WriteMailboxFlags(flags, permanent []imap.Flag) error {
	c.ch <- "FLAGS"
	return nil
}
func (c *chanSink) WriteMessageFlags(seq uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	c.ch <- fmt.Sprintf("FETCH %d", seq)
	return nil
}
