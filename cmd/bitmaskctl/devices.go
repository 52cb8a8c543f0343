package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// bitmaskctl devices list [ADDRESS] and devices revoke NAME|ID
// [--account ADDRESS]: the account's devices at its provider.

func init() {
	extraCommands["devices"] = (*cli).devices
	extraUsage = append(extraUsage,
		"  devices list [ADDRESS]       (the account's devices, with their last sync)",
		"  devices revoke NAME|ID [--account ADDRESS]   (end a lost device's sessions at the provider)")
}

func (c *cli) devices(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devices", flag.ContinueOnError)
	account := fs.String("account", "", "the account (default: the only one logged in)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	usage := errors.New("usage: bitmaskctl devices list [ADDRESS] | devices revoke NAME|ID [--account ADDRESS]")
	if len(pos) == 0 {
		return usage
	}
	switch {
	case pos[0] == "list" && len(pos) <= 2:
		addr := *account
		if len(pos) == 2 {
			addr = pos[1]
		}
		ds, err := c.api.Devices(ctx, addr)
		return c.show(ds, err, func() { c.printDevices(ds) })
	case pos[0] == "revoke" && len(pos) == 2:
		rv, err := c.api.RevokeDevice(ctx, controlapi.RevokeRequest{Address: *account, Device: pos[1]})
		return c.show(rv, err, func() {
			fmt.Fprintf(c.stdout, "revoked %s (%s) of %s: its sessions at the provider are ended.\n\n%s\n",
				rv.Device.Name, rv.Device.ID, rv.Address, rv.Advice)
		})
	}
	return usage
}

func (c *cli) printDevices(ds controlapi.DevicesResponse) {
	tw := tabwriter.NewWriter(c.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "NAME\tID\tLOGGED IN\tLAST SYNC\t\n")
	for _, d := range ds.Devices {
		last := "never"
		if !d.LastSync.IsZero() {
			last = d.LastSync.Local().Format(time.DateTime)
		}
		this := ""
		if d.Current {
			this = "(this device)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Name, d.ID, d.Created.Local().Format(time.DateTime), last, this)
	}
	tw.Flush()
}
