package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/bitmask-go/bitmask/internal/autostart"
)

// bitmaskctl autostart enable|disable|status [--bitmaskd PATH]: what
// starts bitmaskd when the user logs in (package autostart). It works on
// files of this user and needs no running bitmaskd.

func init() {
	extraCommands["autostart"] = (*cli).autostart
	extraUsage = append(extraUsage, "  autostart enable|disable|status [--bitmaskd PATH]   (start bitmaskd when you log in)")
}

// autostartEnv is the system autostart works on (tests replace it).
var autostartEnv = autostart.DefaultEnv

func (c *cli) autostart(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("autostart", flag.ContinueOnError)
	bitmaskd := fs.String("bitmaskd", "", "the bitmaskd to start (default: the one beside bitmaskctl, else the one in PATH)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	usage := errors.New("usage: bitmaskctl autostart enable|disable|status [--bitmaskd PATH]")
	if len(pos) != 1 {
		return usage
	}
	env := autostartEnv(*bitmaskd)
	var st autostart.Status
	switch pos[0] {
	case "enable":
		st, err = autostart.Enable(env)
	case "disable":
		st, err = autostart.Disable(env)
	case "status":
		st, err = autostart.Check(env)
	default:
		return usage
	}
	if err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	if c.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintln(c.stdout, st.Summary)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, it := range st.Items {
		line := "  " + it.What + "\t" + it.Path + "\t" + it.State
		if it.Exec != "" {
			line += ", starts " + it.Exec
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for _, n := range st.Notes {
		fmt.Fprintln(c.stdout, "note:", n)
	}
	if pos[0] == "enable" {
		fmt.Fprintln(c.stdout, "After a start at login your accounts stay locked until you log in (tray, `bitmaskctl open`, or your mail client).")
	}
	return nil
}
