package docsync_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/bitmask-go/bitmask/internal/docsync"
)

// The rules of docs/sync.md "Conflicts" that Merge3 carries (deletion
// wins is the record's rule, tested in merge_record_test.go). Each row of
// the table below names the rule it checks:
const (
	ruleOneSide = `"a field changed on one side takes that side's value"`
	ruleObjects = `"changed on both sides, objects merge recursively"`
	ruleSets    = `"arrays of strings merge as sets (what either side added stays, what either side removed goes: flags merge per flag)"`
	ruleLocal   = `"anything else takes the local value (the later writer)"`
	// Not in docs/sync.md: rules that merge.go's comments state.
	ruleNotObject = `merge.go: "Bodies that are not JSON objects are not merged: local wins"`
	ruleRemoved   = `merge.go: "One side removed the field, the other changed it: the change is the newer intent unless both removed"`
	ruleNoBase    = `merge.go: base is "nil when the document did not exist before"`
)

type mergeCase struct {
	name                string
	rule                string
	base, local, remote string // "" for a nil base
	want                string
	sets                bool // compare arrays of strings as sets
}

var mergeCases = []mergeCase{
	// A field changed on one side.
	{name: "local changed a field", rule: ruleOneSide,
		base: `{"a":1,"b":1}`, local: `{"a":2,"b":1}`, remote: `{"a":1,"b":1}`, want: `{"a":2,"b":1}`},
	{name: "remote changed a field", rule: ruleOneSide,
		base: `{"a":1,"b":1}`, local: `{"a":1,"b":1}`, remote: `{"a":1,"b":3}`, want: `{"a":1,"b":3}`},
	{name: "each side changed another field", rule: ruleOneSide,
		base: `{"a":1,"b":1}`, local: `{"a":2,"b":1}`, remote: `{"a":1,"b":3}`, want: `{"a":2,"b":3}`},
	{name: "each side added another field", rule: ruleOneSide,
		base: `{"a":1}`, local: `{"a":1,"l":"x"}`, remote: `{"a":1,"r":"y"}`, want: `{"a":1,"l":"x","r":"y"}`},
	{name: "local removed a field the remote left alone", rule: ruleOneSide,
		base: `{"a":1,"b":1}`, local: `{"a":1}`, remote: `{"a":1,"b":1}`, want: `{"a":1}`},
	{name: "remote removed a field the local left alone", rule: ruleOneSide,
		base: `{"a":1,"b":1}`, local: `{"a":1,"b":1}`, remote: `{"b":1}`, want: `{"b":1}`},
	{name: "an array of strings changed on one side is taken as it is", rule: ruleOneSide,
		base: `{"f":["b","a"]}`, local: `{"f":["b","a","c"]}`, remote: `{"f":["b","a"]}`, want: `{"f":["b","a","c"]}`},
	{name: "an object changed on one side is taken whole", rule: ruleOneSide,
		base: `{"m":{"x":1}}`, local: `{"m":{"x":1}}`, remote: `{"m":{"y":2}}`, want: `{"m":{"y":2}}`},

	// Objects changed on both sides merge recursively.
	{name: "both changed an object, in different members", rule: ruleObjects,
		base: `{"m":{"x":1,"y":1}}`, local: `{"m":{"x":2,"y":1}}`, remote: `{"m":{"x":1,"y":2}}`, want: `{"m":{"x":2,"y":2}}`},
	{name: "both changed an object, one member each added", rule: ruleObjects,
		base: `{"m":{}}`, local: `{"m":{"l":1}}`, remote: `{"m":{"r":2}}`, want: `{"m":{"l":1,"r":2}}`},
	{name: "both changed an object two levels down", rule: ruleObjects,
		base:   `{"m":{"n":{"x":1,"y":1},"z":0}}`,
		local:  `{"m":{"n":{"x":2,"y":1},"z":0}}`,
		remote: `{"m":{"n":{"x":1,"y":3},"z":5}}`,
		want:   `{"m":{"n":{"x":2,"y":3},"z":5}}`},
	{name: "both changed the same member of an object: local", rule: ruleObjects + " + " + ruleLocal,
		base: `{"m":{"x":1,"y":1}}`, local: `{"m":{"x":2,"y":1}}`, remote: `{"m":{"x":3,"y":4}}`, want: `{"m":{"x":2,"y":4}}`},
	{name: "both added the same object field", rule: ruleObjects,
		base: `{}`, local: `{"m":{"x":1}}`, remote: `{"m":{"y":2}}`, want: `{"m":{"x":1,"y":2}}`},

	// Arrays of strings changed on both sides merge as sets.
	{name: "flags: each side added a flag", rule: ruleSets, sets: true,
		base:   `{"flags":["\\Seen"]}`,
		local:  `{"flags":["\\Seen","\\Flagged"]}`,
		remote: `{"flags":["\\Seen","\\Answered"]}`,
		want:   `{"flags":["\\Answered","\\Flagged","\\Seen"]}`},
	{name: "flags: a removal on one side goes, an addition on the other stays", rule: ruleSets, sets: true,
		base:   `{"flags":["\\Seen"]}`,
		local:  `{"flags":[]}`,
		remote: `{"flags":["\\Seen","\\Flagged"]}`,
		want:   `{"flags":["\\Flagged"]}`},
	{name: "flags: the remote's removal goes, the local addition stays", rule: ruleSets, sets: true,
		base:   `{"flags":["\\Seen","\\Draft"]}`,
		local:  `{"flags":["\\Seen","\\Draft","\\Flagged"]}`,
		remote: `{"flags":["\\Seen"]}`,
		want:   `{"flags":["\\Flagged","\\Seen"]}`},
	{name: "flags: each side removed another flag", rule: ruleSets, sets: true,
		base:   `{"flags":["a","b","c"]}`,
		local:  `{"flags":["a","c"]}`,
		remote: `{"flags":["b","c"]}`,
		want:   `{"flags":["c"]}`},
	{name: "flags: both added the same flag, once", rule: ruleSets, sets: true,
		base:   `{"flags":["a"]}`,
		local:  `{"flags":["a","b"]}`,
		remote: `{"flags":["b","a","c"]}`,
		want:   `{"flags":["a","b","c"]}`},
	{name: "flags: both removed every flag", rule: ruleSets, sets: true,
		base: `{"flags":["a","b"]}`, local: `{"flags":["b"]}`, remote: `{"flags":["a"]}`, want: `{"flags":[]}`},
	{name: "a set field added on both sides: the union", rule: ruleSets, sets: true,
		base: `{}`, local: `{"tags":["x"]}`, remote: `{"tags":["y","x"]}`, want: `{"tags":["x","y"]}`},
	{name: "sets inside objects changed on both sides", rule: ruleObjects + " + " + ruleSets, sets: true,
		base:   `{"m":{"flags":["a"],"n":1}}`,
		local:  `{"m":{"flags":["a","l"],"n":1}}`,
		remote: `{"m":{"flags":[],"n":2}}`,
		want:   `{"m":{"flags":["l"],"n":2}}`},

	// Anything else changed on both sides: local.
	{name: "both changed a string", rule: ruleLocal,
		base: `{"s":"base"}`, local: `{"s":"local"}`, remote: `{"s":"remote"}`, want: `{"s":"local"}`},
	{name: "both changed a number", rule: ruleLocal,
		base: `{"n":1}`, local: `{"n":2}`, remote: `{"n":3}`, want: `{"n":2}`},
	{name: "both changed a boolean", rule: ruleLocal,
		base: `{"b":false}`, local: `{"b":true}`, remote: `{"b":null}`, want: `{"b":true}`},
	{name: "both changed an array of numbers", rule: ruleLocal,
		base: `{"a":[1,2]}`, local: `{"a":[1,2,3]}`, remote: `{"a":[1,2,4]}`, want: `{"a":[1,2,3]}`},
	{name: "both changed a mixed array", rule: ruleLocal,
		base: `{"a":["x",1]}`, local: `{"a":["x",1,"l"]}`, remote: `{"a":["x",1,"r"]}`, want: `{"a":["x",1,"l"]}`},
	{name: "both changed an array of objects", rule: ruleLocal,
		base: `{"a":[]}`, local: `{"a":[{"l":1}]}`, remote: `{"a":[{"r":1}]}`, want: `{"a":[{"l":1}]}`},
	{name: "local made an object, remote an array of strings", rule: ruleLocal,
		base: `{"v":"x"}`, local: `{"v":{"x":1}}`, remote: `{"v":["x"]}`, want: `{"v":{"x":1}}`},
	{name: "local made an array of strings, remote a string", rule: ruleLocal,
		base: `{"v":1}`, local: `{"v":["y"]}`, remote: `{"v":"y"}`, want: `{"v":["y"]}`},
	{name: "both added the same field with other values", rule: ruleLocal,
		base: `{}`, local: `{"s":"l"}`, remote: `{"s":"r"}`, want: `{"s":"l"}`},

	// Ties: both sides made the same change.
	{name: "both made the same change", rule: ruleLocal,
		base: `{"s":"a","n":1}`, local: `{"s":"b","n":1}`, remote: `{"s":"b","n":1}`, want: `{"s":"b","n":1}`},
	{name: "both removed the same field", rule: ruleLocal,
		base: `{"a":1,"b":1}`, local: `{"a":1}`, remote: `{"a":1}`, want: `{"a":1}`},
	{name: "both made the same change, spelled otherwise", rule: ruleObjects + " + " + ruleLocal,
		base: `{"m":{"x":1}}`, local: `{"m":{"x":2}}`, remote: `{"m": {"x": 2}}`, want: `{"m":{"x":2}}`},
	{name: "nothing changed", rule: ruleOneSide,
		base: `{"a":1,"f":["x"]}`, local: `{"a":1,"f":["x"]}`, remote: `{"a":1,"f":["x"]}`, want: `{"a":1,"f":["x"]}`},

	// Removal against change: not named by docs/sync.md.
	{name: "local removed a field the remote changed", rule: ruleRemoved,
		base: `{"a":1,"b":1}`, local: `{"a":1}`, remote: `{"a":1,"b":2}`, want: `{"a":1,"b":2}`},
	{name: "remote removed a field the local changed", rule: ruleRemoved,
		base: `{"a":1,"b":1}`, local: `{"a":1,"b":2}`, remote: `{"a":1}`, want: `{"a":1,"b":2}`},
	{name: "local removed a set field the remote added to", rule: ruleRemoved,
		base: `{"f":["a"]}`, local: `{}`, remote: `{"f":["a","b"]}`, want: `{"f":["a","b"]}`},

	// No common base: the document is new on both sides.
	{name: "no base: each side's fields", rule: ruleNoBase + " + " + ruleOneSide,
		local: `{"l":1}`, remote: `{"r":2}`, want: `{"l":1,"r":2}`},
	{name: "no base: the same field", rule: ruleNoBase + " + " + ruleLocal,
		local: `{"s":"l","t":1}`, remote: `{"s":"r","t":1}`, want: `{"s":"l","t":1}`},
	{name: "no base: flags", rule: ruleNoBase + " + " + ruleSets, sets: true,
		local: `{"flags":["a"]}`, remote: `{"flags":["b"]}`, want: `{"flags":["a","b"]}`},
	{name: "a base that is not JSON counts as none", rule: ruleNoBase,
		base: `not json`, local: `{"a":1,"l":1}`, remote: `{"a":2,"r":1}`, want: `{"a":1,"l":1,"r":1}`},

	// Bodies that are not objects.
	{name: "local is not an object", rule: ruleNotObject,
		base: `{"a":1}`, local: `["x"]`, remote: `{"a":2}`, want: `["x"]`},
	{name: "remote is not an object", rule: ruleNotObject,
		base: `{"a":1}`, local: `{"a":1,"l":1}`, remote: `"text"`, want: `{"a":1,"l":1}`},
	{name: "local is not JSON", rule: ruleNotObject,
		base: `{"a":1}`, local: `not json`, remote: `{"a":2}`, want: `not json`},
}

