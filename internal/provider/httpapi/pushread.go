package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// readPush decodes the body of POST /1/docs ({"docs": [...]}) as
// readJSON would, but a document at a time: the one after maxPushDocs
// ends the read with 400, so a 64 MiB body of a million tiny documents
// costs what 5,000 of them do, not the million decoded at once.
func readPush(w http.ResponseWriter, r *http.Request) ([]providerapi.DocPush, bool) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPushBody))
	fail := func(err error) ([]providerapi.DocPush, bool) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErr(w, http.StatusRequestEntityTooLarge, providerapi.CodeTooLarge, fmt.Sprintf("request body larger than %d bytes", maxPushBody))
		} else {
			writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "malformed JSON: "+err.Error())
		}
		return nil, false
	}
	delim := func(want json.Delim) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); !ok || d != want {
			return fmt.Errorf("%v where %v was expected", tok, want)
		}
		return nil
	}
	if err := delim('{'); err != nil {
		return fail(err)
	}
	var docs []providerapi.DocPush
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		if key, _ := tok.(string); !strings.EqualFold(key, "docs") {
			var skip json.RawMessage // as encoding/json ignores unknown fields
			if err := dec.Decode(&skip); err != nil {
				return fail(err)
			}
			continue
		}
		docs = nil // a repeated key: the last one counts, as in encoding/json
		if err := delim('['); err != nil {
			return fail(err)
		}
		for dec.More() {
			if len(docs) == maxPushDocs {
				writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, fmt.Sprintf("a push carries 1 to %d documents", maxPushDocs))
				return nil, false
			}
			var d providerapi.DocPush
			if err := dec.Decode(&d); err != nil {
				return fail(err)
			}
			docs = append(docs, d)
		}
		if err := delim(']'); err != nil {
			return fail(err)
		}
	}
	if err := delim('}'); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "malformed JSON: trailing data after the value")
		return nil, false
	}
	return docs, true
}
