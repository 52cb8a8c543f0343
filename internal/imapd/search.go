package imapd

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/imapproto"
	"github.com/bitmask-go/bitmask/internal/mailtext"
	"github.com/bitmask-go/bitmask/internal/recovered"
	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// Search evaluates SEARCH (RFC 9051 §6.4.4) over the messages the client
// knows. Each message's criteria are tried cheapest first: numbers, flags,
// sizes and dates from the list; ENVELOPE fields and the header block from
// the meta; BODY and TEXT read the message.
func (s *session) Search(kind imapproto.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	v := s.view
	h := v.hub

	var (
		last, maxUID uint32
		targets      []target
	)
	func() {
		h.mu.Lock()
		defer h.mu.Unlock() // deferred: a panic must not leave the hub locked
		last = v.clientMaxLocked()
		if len(h.uids) > 0 {
			maxUID = h.uids[len(h.uids)-1]
		}
		targets = make([]target, 0, len(h.uids))
		for i := range h.uids {
			if c := v.tracker.EncodeSeqNum(uint32(i) + 1); c != 0 {
				targets = append(targets, target{seq: c, uid: h.uids[i], e: h.msgs[i], recent: v.isRecentLocked(h.uids[i])})
			}
		}
	}()

	c := v.staticCriteria(*criteria, last, maxUID)
	var (
		data   imap.SearchData
		all    []target
		failed error
	)
	matched, errs := s.matchIndexed(targets, &c)
	for i, t := range targets {
		if matched[i] {
			all = append(all, t)
		}
		if errs[i] != nil && failed == nil && !errors.Is(errs[i], errGone) {
			failed = errs[i]
		}
	}
	if failed != nil {
		return nil, failed
	}

	var seqs imap.SeqSet
	var uidList imap.UIDSet
	modSeqKey := usesModSeq(criteria)
	for _, t := range all {
		num := t.seq
		if kind == imapproto.NumKindUID {
			num = t.uid
			uidList.AddNum(imap.UID(t.uid))
		} else {
			seqs.AddNum(t.seq)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		if num > data.Max {
			data.Max = num
		}
		data.Count++
		if modSeqKey {
			data.ModSeq = max(data.ModSeq, t.e.modSeq)
		}
	}
	if kind == imapproto.NumKindUID {
		data.All = uidList
	} else {
		data.All = seqs
	}

	if options.ReturnSave {
		// RFC 5182 §2.4: with MIN or MAX alone, only those are saved.
		var saved imap.UIDSet
		if len(all) > 0 {
			if (options.ReturnMin || options.ReturnMax) && !options.ReturnAll && !options.ReturnCount {
				if options.ReturnMin {
					saved.AddNum(imap.UID(all[0].uid))
				}
				if options.ReturnMax {
					saved.AddNum(imap.UID(all[len(all)-1].uid))
				}
			} else {
				for _, t := range all {
					saved.AddNum(imap.UID(t.uid))
				}
			}
		}
		v.searchRes = saved
	}
	return &data, nil
}

// textSearcher is a store that answers BODY and TEXT from a full-text
// index (internal/fulltext, through the daemon's IMAPMail): the UIDs of
// the mailbox whose text holds query, for the UIDs indexed says it
// covers; ok false when it cannot answer.
type textSearcher interface {
	Search(ctx context.Context, mbox string, uidValidity uint32, query string, all bool) (hits []uint32, indexed func(uid uint32) bool, ok bool, err error)
}

// matchIndexed matches targets against c, answering the BODY and TEXT
// keys at c's top level (the first maxIndexedKeys of them) from the
// full-text index where the store has one:
// a message the index covers for every such key is matched without them
// (or dropped when one misses); the others are matched with the whole of
// c, reading their text, so the answer is the scan's either way.
func (s *session) matchIndexed(targets []target, c *imap.SearchCriteria) ([]bool, []error) {
	ts, ok := s.store.(textSearcher)
	if !ok || (len(c.Body) == 0 && len(c.Text) == 0) {
		return s.matchAll(targets, c)
	}
	type answer struct {
		hits    map[uint32]struct{}
		indexed func(uint32) bool
	}
	var answers []answer
	rest := *c
	rest.Body, rest.Text = nil, nil
	for i, list := range [][]string{c.Body, c.Text} {
		for _, q := range list {
			if len(answers) == maxIndexedKeys {
				// Each answer is kept to the end (megabytes in a
				// large mailbox): the keys past a few are read from
				// the messages the others leave.
				if i == 0 {
					rest.Body = append(rest.Body, q)
				} else {
					rest.Text = append(rest.Text, q)
				}
				continue
			}
			hits, indexed, ok, err := ts.Search(s.ctx, s.view.hub.name, s.view.hub.uidValidity, q, i == 1)
			if err != nil || !ok {
				return s.matchAll(targets, c)
			}
			set := make(map[uint32]struct{}, len(hits))
			for _, u := range hits {
				set[u] = struct{}{}
			}
			answers = append(answers, answer{set, indexed})
		}
	}
	matched := make([]bool, len(targets))
	errs := make([]error, len(targets))
	var covered, scanned []int
	for i, t := range targets {
		in, all := true, true
		for _, a := range answers {
			if !a.indexed(t.uid) {
				all = false
				break
			}
			if _, hit := a.hits[t.uid]; !hit {
				in = false
			}
		}
		switch {
		case !all:
			scanned = append(scanned, i)
		case in:
			covered = append(covered, i)
		}
	}
	for _, part := range []struct {
		idx []int
		c   *imap.SearchCriteria
	}{{covered, &rest}, {scanned, c}} {
		if len(part.idx) == 0 {
			continue
		}
		sub := make([]target, len(part.idx))
		for j, i := range part.idx {
			sub[j] = targets[i]
		}
		m, e := s.matchAll(sub, part.c)
		for j, i := range part.idx {
			matched[i], errs[i] = m[j], e[j]
		}
	}
	return matched, errs
}

// maxIndexedKeys is how many BODY and TEXT keys of a SEARCH the
// full-text index is asked at most.
const maxIndexedKeys = 4

// searchChunk is how many messages a search worker takes at a time.
const searchChunk = 256

// matchAll matches every target against c, on as many cores as there are
// when the mailbox is large (reading and decoding message text is the
// cost, and messages are independent).
func (s *session) matchAll(targets []target, c *imap.SearchCriteria) ([]bool, []error) {
	matched := make([]bool, len(targets))
	errs := make([]error, len(targets))
	var next atomic.Int64
	work := func() {
		var bufs searchBufs
		for {
			start := int(next.Add(searchChunk)) - searchChunk
			if start >= len(targets) {
				return
			}
			for i := start; i < min(start+searchChunk, len(targets)); i++ {
				matched[i], errs[i] = s.matchOne(&candidate{s: s, t: targets[i], bufs: &bufs}, c)
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), (len(targets)+searchChunk-1)/searchChunk)
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Add(1)
		go func() { defer wg.Done(); work() }()
	}
	work()
	wg.Wait()
	return matched, errs
}

// matchOne matches one message. A panic in it (a message the MIME code
// cannot take) is logged, without content, and that message does not
// match: the search goes on with the others, and no goroutine of it can
// take bitmaskd down (a guarded command recovers only its own goroutine).
func (s *session) matchOne(m *candidate, c *imap.SearchCriteria) (matched bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			p := recovered.New(v)
			s.srv.log.Error("imapd: SEARCH panicked on a message; not matched", append([]any{"uid", m.t.uid}, p.LogAttrs()...)...)
			matched, err = false, nil
		}
	}()
	return m.match(c), m.err
}

