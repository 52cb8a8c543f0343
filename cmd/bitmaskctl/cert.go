package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// bitmaskctl cert export [--out FILE]: the certificate bitmaskd's IMAP
// and SMTP offer (no key), to trust in a mail client or a certificate
// store (docs/mail-clients.md).

func init() {
	extraCommands["cert"] = (*cli).cert
	extraUsage = append(extraUsage, "  cert export [--out FILE]     (the local IMAP/SMTP certificate, PEM, to trust in a mail client)")
}

func (c *cli) cert(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cert", flag.ContinueOnError)
	out := fs.String("out", "", "write the certificate to FILE instead of standard output")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "export" {
		return errors.New("usage: bitmaskctl cert export [--out FILE]")
	}
	cr, err := c.api.Cert(ctx)
	if err != nil {
		return err
	}
	if *out == "" {
		if c.json {
			return c.show(cr, nil, nil)
		}
		_, err := fmt.Fprint(c.stdout, cr.PEM)
		return err
	}
	if err := os.WriteFile(*out, []byte(cr.PEM), 0o644); err != nil {
		return err
	}
	return c.show(cr, nil, func() {
		fmt.Fprintf(c.stdout, "wrote %s\nSHA-256 %s\n", *out, controlapi.ColonFingerprint(cr.SHA256))
	})
}
