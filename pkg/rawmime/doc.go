// Package rawmime reads Internet messages and MIME entities as the bytes
// they are, without ever rewriting them: every piece it finds is a slice
// of the input (or an offset into it), so a caller can hand out a part
// exactly as transmitted (IMAP BODY[1.2]), verify a signature over it
// (RFC 3156 §5), or remove one header field and keep every other byte.
//
// # The format
//
// A message (RFC 5322) or MIME entity (RFC 2045 §2.4) is a header
// section, an empty line, and a body:
//
//	From: Alice <alice@example.org>\r\n        <- a header field
//	Subject: a long subject that is\r\n       <- a field folded over
//	 continued on this line\r\n               <-   two lines
//	Content-Type: multipart/mixed; boundary=b\r\n
//	\r\n                                      <- the empty line
//	body...                                   <- the body
//
// Lines end in CRLF on the wire; mail stored on disk or written by hand
// often has LF alone, so a line here is everything up to and including an
// LF (NextLine), and an empty line is "\r\n" or "\n" (IsBlankLine). The
// header section ends at the first empty line (SplitHeader); a message
// without one is all header.
//
// A header field (RFC 5322 §2.2) is a name, a colon and a value. A line
// that starts with a space or a tab continues the field before it
// ("folding", §2.2.3); unfolding removes the line breaks and keeps the
// white space (Field.Value). Fields splits a header section into fields,
// each with all its lines and their line breaks, so writing the Raw of
// every field back gives the header section byte for byte. The name is
// printable ASCII without the colon; obsolete syntax allows blanks before
// the colon ("Subject : x", §4.5.3). FieldName reads a name that strictly;
// Field.LooseName takes whatever stands before the first colon, as many
// mail clients do.
//
// # Multipart bodies
//
// A multipart body (RFC 2046 §5.1.1) is a preamble, body parts each
// introduced by a delimiter line, a close-delimiter line and an
// epilogue:
//
//	preamble, ignored\r\n
//	--b\r\n                  <- delimiter: "--" boundary, white space
//	Content-Type: text/plain\r\n
//	\r\n
//	first part\r\n           <- this CRLF belongs to the next delimiter
//	--b\r\n
//	\r\n                     <- a part without header fields
//	second part\r\n
//	--b--\r\n                <- close delimiter: "--" boundary "--"
//	epilogue, ignored
//
// Each part is itself a MIME entity. The line break before a delimiter
// belongs to the delimiter, not to the part before it, so the first part
// above is "Content-Type: text/plain\r\n\r\nfirst part". A line that
// only starts with "--" boundary and goes on with other characters is
// not a delimiter. SplitMultipart finds the parts as offsets; it accepts
// a body whose close delimiter is missing (the last part then runs to
// the end), and a delimiter's trailing white space ("transport padding")
// by one of two rules (Padding), as the callers have always read it.
//
// # Messages in messages
//
// A message/rfc822 entity (RFC 2046 §5.2.1) holds a whole message as its
// body, with its own header section and, maybe, its own multipart body.
// The parts of a multipart/digest (§5.1.5) are message/rfc822 unless
// their header says otherwise, where other parts are text/plain.
//
// # The tree
//
// Parse builds the whole tree: an entity; for a multipart entity its
// parts, each again an entity; for a message/rfc822 entity the message
// it holds, an entity over its body. The ranges of the input together
// cover it exactly. Limits on depth and on the number of entities keep
// hostile nesting and fan-out cheap: past them an entity is a leaf, or
// left out.
//
// # What this package does not do
//
// It does not interpret values: media types, parameters, encoded words
// and addresses are the caller's, as each caller has its own rules for
// malformed ones. So Parse asks the caller what an entity's body holds
// (Options.Content); DefaultContent answers by the RFCs. It decodes
// base64 (DecodeBase64), the one transfer encoding its callers decode
// alike.
package rawmime
