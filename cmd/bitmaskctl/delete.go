package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// bitmaskctl user delete ADDRESS [--password-file FILE] [--yes ADDRESS]:
// says what will be lost, asks for the password and for the address
// typed again, then deletes the account at the provider and here.

func init() {
	extraCommands["user delete"] = (*cli).userDelete
	extraUsage = append(extraUsage, "  user delete ADDRESS [--password-file FILE] [--confirm ADDRESS]   (delete the account for good, at the provider and here)")
}

func (c *cli) userDelete(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("user delete", flag.ContinueOnError)
	pwFile := fs.String("password-file", "", "read the password from this file")
	confirm := fs.String("confirm", "", "the address again, to confirm without being asked (scripts)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: bitmaskctl user delete ADDRESS [--password-file FILE] [--confirm ADDRESS]")
	}
	addr := strings.ToLower(strings.TrimSpace(pos[0]))
	sum, err := c.api.DeletionSummary(ctx, addr)
	if err != nil {
		return err
	}
	if !c.json {
		fmt.Fprintf(c.stderr, "Deleting %s removes, at the provider and on this device, for good:\n"+
			"  %d mailboxes with %d messages,\n"+
			"  %d of your OpenPGP keys (the public key is removed from the provider's key directory),\n"+
			"  the mail waiting to be fetched or sent, and the sessions of %d devices (they are told).\n"+
			"Mail sent to %s is refused from then on, and nobody can sign up with that address again.\n"+
			"This cannot be undone. Export what you want to keep first (bitmaskctl mail export, keys export --secret).\n",
			addr, sum.Mailboxes, sum.Messages, sum.Keys, sum.Devices, addr)
	}
	pw, err := c.password(*pwFile, "Password for "+addr+": ")
	if err != nil {
		return err
	}
	typed := *confirm
	if typed == "" {
		fmt.Fprintf(c.stderr, "Type the address again to delete it: ")
		if typed, err = c.line(); err != nil {
			return err
		}
	}
	if strings.ToLower(strings.TrimSpace(typed)) != addr {
		return errors.New("the address typed does not match; nothing was deleted")
	}
	err = c.api.DeleteAccount(ctx, controlapi.DeleteRequest{Address: addr, Password: pw, Confirm: typed})
	return c.show(struct {
		Deleted string `json:"deleted"`
	}{addr}, err, func() {
		fmt.Fprintf(c.stdout, "%s is deleted: at the provider, and its data on this device.\n", addr)
	})
}

// line reads one line of input (echoed on a terminal).
func (c *cli) line() (string, error) {
	if c.stdinLines == nil {
		c.stdinLines = bufio.NewReader(c.stdin)
	}
	s, err := c.stdinLines.ReadString('\n')
	if err != nil && s == "" {
		return "", errors.New("no confirmation given (type the address, or use --confirm ADDRESS)")
	}
	return strings.TrimRight(s, "\r\n"), nil
}