// searchBufs are a search worker's buffers for message text, reused from
// one message to the next.
type searchBufs struct{ text, body bytes.Buffer }

// staticCriteria resolves "*" and "$" in the criteria's number sets.
func (v *view) staticCriteria(c imap.SearchCriteria, last, maxUID uint32) imap.SearchCriteria {
	seqs := c.SeqNum
	c.SeqNum = make([]imap.SeqSet, 0, len(seqs))
	for _, set := range seqs {
		ranges := make([][2]uint32, len(set))
		for i, r := range set {
			ranges[i] = [2]uint32{r.Start, r.Stop}
		}
		var st imap.SeqSet
		for _, r := range staticRanges(ranges, last) {
			st.AddRange(r[0], r[1])
		}
		c.SeqNum = append(c.SeqNum, st)
	}
	uidSets := c.UID
	c.UID = make([]imap.UIDSet, 0, len(uidSets))
	for _, set := range uidSets {
		if imap.IsSearchRes(set) {
			set = v.searchRes
		}
		ranges := make([][2]uint32, len(set))
		for i, r := range set {
			ranges[i] = [2]uint32{uint32(r.Start), uint32(r.Stop)}
		}
		var st imap.UIDSet
		for _, r := range staticRanges(ranges, maxUID) {
			st.AddRange(imap.UID(r[0]), imap.UID(r[1]))
		}
		c.UID = append(c.UID, st)
	}
	// Text is matched in lower case: fold the wanted strings once.
	c.Body = lowerAll(c.Body)
	c.Text = lowerAll(c.Text)
	not := c.Not
	c.Not = make([]imap.SearchCriteria, len(not))
	for i := range not {
		c.Not[i] = v.staticCriteria(not[i], last, maxUID)
	}
	or := c.Or
	c.Or = make([][2]imap.SearchCriteria, len(or))
	for i := range or {
		c.Or[i] = [2]imap.SearchCriteria{v.staticCriteria(or[i][0], last, maxUID), v.staticCriteria(or[i][1], last, maxUID)}
	}
	return c
}

