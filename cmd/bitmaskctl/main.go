// Command bitmaskctl drives bitmaskd through its control API.
//
//	bitmaskctl [--data DIR] [--control ADDR] [--json] COMMAND ...
//
//	user create ADDRESS [--provider URL] [--fingerprint FP] [--invite CODE] [--password-file FILE]
//	user login ADDRESS [--provider URL] [--fingerprint FP] [--password-file FILE]
//	user logout ADDRESS
//	user passwd ADDRESS [--password-file OLD] [--new-password-file NEW]
//	status
//	keys list [ADDRESS]
//	keys export [ADDRESS] [--secret]
//	keys show ADDRESS, keys fetch ADDRESS, keys trust ADDRESS FINGERPRINT [--account ACCOUNT]
//	mail config [ADDRESS] [--format text|thunderbird|apple]
//	cert export [--out FILE]
//	autostart enable|disable|status [--bitmaskd PATH]
//
// Passwords are read from the terminal without echo, or from a file
// (first line) for scripts.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	if err := c.run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bitmaskctl:", err)
		os.Exit(1)
	}
}

type cli struct {
	stdin          io.Reader
	stdinLines     *bufio.Reader
	stdout, stderr io.Writer
	data, control  string
	json           bool
	api            *controlapi.Client
}

const usage = `usage: bitmaskctl [--data DIR] [--control ADDR] [--json] COMMAND
  user create ADDRESS [--provider URL] [--fingerprint FP] [--invite CODE] [--password-file FILE]
  user login ADDRESS [--provider URL] [--fingerprint FP] [--password-file FILE]
  user logout ADDRESS
  user passwd ADDRESS [--password-file OLD] [--new-password-file NEW]
  status
  keys list [ADDRESS]
  keys export [ADDRESS] [--secret]
  keys show ADDRESS | keys fetch ADDRESS | keys trust ADDRESS FINGERPRINT   [--account ACCOUNT]
  mail config [ADDRESS] [--format text|thunderbird|apple]`

// fullUsage is usage with the extra commands' lines.
func fullUsage() string {
	if len(extraUsage) == 0 {
		return usage
	}
	return usage + "\n" + strings.Join(extraUsage, "\n")
}

// parse parses flags anywhere among the arguments and returns the
// positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, usage)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// extraCommands are commands that parse their own flags, each in its own
// file (registered from init): the first word of the command line after
// the global flags names one, or the first two words ("user delete").
// extraUsage lines are added to the usage.
var (
	extraCommands = map[string]func(c *cli, ctx context.Context, args []string) error{}
	extraUsage    []string
)

// splitGlobal separates the global flags before the command word from
// the rest: the command word and what follows it.
func splitGlobal(args []string) (global, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return args[:i], args[i:]
		}
		name := strings.TrimLeft(a, "-")
		if (name == "data" || name == "control") && i+1 < len(args) {
			i++
		}
	}
	return args, nil
}

