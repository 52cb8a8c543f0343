package webui

// The recovery code made at signup (docs/local-page.md): the signup
// takes it from the backend and keeps it in the page session; the next
// page shows it once, in a box above everything else, with a copy
// button.

// recoveryCodes is what a backend that makes recovery codes at signup
// also does: the code made when address signed up, once ("" if none).
type recoveryCodes interface {
	TakeSignupRecoveryCode(address string) string
}

// signupRecoveryCode is the code made by the signup of address, if the
// backend makes them.
func (s *Server) signupRecoveryCode(address string) string {
	if rc, ok := s.b.(recoveryCodes); ok {
		return rc.TakeSignupRecoveryCode(address)
	}
	return ""
}

// setRecoveryCode keeps code for the session's next page.
func (s *Server) setRecoveryCode(se session, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.sessions[keyOf(se.secret)]; ok {
		p.recoveryCode = code
	}
}

// takeRecoveryCode is the session's kept recovery code, once.
func (s *Server) takeRecoveryCode(se session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.sessions[keyOf(se.secret)]
	if !ok {
		return ""
	}
	c := p.recoveryCode
	p.recoveryCode = ""
	return c
}
