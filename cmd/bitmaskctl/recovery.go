package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// The recovery code (docs/control-api.md, "Recovery code"):
//
//	user recovery-code ADDRESS [--password-file FILE]
//	user recover ADDRESS [--code-file FILE] [--new-password-file FILE] [--provider URL] [--fingerprint FP]

func init() {
	extraCommands["user recovery-code"] = (*cli).recoveryCode
	extraCommands["user recover"] = (*cli).recover
	extraUsage = append(extraUsage,
		"  user recovery-code ADDRESS [--password-file FILE]   (a new recovery code; the old one stops working)",
		"  user recover ADDRESS [--code-file FILE] [--new-password-file FILE] [--provider URL] [--fingerprint FP]")
}

// printRecoveryCode shows a recovery code with what to do with it.
func printRecoveryCode(w io.Writer, address, code string) {
	fmt.Fprintf(w, "\nRecovery code for %s:\n\n    %s\n\n", address, code)
	fmt.Fprintln(w, "Write it down and keep it somewhere safe, away from this computer. It is shown")
	fmt.Fprintln(w, "only now. If you forget your password, it is the only way back into your mail:")
	fmt.Fprintf(w, "    bitmaskctl user recover %s\n", address)
}

func (c *cli) recoveryCode(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("user recovery-code", flag.ContinueOnError)
	pwFile := fs.String("password-file", "", "read the password from this file")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: bitmaskctl user recovery-code ADDRESS [--password-file FILE]")
	}
	pw, err := c.password(*pwFile, "Password for "+pos[0]+": ")
	if err != nil {
		return err
	}
	res, err := c.api.NewRecoveryCode(ctx, controlapi.RecoveryCodeRequest{Address: pos[0], Password: pw})
	return c.show(res, err, func() {
		printRecoveryCode(c.stdout, res.Address, res.RecoveryCode)
		fmt.Fprintln(c.stdout, "The earlier recovery code no longer works.")
	})
}

func (c *cli) recover(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("user recover", flag.ContinueOnError)
	codeFile := fs.String("code-file", "", "read the recovery code from this file")
	newPwFile := fs.String("new-password-file", "", "read the new password from this file")
	provider := fs.String("provider", "", "provider domain or URL (default: the address's domain)")
	fingerprint := fs.String("fingerprint", "", "the provider CA's SHA-256 fingerprint, if you were given it")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: bitmaskctl user recover ADDRESS [--code-file FILE] [--new-password-file FILE] [--provider URL] [--fingerprint FP]")
	}
	code, err := c.password(*codeFile, "Recovery code for "+pos[0]+": ")
	if err != nil {
		return err
	}
	// A typo is caught here, before the new password is asked for and
	// before anything is sent.
	if _, err := seal.ParseRecoveryCode(code); err != nil {
		return fmt.Errorf("the recovery code: %w", err)
	}
	nw, err := c.newPassword(*newPwFile, "New password")
	if err != nil {
		return err
	}
	st, err := c.api.Recover(ctx, controlapi.RecoverRequest{
		Address: pos[0], RecoveryCode: code, NewPassword: nw,
		ProviderRef: controlapi.ProviderRef{URL: *provider, Fingerprint: *fingerprint},
	})
	return c.show(st, err, func() {
		fmt.Fprintf(c.stdout, "new password set for %s; logged in\n", st.Address)
		fmt.Fprintln(c.stdout, "Every other device was logged out: log in there with the new password.")
		fmt.Fprintf(c.stdout, "Your recovery code still works. If anyone else may have seen it, make a new one:\n    bitmaskctl user recovery-code %s\n", st.Address)
	})
}
