package main

import (
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// TestImportProgressLine: the bar fits the terminal's width and shows
// the share of bytes done; the summary lists every problem.
func TestImportProgressLine(t *testing.T) {
	st := controlapi.ImportStatus{BytesTotal: 1000, BytesDone: 250, Imported: 10, Duplicates: 5, Refused: 1, Started: time.Now().Add(-time.Second)}
	line := progressBar(st, 100)
	if len(line) > 100 || !strings.Contains(line, " 25%") || !strings.Contains(line, "10 imported, 5 already there, 1 refused") {
		t.Errorf("bar: %q", line)
	}
	if hashes := strings.Count(line, "#"); hashes != 10 {
		t.Errorf("bar: %d of 40 filled, want 10: %q", hashes, line)
	}
	var out strings.Builder
	c := &cli{stdout: &out}
	st.State, st.Finished = controlapi.ImportDone, time.Now()
	st.Problems = []controlapi.ImportProblem{{Where: "/m/cur/1:2,S", What: "refused: empty file (0 bytes): no message"}}
	st.ProblemCount = 3
	printImportSummary(c, st)
	for _, want := range []string{"imported:                       10", "already there:         5", "/m/cur/1:2,S: refused: empty file", "(2 more problems not listed)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