// candidate is a message being searched; it reads its meta and content at
// most once, and only if a criterion needs them.
type candidate struct {
	s    *session
	t    target
	meta *Meta
	raw  []byte
	err  error
	bufs *searchBufs

	metaTried, rawTried bool
	text                []byte // decoded header and text parts, lower case
	body                []byte // decoded text parts, lower case
	textDone, bodyDone  bool
}

func lowerAll(l []string) []string {
	if len(l) == 0 {
		return l
	}
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = strings.ToLower(v)
	}
	return out
}

func (m *candidate) match(c *imap.SearchCriteria) bool {
	for _, set := range c.SeqNum {
		if !set.Contains(m.t.seq) {
			return false
		}
	}
	for _, set := range c.UID {
		if !set.Contains(imap.UID(m.t.uid)) {
			return false
		}
	}
	for _, f := range c.Flag {
		if strings.EqualFold(string(f), `\Recent`) {
			if !m.t.recent {
				return false
			}
		} else if !hasFlag(m.t.e.flags, string(f)) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if strings.EqualFold(string(f), `\Recent`) {
			if m.t.recent {
				return false
			}
		} else if hasFlag(m.t.e.flags, string(f)) {
			return false
		}
	}
	if c.ModSeq != nil && m.t.e.modSeq < c.ModSeq.ModSeq {
		return false
	}
	if c.Larger > 0 && m.t.e.size <= c.Larger {
		return false
	}
	if c.Smaller > 0 && m.t.e.size >= c.Smaller {
		return false
	}
	if !matchDate(m.t.e.date, c.Since, c.Before) {
		return false
	}
	for i := range c.Not {
		if m.match(&c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !m.match(&c.Or[i][0]) && !m.match(&c.Or[i][1]) {
			return false
		}
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		env := m.envelope()
		if env == nil || env.Date.IsZero() || !matchDate(env.Date, c.SentSince, c.SentBefore) {
			return false
		}
	}
	for _, hf := range c.Header {
		if !m.matchHeader(hf.Key, hf.Value) {
			return false
		}
	}
	for _, want := range c.Body {
		if !bytes.Contains(m.bodyText(), []byte(want)) {
			return false
		}
	}
	for _, want := range c.Text {
		if !bytes.Contains(m.allText(), []byte(want)) {
			return false
		}
	}
	return true
}

// usesModSeq says whether a MODSEQ key is in the criteria: ESEARCH and
// SEARCH then answer the highest MODSEQ found (RFC 7162 §3.1.5).
func usesModSeq(c *imap.SearchCriteria) bool {
	if c.ModSeq != nil {
		return true
	}
	for i := range c.Not {
		if usesModSeq(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if usesModSeq(&c.Or[i][0]) || usesModSeq(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// matchDate compares dates only, in the date's own zone (RFC 9051
// §6.4.4: "disregarding time and timezone").
func matchDate(t, since, before time.Time) bool {
	if since.IsZero() && before.IsZero() {
		return true
	}
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && d.Before(since) {
		return false
	}
	if !before.IsZero() && !d.Before(before) {
		return false
	}
	return true
}

func (m *candidate) loadMeta() {
	if m.metaTried {
		return
	}
	m.metaTried = true
	meta, raw, err := m.s.loadMeta(m.t.e, metaEnvelope|metaHeader)
	if err != nil {
		m.err = err
		return
	}
	m.meta = meta
	if raw != nil {
		m.raw, m.rawTried = raw, true
	}
}

func (m *candidate) envelope() *imap.Envelope {
	m.loadMeta()
	if m.meta == nil {
		return nil
	}
	return m.meta.Envelope
}

func (m *candidate) header() []byte {
	m.loadMeta()
	if m.meta == nil {
		return nil
	}
	if m.meta.HeaderTruncated {
		if raw := m.content(); raw != nil {
			return splitEntity(raw).header
		}
	}
	return m.meta.Header
}

func (m *candidate) content() []byte {
	if !m.rawTried {
		m.rawTried = true
		raw, err := m.s.store.Raw(m.s.ctx, m.t.e.id)
		if err != nil {
			m.err = m.s.rawErr(err)
		}
		m.raw = raw
	}
	return m.raw
}

// matchHeader matches HEADER, FROM, TO, CC, BCC and SUBJECT: a
// case-insensitive substring of the decoded field; an empty value matches
// when the field is present. Subject and address fields are answered from
// the envelope (decoded once, at store time); the header block is read
// for other fields, and for address fields the envelope could not parse.
func (m *candidate) matchHeader(key, value string) bool {
	want := strings.ToLower(value)
	if want != "" {
		if env := m.envelope(); env != nil {
			var addrs []imap.Address
			switch strings.ToLower(key) {
			case "subject":
				return strings.Contains(strings.ToLower(env.Subject), want)
			case "from":
				addrs = env.From
			case "to":
				addrs = env.To
			case "cc":
				addrs = env.Cc
			case "bcc":
				addrs = env.Bcc
			}
			for _, a := range addrs {
				switch {
				case a.IsGroupStart():
					if strings.Contains(strings.ToLower(a.Mailbox), want) {
						return true // by the group's name
					}
				case a.IsGroupEnd():
				case strings.Contains(strings.ToLower(a.Name+" <"+a.Mailbox+"@"+a.Host+">"), want):
					return true
				}
			}
			// Not in the parsed addresses: the field's text decides
			// (what the parser skipped, or a string across addresses).
		}
	}
	found := false
	headerFields(m.header(), func(n, raw []byte) bool {
		if !strings.EqualFold(string(n), key) {
			return true
		}
		if want == "" || strings.Contains(strings.ToLower(decodeText(rawmime.Value(raw))), want) {
			found = true
			return false
		}
		return true
	})
	return found
}

func (m *candidate) bodyText() []byte {
	if !m.bodyDone {
		m.bodyDone = true
		m.body = m.collect(false)
	}
	return m.body
}

func (m *candidate) allText() []byte {
	if !m.textDone {
		m.textDone = true
		m.text = m.collect(true)
	}
	return m.text
}

// collect decodes the message's text (with headers, or not) into the
// worker's buffer, lower case (mailtext.Text).
func (m *candidate) collect(headers bool) []byte {
	raw := m.content()
	if raw == nil {
		return nil
	}
	var buf *bytes.Buffer
	switch {
	case m.bufs == nil:
		buf = new(bytes.Buffer)
	case headers:
		buf = &m.bufs.text
	default:
		buf = &m.bufs.body
	}
	return mailtext.Text(buf, raw, headers)
}

// collectText appends the decoded text of a message's text parts (and,
// with headers, its header fields) to sb (mailtext.Append).
func collectText(sb *bytes.Buffer, raw []byte, headers bool) {
	mailtext.Append(sb, raw, headers)
}