// TestMerge3 checks Merge3 against the rules of docs/sync.md "Conflicts"
// (and the few that merge.go states beyond them), row by row.
func TestMerge3(t *testing.T) {
	for _, c := range mergeCases {
		t.Run(c.name, func(t *testing.T) {
			var base []byte
			if c.base != "" {
				base = []byte(c.base)
			}
			got := docsync.Merge3(base, []byte(c.local), []byte(c.remote))
			if !sameJSON(t, got, []byte(c.want), c.sets) {
				t.Errorf("rule %s\nbase   %s\nlocal  %s\nremote %s\ngot    %s\nwant   %s", c.rule, c.base, c.local, c.remote, got, c.want)
			}
		})
	}
}

// TestMerge3IsDeterministic: docs/sync.md "The merge is deterministic,
// so both devices converge": the same three inputs give the same bytes
// every time (no map order, no set order leaks into the result).
func TestMerge3IsDeterministic(t *testing.T) {
	for _, c := range mergeCases {
		var base []byte
		if c.base != "" {
			base = []byte(c.base)
		}
		first := docsync.Merge3(base, []byte(c.local), []byte(c.remote))
		for range 20 {
			if got := docsync.Merge3(base, []byte(c.local), []byte(c.remote)); string(got) != string(first) {
				t.Fatalf("%s: %s, then %s", c.name, first, got)
			}
		}
	}
}

// sameJSON compares two JSON texts by value; with sets, arrays of
// strings compare as sets. Texts that are not JSON compare as bytes.
func sameJSON(t *testing.T, got, want []byte, sets bool) bool {
	t.Helper()
	var g, w any
	if json.Unmarshal(want, &w) != nil {
		return string(got) == string(want)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return false
	}
	if sets {
		g, w = sortSets(g), sortSets(w)
	}
	return reflect.DeepEqual(g, w)
}

func sortSets(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = sortSets(x)
		}
	case []any:
		var ss []string
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				for i, x := range v {
					v[i] = sortSets(x)
				}
				return v
			}
			ss = append(ss, s)
		}
		slices.Sort(ss)
		ss = slices.Compact(ss)
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	return v
}
