package docsync

import (
	"bytes"
	"testing"
)

// TestMergeRecord checks how a remote revision is folded into a dirty
// local record (Engine.merge, used by the pull and by a push conflict),
// row by row after docs/sync.md:
//   - "Deletion wins: if either side deleted the document, it is deleted";
//   - otherwise Merge3 of base, local and remote ("Conflicts"), with no
//     base when the base revision was a tombstone;
//   - the record "stays dirty, now based on the remote revision" ("Pull"),
//     so its next push is that revision plus one;
//   - the merge is a local edit (ver counts it), so an answer to a push
//     sent before it does not take the merged record as clean.
func TestMergeRecord(t *testing.T) {
	for _, c := range []struct {
		name       string
		local      record
		rev        uint64 // the remote revision
		del        bool
		body       string
		wantDel    bool
		wantBody   string
		wantBase   string
		wantBaseDl bool
	}{
		{name: "deletion wins: remote deleted what local edited",
			local: record{Rev: 3, Body: []byte(`{"a":2}`), Base: []byte(`{"a":1}`), Dirty: true, Ver: 5},
			rev:   4, del: true,
			wantDel: true, wantBaseDl: true},
		{name: "deletion wins: local deleted what remote edited",
			local: record{Rev: 3, Deleted: true, Base: []byte(`{"a":1}`), Dirty: true, Ver: 5},
			rev:   4, body: `{"a":1,"b":2}`,
			wantDel: true, wantBase: `{"a":1,"b":2}`},
		{name: "deletion wins: both deleted",
			local: record{Rev: 3, Deleted: true, Base: []byte(`{"a":1}`), Dirty: true, Ver: 5},
			rev:   4, del: true,
			wantDel: true, wantBaseDl: true},
		{name: "edits merge: each side's field",
			local: record{Rev: 3, Body: []byte(`{"a":2,"b":1}`), Base: []byte(`{"a":1,"b":1}`), Dirty: true, Ver: 5},
			rev:   4, body: `{"a":1,"b":3}`,
			wantBody: `{"a":2,"b":3}`, wantBase: `{"a":1,"b":3}`},
		{name: "edits merge: flags per flag",
			local: record{Rev: 3, Body: []byte(`{"flags":["s","x"]}`), Base: []byte(`{"flags":["s"]}`), Dirty: true, Ver: 5},
			rev:   9, body: `{"flags":[]}`,
			wantBody: `{"flags":["x"]}`, wantBase: `{"flags":[]}`},
		{name: "a tombstone base is no base: both added the field, local wins",
			local: record{Rev: 3, Body: []byte(`{"a":2}`), Base: []byte(`{"a":1}`), BaseDel: true, Dirty: true, Ver: 5},
			rev:   4, body: `{"a":1,"b":1}`,
			wantBody: `{"a":2,"b":1}`, wantBase: `{"a":1,"b":1}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.local
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			(&Engine{}).merge(&r, c.rev, c.del, body)
			if r.Deleted != c.wantDel {
				t.Errorf("deleted: %v, want %v", r.Deleted, c.wantDel)
			}
			if c.wantDel && r.Body != nil {
				t.Errorf("a deleted document keeps a body: %s", r.Body)
			}
			if !c.wantDel && string(r.Body) != c.wantBody {
				t.Errorf("body: %s, want %s", r.Body, c.wantBody)
			}
			if !r.Dirty || r.Rev != c.rev {
				t.Errorf("dirty %v on revision %d, want dirty on the remote's %d", r.Dirty, r.Rev, c.rev)
			}
			if !bytes.Equal(r.Base, body) || r.BaseDel != c.wantBaseDl || string(r.Base) != c.wantBase {
				t.Errorf("base: %q (deleted %v), want the remote revision %q (deleted %v)", r.Base, r.BaseDel, c.wantBase, c.wantBaseDl)
			}
			if r.Ver != c.local.Ver+1 {
				t.Errorf("ver: %d, want %d", r.Ver, c.local.Ver+1)
			}
		})
	}
}