func (c *cli) run(ctx context.Context, args []string) error {
	if global, rest := splitGlobal(args); len(rest) > 0 {
		f, n := extraCommands[rest[0]], 1
		if len(rest) > 1 && extraCommands[rest[0]+" "+rest[1]] != nil {
			f, n = extraCommands[rest[0]+" "+rest[1]], 2
		}
		if f != nil {
			gfs := flag.NewFlagSet("bitmaskctl", flag.ContinueOnError)
			gfs.SetOutput(io.Discard)
			gfs.StringVar(&c.data, "data", controlapi.DefaultDataDir(), "")
			gfs.StringVar(&c.control, "control", controlapi.DefaultAddr, "")
			gfs.BoolVar(&c.json, "json", false, "")
			if err := gfs.Parse(global); err != nil {
				return fmt.Errorf("%w\n%s", err, fullUsage())
			}
			c.api = controlapi.NewLocalClient(c.control, c.data)
			return f(c, ctx, rest[n:])
		}
	}
	fs := flag.NewFlagSet("bitmaskctl", flag.ContinueOnError)
	fs.StringVar(&c.data, "data", controlapi.DefaultDataDir(), "bitmaskd's data directory (for the control token)")
	fs.StringVar(&c.control, "control", controlapi.DefaultAddr, "control API address")
	fs.BoolVar(&c.json, "json", false, "JSON output")
	provider := fs.String("provider", "", "provider domain or URL (default: the address's domain)")
	fingerprint := fs.String("fingerprint", "", "the provider CA's SHA-256 fingerprint, if you were given it")
	invite := fs.String("invite", "", "invite code")
	pwFile := fs.String("password-file", "", "read the password from this file")
	newPwFile := fs.String("new-password-file", "", "read the new password from this file")
	secret := fs.Bool("secret", false, "export the secret key too")
	mailFormat := fs.String("format", "text", "mail config format: text, thunderbird, apple or json")
	account := fs.String("account", "", "the account, when bitmaskd has several logged in")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New(fullUsage())
	}
	c.api = controlapi.NewLocalClient(c.control, c.data)
	arg := func(i int) string {
		if i < len(pos) {
			return pos[i]
		}
		return ""
	}
	ref := controlapi.ProviderRef{URL: *provider, Fingerprint: *fingerprint}
	switch cmd := arg(0) + " " + arg(1); {
	case cmd == "user create":
		addr, err := need(arg(2), "ADDRESS")
		if err != nil {
			return err
		}
		pw, err := c.newPassword(*pwFile, "Password for "+addr)
		if err != nil {
			return err
		}
		st, err := c.api.CreateUser(ctx, controlapi.CreateRequest{Address: addr, Password: pw, ProviderRef: ref, Invite: *invite})
		return c.show(st, err, func() {
			fmt.Fprintf(c.stdout, "created %s; key %s\n", st.Address, st.Key)
			if st.RecoveryCode != "" {
				printRecoveryCode(c.stdout, st.Address, st.RecoveryCode) // recovery.go
			} else {
				fmt.Fprintf(c.stdout, "no recovery code was made; make one with: bitmaskctl user recovery-code %s\n", st.Address)
			}
		})
	case cmd == "user login":
		addr, err := need(arg(2), "ADDRESS")
		if err != nil {
			return err
		}
		pw, err := c.password(*pwFile, "Password for "+addr+": ")
		if err != nil {
			return err
		}
		stopProgress := c.progress(ctx, addr)
		st, err := c.api.Login(ctx, controlapi.LoginRequest{Address: addr, Password: pw, ProviderRef: ref})
		stopProgress()
		return c.show(st, err, func() {
			mode := "online"
			if !st.Online {
				mode = "offline (provider unreachable; changes sync when it is back)"
			}
			fmt.Fprintf(c.stdout, "logged in %s, %s\n", st.Address, mode)
		})
	case cmd == "user logout":
		addr, err := need(arg(2), "ADDRESS")
		if err != nil {
			return err
		}
		err = c.api.Logout(ctx, addr)
		return c.show(struct{}{}, err, func() { fmt.Fprintf(c.stdout, "logged out %s\n", addr) })
	case cmd == "user passwd":
		addr, err := need(arg(2), "ADDRESS")
		if err != nil {
			return err
		}
		old, err := c.password(*pwFile, "Current password: ")
		if err != nil {
			return err
		}
		nw, err := c.newPassword(*newPwFile, "New password")
		if err != nil {
			return err
		}
		err = c.api.ChangePassword(ctx, controlapi.PasswdRequest{Address: addr, Old: old, New: nw})
		return c.show(struct{}{}, err, func() { fmt.Fprintln(c.stdout, "password changed") })
	case arg(0) == "status":
		st, err := c.api.Status(ctx)
		return c.show(st, err, func() { c.printStatus(st) })
	case cmd == "keys list":
		ks, err := c.api.Keys(ctx, arg(2))
		return c.show(ks, err, func() {
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tFINGERPRINT\tCREATED\tEXPIRES\tVALIDATION\tPRIVATE")
			for _, k := range ks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", k.Address, k.Fingerprint, day(k.Created), day(k.Expires), k.Level, k.Private)
			}
			tw.Flush()
		})
	case cmd == "mail config":
		format := *mailFormat
		if c.json {
			format = "json"
		}
		if format == controlapi.FormatJSON {
			mc, err := c.api.MailConfig(ctx, arg(2))
			return c.show(mc, err, func() {})
		}
		raw, err := c.api.MailConfigFile(ctx, arg(2), format)
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(raw)
		return err
	case cmd == "keys show", cmd == "keys fetch", cmd == "keys trust":
		contact, err := need(arg(2), "ADDRESS")
		if err != nil {
			return err
		}
		var k controlapi.ContactKey
		switch arg(1) {
		case "show":
			k, err = c.api.ContactKey(ctx, *account, contact)
		case "fetch":
			k, err = c.api.FetchKey(ctx, controlapi.ContactRequest{Address: *account, Contact: contact})
		case "trust":
			var fpr string
			if fpr, err = need(strings.Join(pos[min(3, len(pos)):], ""), "FINGERPRINT"); err != nil {
				return err
			}
			k, err = c.api.TrustKey(ctx, controlapi.ContactRequest{Address: *account, Contact: contact, Fingerprint: fpr})
		}
		return c.show(k, err, func() {
			fmt.Fprintf(c.stdout, "%s\n  fingerprint %s\n  validation  %s (from %s)\n  created     %s, expires %s\n",
				k.Address, k.Fingerprint, k.Level, k.Source, day(k.Created), day(k.Expires))
		})
	case cmd == "keys export":
		ex, err := c.api.Export(ctx, arg(2), *secret)
		return c.show(ex, err, func() { fmt.Fprint(c.stdout, ex.Armored) })
	default:
		return fmt.Errorf("unknown command %q\n%s", strings.TrimSpace(cmd), fullUsage())
	}
}

