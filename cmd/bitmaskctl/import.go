package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// bitmaskctl mail import ADDRESS PATH [--mailbox NAME]: bitmaskd reads
// an mbox file, a Maildir or a Maildir++ tree and stores its messages
// (docs/design.md, "Import"). A progress bar on a terminal, a line per
// ten seconds otherwise, JSON lines with --json; then the summary.
// Ctrl-C stops the import cleanly: what is stored stays, and the same
// command again goes on without duplicates.

func init() {
	extraCommands["mail import"] = (*cli).mailImport
	extraUsage = append(extraUsage, "  mail import ADDRESS PATH [--mailbox NAME]   (an mbox file, a Maildir or a Maildir++ tree)")
}

const importUsage = "usage: bitmaskctl mail import ADDRESS PATH [--mailbox NAME]"

func (c *cli) mailImport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mail import", flag.ContinueOnError)
	mailbox := fs.String("mailbox", "", "put every message into this mailbox")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New(importUsage)
	}
	path, err := filepath.Abs(pos[1])
	if err != nil {
		return err
	}
	st, err := c.api.StartImport(ctx, controlapi.ImportRequest{Address: pos[0], Path: path, Mailbox: *mailbox})
	if err != nil {
		return err
	}
	var bar *os.File
	if f, ok := c.stderr.(*os.File); ok && !c.json && term.IsTerminal(int(f.Fd())) {
		bar = f
	}
	var problems []controlapi.ImportProblem
	lastLine := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for st.State == controlapi.ImportRunning {
		select {
		case <-ctx.Done():
			// Ctrl-C: stop the job and wait until it has.
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			st, err = c.api.CancelImport(cctx, st.ID)
			cancel()
			if err != nil {
				return fmt.Errorf("stopping the import: %w", err)
			}
			problems = st.Problems
			continue
		case <-tick.C:
		}
		st, err = c.api.ImportStatus(ctx, st.ID, len(problems))
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return err
		}
		problems = append(problems, st.Problems...)
		switch {
		case c.json:
			st.Problems = nil
			b, _ := json.Marshal(st)
			fmt.Fprintf(c.stdout, "%s\n", b)
		case bar != nil:
			fmt.Fprintf(bar, "\r\033[K%s", progressBar(st, termWidth(bar)))
		case time.Since(lastLine) >= 10*time.Second:
			fmt.Fprintln(c.stdout, progressText(st))
			lastLine = time.Now()
		}
	}
	if bar != nil {
		fmt.Fprint(bar, "\r\033[K")
	}
	st.Problems = problems
	if c.json {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(c.stdout, "%s\n", b)
	} else {
		printImportSummary(c, st)
	}
	switch st.State {
	case controlapi.ImportFailed:
		return fmt.Errorf("import failed: %s (what was stored stays; the same command goes on from there)", st.Error)
	case controlapi.ImportCanceled:
		return errors.New("import stopped; what was stored stays, and the same command goes on from there")
	}
	return nil
}

func termWidth(f *os.File) int {
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
		return w
	}
	return 80
}

func progressText(st controlapi.ImportStatus) string {
	pct := 100.0
	if st.BytesTotal > 0 {
		pct = 100 * float64(st.BytesDone) / float64(st.BytesTotal)
	}
	rate := ""
	if s := time.Since(st.Started).Seconds(); s > 0 {
		rate = fmt.Sprintf(", %.0f msgs/s", float64(st.Imported+st.Duplicates)/s)
	}
	return fmt.Sprintf("%3.0f%%  %d imported, %d already there, %d refused%s", pct, st.Imported, st.Duplicates, st.Refused, rate)
}

// progressBar is a line of at most width: a bar and progressText.
func progressBar(st controlapi.ImportStatus, width int) string {
	text := progressText(st)
	n := width - len(text) - 4
	if n < 10 {
		return text
	}
	n = min(n, 40)
	done := n
	if st.BytesTotal > 0 {
		done = int(int64(n) * st.BytesDone / st.BytesTotal)
	}
	return "[" + strings.Repeat("#", done) + strings.Repeat(".", n-done) + "] " + text
}

func printImportSummary(c *cli, st controlapi.ImportStatus) {
	took := st.Finished.Sub(st.Started).Round(100 * time.Millisecond)
	fmt.Fprintf(c.stdout, "import of %s into %s: %s after %v\n", st.Path, st.Address, st.State, took)
	fmt.Fprintf(c.stdout, "  imported:                       %d\n", st.Imported)
	fmt.Fprintf(c.stdout, "  skipped, already there:         %d\n", st.Duplicates)
	fmt.Fprintf(c.stdout, "  imported as is (not well formed or cut short): %d\n", st.AsIs)
	fmt.Fprintf(c.stdout, "  refused:                        %d\n", st.Refused)
	for _, p := range st.Problems {
		fmt.Fprintf(c.stdout, "  %s: %s\n", p.Where, p.What)
	}
	if more := st.ProblemCount - len(st.Problems); more > 0 {
		fmt.Fprintf(c.stdout, "  (%d more problems not listed)\n", more)
	}
	if st.SyncPending > 0 {
		fmt.Fprintf(c.stdout, "%d documents still to sync to the provider; bitmaskd goes on in the background (bitmaskctl status)\n", st.SyncPending)
	}
}
