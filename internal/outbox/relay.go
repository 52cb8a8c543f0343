package outbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPRelay submits copies to the provider's submission service over
// STARTTLS (verified against the provider's pinned CA), authenticated
// with the session token.
type SMTPRelay struct {
	Addr  string // host:port of the provider's submission service
	TLS   *tls.Config
	Login string
	Token func() string
}

// Send submits one message.
func (r *SMTPRelay) Send(ctx context.Context, from string, to []string, msg []byte) error {
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Minute))
	}
	c, err := smtp.NewClientStartTLS(conn, r.TLS)
	if err != nil {
		conn.Close()
		return fmt.Errorf("relay: %w", err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", r.Login, r.Token())); err != nil {
		return err
	}
	if err := c.SendMail(from, to, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}
