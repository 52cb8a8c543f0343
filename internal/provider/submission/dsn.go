package submission

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// A delivery status notification (RFC 3464) tells the sender which
// recipients did not get a message and why: a multipart/report (RFC
// 6522) of a human-readable part, a message/delivery-status part with
// one block per recipient (Final-Recipient, Action: failed, Status, the
// remote server and its reply), and the original's header section
// (text/rfc822-headers; the body is in the sender's Sent folder). It is
// delivered through the MX's path into the sender's incoming queue,
// encrypted to the sender's key like any mail, with the null sender.

// sendDSN reports the recipients at failed (indexes into
// it.Recipients) to the item's sender.
func (s *Submission) sendDSN(ctx context.Context, it *storage.OutboundItem, failed []int, msg []byte, now time.Time) error {
	body := s.buildDSN(it, failed, msg, now)
	return s.local.DeliverLocal(ctx, mx.LocalMessage{
		From: "", Recipients: []string{it.From}, Data: body, ID: "dsn-" + it.ID,
	})
}

func (s *Submission) buildDSN(it *storage.OutboundItem, failed []int, msg []byte, now time.Time) []byte {
	host := printable(s.cfg.Hostname, 255)
	boundary := "dsn-" + smtpserver.NewID() + smtpserver.NewID()
	date := now.Format(time.RFC1123Z)
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...); b.WriteString("\r\n") }

	w("From: Mail Delivery System <MAILER-DAEMON@%s>", smtpserver.NormDomain(s.p.Domain()))
	w("To: <%s>", it.From)
	w("Subject: Undelivered Mail Returned to Sender")
	w("Date: %s", date)
	w("Message-ID: <%s.%s@%s>", boundary, it.ID, host)
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;")
	w("\tboundary=\"%s\"", boundary)
	w("")
	w("This is a delivery status notification in MIME format.")
	w("")

	w("--%s", boundary)
	w("Content-Type: text/plain; charset=us-ascii")
	w("Content-Transfer-Encoding: 7bit")
	w("")
	w("This is the mail system at %s.", host)
	w("")
	w("Your message of %s could not be delivered to the", it.Created.Format(time.RFC1123Z))
	w("following recipients. It was not delivered to them and will not be")
	w("retried.")
	w("")
	for _, i := range failed {
		r := it.Recipients[i]
		w("<%s>:", printable(r.Address, 320))
		w("    %s", explain(r))
		w("")
	}

	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	w("Reporting-MTA: dns; %s", host)
	w("Arrival-Date: %s", it.Created.Format(time.RFC1123Z))
	for _, i := range failed {
		r := it.Recipients[i]
		w("")
		w("Final-Recipient: rfc822; %s", printable(r.Address, 320))
		w("Action: failed")
		w("Status: %s", statusOf(r))
		if r.RemoteMTA != "" {
			w("Remote-MTA: dns; %s", printable(r.RemoteMTA, 255))
		}
		if r.Code != 0 {
			w("Diagnostic-Code: smtp; %d %s %s", r.Code, r.Status, printable(r.Diagnostic, 512))
		} else if r.Diagnostic != "" {
			w("Diagnostic-Code: X-leapd; %s", printable(r.Diagnostic, 512))
		}
		if !r.LastAttempt.IsZero() {
			w("Last-Attempt-Date: %s", r.LastAttempt.Format(time.RFC1123Z))
		}
	}
	w("")

	w("--%s", boundary)
	w("Content-Type: text/rfc822-headers")
	w("")
	h := headerSection(msg)
	h = bytes.ReplaceAll(bytes.ReplaceAll(h, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	b.Write(h)
	if len(h) > 0 && !bytes.HasSuffix(h, []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	w("")
	w("--%s--", boundary)
	return b.Bytes()
}

// statusOf is a failed recipient's status code, "5.0.0" when unknown.
func statusOf(r storage.OutboundRecipient) string {
	if isStatus(r.Status) {
		return r.Status
	}
	return "5.0.0"
}

// explain is one line on why r failed, for people.
func explain(r storage.OutboundRecipient) string {
	switch {
	case r.Code != 0:
		return fmt.Sprintf("%s said: %d %s %s", printable(r.RemoteMTA, 255), r.Code, r.Status, printable(r.Diagnostic, 512))
	case r.Diagnostic != "":
		return printable(r.Diagnostic, 512)
	default:
		return strings.TrimSpace("delivery failed " + r.Status)
	}
}
