package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// bitmaskctl mail export ADDRESS DIR: bitmaskd writes every mailbox of
// the account into DIR as a Maildir++ tree (docs/design.md, "Export").
// DIR is made absolute here: bitmaskd, not bitmaskctl, writes it.

func init() {
	extraCommands["mail export"] = (*cli).mailExport
	extraUsage = append(extraUsage, "  mail export ADDRESS DIR [--quiet] (every mailbox as a Maildir++ tree, decrypted; run again to resume or update)")
}

func (c *cli) mailExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mail export", flag.ContinueOnError)
	quiet := fs.Bool("quiet", false, "no progress line")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("usage: bitmaskctl mail export ADDRESS DIR [--quiet]")
	}
	dir, err := filepath.Abs(pos[1])
	if err != nil {
		return err
	}
	shown := false
	progress := func(p controlapi.MailExportProgress) {
		if *quiet || c.json {
			return
		}
		shown = true
		fmt.Fprintf(c.stderr, "\r%s", progressLine(p))
	}
	res, err := c.api.ExportMail(ctx, controlapi.MailExportRequest{Address: pos[0], Dir: dir}, progress)
	if shown {
		fmt.Fprintln(c.stderr)
	}
	if err := c.show(res, err, func() { printExportSummary(c, res) }); err != nil {
		return err
	}
	if res.ProblemCount > 0 {
		return fmt.Errorf("%d mailboxes or messages could not be exported (listed above)", res.ProblemCount)
	}
	return nil
}

// progressLine is one line that a terminal rewrites in place.
func progressLine(p controlapi.MailExportProgress) string {
	pct := 100
	if p.Messages > 0 {
		pct = min(100, p.Done*100/p.Messages)
	}
	const width = 24
	bar := strings.Repeat("#", pct*width/100) + strings.Repeat(".", width-pct*width/100)
	box := p.Mailbox
	if len(box) > 24 {
		box = box[:21] + "..."
	}
	return fmt.Sprintf("[%s] %3d%% %d/%d messages, %s, mailbox %d/%d %-24s", bar, pct, p.Done, p.Messages, sizeText(p.Bytes), min(p.MailboxesDone+1, p.Mailboxes), p.Mailboxes, box)
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func printExportSummary(c *cli, r controlapi.MailExportResult) {
	fmt.Fprintf(c.stdout, "exported %d mailboxes, %d messages to %s in %.1fs\n", r.MailboxesDone, r.Done-r.Vanished, r.Dir, r.Seconds)
	fmt.Fprintf(c.stdout, "  %d written (%s), %d already there, %d with new flags\n", r.Written, sizeText(r.Bytes), r.Kept, r.Updated)
	if r.Vanished > 0 {
		fmt.Fprintf(c.stdout, "  %d deleted while the export ran (not exported)\n", r.Vanished)
	}
	if r.Stale > 0 {
		fmt.Fprintf(c.stdout, "  %d files of an earlier export whose message is no longer in the account (kept)\n", r.Stale)
	}
	if r.DroppedFlags > 0 {
		fmt.Fprintf(c.stdout, "  %d keywords not kept (more than 26 in a mailbox, or not IMAP atoms)\n", r.DroppedFlags)
	}
	for _, p := range r.Problems {
		if p.UID == 0 {
			fmt.Fprintf(c.stdout, "  not exported: mailbox %q: %s\n", p.Mailbox, p.Reason)
		} else {
			fmt.Fprintf(c.stdout, "  not exported: %q UID %d: %s\n", p.Mailbox, p.UID, p.Reason)
		}
	}
	if n := r.ProblemCount - len(r.Problems); n > 0 {
		fmt.Fprintf(c.stdout, "  and %d more not exported\n", n)
	}
}
