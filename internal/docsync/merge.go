package docsync

import (
	"bytes"
	"encoding/json"
	"slices"
)

// Merge3 merges two concurrent edits of a JSON document body made from a
// common base (nil when the document did not exist before): each top-level
// field changed on only one side keeps that change; a field changed on
// both sides merges recursively when both are objects, as sets when both
// are arrays of strings (flags merge per flag), and otherwise takes
// local's value (the later writer: local is merged after remote landed).
// Bodies that are not JSON objects are not merged: local wins.
//
// Merge3 is deterministic, so devices that merge the same three inputs
// converge.
func Merge3(base, local, remote []byte) []byte {
	var b, l, r map[string]json.RawMessage
	if json.Unmarshal(local, &l) != nil || json.Unmarshal(remote, &r) != nil {
		return local
	}
	if base == nil || json.Unmarshal(base, &b) != nil {
		b = map[string]json.RawMessage{}
	}
	out := mergeObj(b, l, r)
	enc, err := json.Marshal(out)
	if err != nil {
		return local
	}
	return enc
}

func mergeObj(b, l, r map[string]json.RawMessage) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	keys := map[string]bool{}
	for k := range l {
		keys[k] = true
	}
	for k := range r {
		keys[k] = true
	}
	for k := range keys {
		bv, inB := b[k]
		lv, inL := l[k]
		rv, inR := r[k]
		lChanged := inL != inB || (inL && !jsonEqual(lv, bv))
		rChanged := inR != inB || (inR && !jsonEqual(rv, bv))
		switch {
		case !lChanged && !rChanged:
			if inL {
				out[k] = lv
			}
		case lChanged && !rChanged:
			if inL {
				out[k] = lv
			}
		case !lChanged && rChanged:
			if inR {
				out[k] = rv
			}
		default: // both changed
			if !inL || !inR {
				// One side removed the field, the other changed it:
				// the change is the newer intent unless both removed.
				if inL {
					out[k] = lv
				} else if inR {
					out[k] = rv
				}
				continue
			}
			out[k] = mergeValue(bv, lv, rv)
		}
	}
	// Keys present in base only and removed on both sides stay removed.
	return out
}

func mergeValue(b, l, r json.RawMessage) json.RawMessage {
	var lo, ro map[string]json.RawMessage
	if json.Unmarshal(l, &lo) == nil && json.Unmarshal(r, &ro) == nil && lo != nil && ro != nil {
		var bo map[string]json.RawMessage
		if json.Unmarshal(b, &bo) != nil || bo == nil {
			bo = map[string]json.RawMessage{}
		}
		enc, err := json.Marshal(mergeObj(bo, lo, ro))
		if err == nil {
			return enc
		}
	}
	var ls, rs []string
	if json.Unmarshal(l, &ls) == nil && json.Unmarshal(r, &rs) == nil && ls != nil && rs != nil {
		var bs []string
		_ = json.Unmarshal(b, &bs)
		enc, err := json.Marshal(mergeSet(bs, ls, rs))
		if err == nil {
			return enc
		}
	}
	return l
}

// mergeSet keeps what either side added and drops what either side
// removed, relative to base; the result is sorted.
func mergeSet(b, l, r []string) []string {
	inB := map[string]bool{}
	for _, x := range b {
		inB[x] = true
	}
	has := func(s []string, x string) bool { return slices.Contains(s, x) }
	set := map[string]bool{}
	for _, x := range append(append([]string{}, l...), r...) {
		set[x] = true
	}
	var out []string
	for x := range set {
		if inB[x] && (!has(l, x) || !has(r, x)) {
			continue // removed on one side
		}
		out = append(out, x)
	}
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ea, _ := json.Marshal(x)
	eb, _ := json.Marshal(y)
	return bytes.Equal(ea, eb)
}

// merge folds a remote revision into a dirty local record: deletion wins,
// else Merge3. The record stays dirty, now based on the remote revision.
func (e *Engine) merge(r *record, rev uint64, del bool, body []byte) {
	switch {
	case del || r.Deleted:
		r.Body, r.Deleted = nil, true
	default:
		var base []byte
		if !r.BaseDel {
			base = r.Base
		}
		r.Body = Merge3(base, r.Body, body)
	}
	r.Rev, r.Base, r.BaseDel = rev, body, del
	r.Ver++
}