func need(v, what string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("missing %s\n%s", what, usage)
	}
	return v, nil
}

func day(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("2006-01-02")
}

func (c *cli) show(v any, err error, human func()) error {
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human()
	return nil
}

func (c *cli) printStatus(st controlapi.StatusResponse) {
	if len(st.Accounts) == 0 {
		fmt.Fprintln(c.stdout, "no account logged in")
	}
	defer func() {
		if st.TLSFingerprint != "" {
			fmt.Fprintf(c.stdout, "local certificate (IMAP, SMTP): SHA-256 %s\n", controlapi.ColonFingerprint(st.TLSFingerprint))
		}
	}()
	for _, a := range st.Accounts {
		state := "online"
		if !a.Online || !a.Sync.Online {
			state = "offline"
		}
		fmt.Fprintf(c.stdout, "%s  %s  provider %s\n", a.Address, state, a.Provider)
		sync := "idle"
		if a.Sync.Syncing {
			sync = fmt.Sprintf("syncing (%d documents so far)", a.Sync.Pulled)
			if a.Sync.Head > 0 {
				sync = fmt.Sprintf("syncing, %d%% (%d documents so far)", min(100, a.Sync.LastSeq*100/a.Sync.Head), a.Sync.Pulled)
			}
		}
		if a.State == "logging in" {
			state = "logging in, first sync"
		}
		last := "never"
		if !a.Sync.LastSync.IsZero() {
			last = a.Sync.LastSync.Local().Format(time.DateTime)
		}
		fmt.Fprintf(c.stdout, "  sync: %s, last %s, sequence %d, %d pending\n", sync, last, a.Sync.LastSeq, a.Sync.Pending)
		if a.Sync.Rejected > 0 {
			fmt.Fprintf(c.stdout, "  warning: %d documents from the provider were refused (failed authentication or replayed)\n", a.Sync.Rejected)
		}
		if a.Sync.LastError != "" {
			fmt.Fprintf(c.stdout, "  last error: %s\n", a.Sync.LastError)
		}
		if a.Key != "" {
			fmt.Fprintf(c.stdout, "  key: %s\n", a.Key)
		}
	}
}

// progress shows a progress bar while a login runs (on a terminal
// only): deriving keys, then the first sync, from the daemon's status.
func (c *cli) progress(ctx context.Context, addr string) func() {
	f, ok := c.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || c.json {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		frames := `|/-\`
		start := time.Now()
		for i := 0; ; i++ {
			select {
			case <-done:
				fmt.Fprintf(f, "\r\033[K")
				return
			case <-ctx.Done():
				return
			case <-time.After(150 * time.Millisecond):
			}
			line := fmt.Sprintf("%c logging in %s: deriving keys (%ds)", frames[i%4], addr, int(time.Since(start).Seconds()))
			if i%3 == 0 {
				if st, err := c.api.Status(ctx); err == nil {
					line = syncLine(st, addr, line)
				}
			}
			fmt.Fprintf(f, "\r\033[K%s", line)
		}
	}()
	return func() { close(done); <-stopped }
}

// syncLine is the progress bar of addr's first sync, from the status,
// or else line.
func syncLine(st controlapi.StatusResponse, addr, line string) string {
	for _, a := range st.Accounts {
		if a.Address == strings.ToLower(addr) && a.State == "logging in" && a.Sync.Head > 0 {
			frac := min(float64(a.Sync.LastSeq)/float64(a.Sync.Head), 1)
			bar := strings.Repeat("#", int(frac*30)) + strings.Repeat(".", 30-int(frac*30))
			line = fmt.Sprintf("  syncing %s [%s] %3.0f%% (%d documents)", addr, bar, frac*100, a.Sync.Pulled)
		}
	}
	return line
}

func (c *cli) password(file, prompt string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimRight(line, "\r"), nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		// Not a terminal: read one line (scripts piping a password).
		if c.stdinLines == nil {
			c.stdinLines = bufio.NewReader(c.stdin)
		}
		line, err := c.stdinLines.ReadString('\n')
		if err != nil && line == "" {
			return "", errors.New("no password given (use a terminal or --password-file)")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(c.stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	return string(b), err
}

func (c *cli) newPassword(file, what string) (string, error) {
	pw, err := c.password(file, what+": ")
	if err != nil || file != "" {
		return pw, err
	}
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		again, err := c.password("", "Repeat: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the passwords do not match")
		}
	}
	return pw, nil
}
