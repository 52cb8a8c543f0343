// Package httpapi is leapd's HTTPS API: provider.json and the CA for
// bootstrap, SRP accounts and sessions, the per-user encrypted document
// store with its changes feed and notification stream, immutable blobs and
// the nicknym key directory. docs/provider-api.md is its reference.
package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// Config is what a provider operator sets.
type Config struct {
	Domain     string // mail domain, e.g. example.org
	Name       string // display name
	APIURL     string // public base URL of this listener, e.g. https://api.example.org:4430
	Submission string // host:port of the submission service, announced in provider.json
	Enrollment string // open, invite or closed
	// StoreURL and BlobsURL choose the storage backends
	// (storage/open.go): "" is the bbolt file in the data directory and
	// blobs kept in it.
	StoreURL, BlobsURL string
	// MTASTS is the MTA-STS policy served at mta-sts.DOMAIN
	// (mtasts.go); its zero value is mode enforce with the domain as MX.
	MTASTS MTASTSPolicy
	// WrapTLS, if set, changes the TLS config the API serves (leapd's
	// ACME certificates for its public names: provider/acme.go).
	WrapTLS func(*tls.Config) *tls.Config
	// Quota bounds what each user keeps (quota.go); the zero value is
	// 10 GiB per user.
	Quota Quota

	SessionTTL time.Duration // default 24h
	// LoginPerClient is the login, recovery and signup attempts allowed
	// per client address and minute (each counted apart). Logins are not
	// limited per account: LoginPerAccount is the ceiling of failed
	// proofs per account and hour past which every failing client waits
	// from a minute on (enum.go). Zero means the defaults (60 and 100);
	// negative disables.
	LoginPerAccount int
	LoginPerClient  int

	Logger *slog.Logger
	// FakeSecret keys the answers given for unknown logins (32 bytes).
	// Kept across restarts (Open keeps it in the data directory), an
	// unknown login's salts stay the same, like a real user's; empty
	// means a random one for this process.
	FakeSecret []byte
}

// Size limits of request bodies.
const (
	maxJSONBody  = 1 << 20  // signup, login, keys
	maxPushBody  = 64 << 20 // a batch of documents
	maxDocSize   = 8 << 20  // one document's ciphertext
	maxPushDocs  = 5000
	maxBlobBody  = 96 << 20 // a 64 MiB message, encrypted, with room
	maxPageLimit = 5000
	handshakeTTL = 2 * time.Minute
)

var (
	loginRe = regexp.MustCompile(`^[a-z0-9._-]{2,64}$`)
	docIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	blobRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidLogin reports whether login is an acceptable username.
func ValidLogin(login string) bool { return loginRe.MatchString(login) }

// Server serves the provider API.
type Server struct {
	cfg     Config
	store   storage.Store
	tls     *TLSFiles
	log     *slog.Logger
	notify  *notifier
	fakeKey [32]byte // makes answers for unknown logins look like real ones

	perClient *limiter

	live liveSessions // requests in flight per session (session.go)
}

// New makes a Server over store.
func New(cfg Config, store storage.Store, tlsFiles *TLSFiles) (*Server, error) {
	if cfg.Domain == "" || cfg.APIURL == "" {
		return nil, errors.New("provider: domain and API URL are required")
	}
	cfg.Domain = strings.ToLower(cfg.Domain)
	switch cfg.Enrollment {
	case "":
		cfg.Enrollment = providerapi.EnrollOpen
	case providerapi.EnrollOpen, providerapi.EnrollInvite, providerapi.EnrollClosed:
	default:
		return nil, fmt.Errorf("provider: enrollment policy %q is not open, invite or closed", cfg.Enrollment)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Domain
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 24 * time.Hour
	}
	if cfg.LoginPerClient == 0 {
		cfg.LoginPerClient = 60
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Quota = cfg.Quota.withDefaults()
	s := &Server{
		cfg:       cfg,
		store:     store,
		tls:       tlsFiles,
		log:       cfg.Logger,
		notify:    newNotifier(),
		perClient: newLimiter(cfg.LoginPerClient, time.Minute),
	}
	if len(cfg.FakeSecret) == len(s.fakeKey) {
		copy(s.fakeKey[:], cfg.FakeSecret)
	} else if _, err := rand.Read(s.fakeKey[:]); err != nil {
		return nil, fmt.Errorf("making the key that disguises unknown logins: %w", err)
	}
	return s, nil
}

// Address is the mail address of login at this provider.
func (s *Server) Address(login string) string { return login + "@" + s.cfg.Domain }

// ProviderJSON is what /provider.json serves.
func (s *Server) ProviderJSON() providerapi.ProviderJSON {
	return providerapi.ProviderJSON{
		Domain:            s.cfg.Domain,
		Name:              map[string]string{"en": s.cfg.Name},
		Languages:         []string{"en"},
		DefaultLanguage:   "en",
		APIURI:            s.cfg.APIURL,
		APIVersion:        providerapi.Version,
		CACertURI:         strings.TrimSuffix(s.cfg.APIURL, "/") + "/ca.crt",
		CACertFingerprint: Fingerprint(s.tls.CACert.Raw),
		Services:          []string{"mx"},
		Submission:        s.cfg.Submission,
		EnrollmentPolicy:  s.cfg.Enrollment,
	}
}

// TLSConfig serves the server certificate with its CA in the chain, so a
// client that pinned the CA can verify on first contact.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.tls.ServerCert},
		MinVersion:   tls.VersionTLS12,
	}
}

// Serve serves HTTPS on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go s.janitor(ctx)
	go s.wakeups(ctx) // handshake.go
	errc := make(chan error, 1)
	tc := s.TLSConfig()
	if s.cfg.WrapTLS != nil {
		tc = s.cfg.WrapTLS(tc)
	}
	go func() { errc <- hs.Serve(tls.NewListener(ln, tc)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTPS: %w", err)
	case <-ctx.Done():
		// Requests were cancelled with ctx; give their connections a
		// moment to close (HTTP/2 ones linger), then close the rest.
		sctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if hs.Shutdown(sctx) != nil {
			_ = hs.Close()
		}
		return nil
	}
}

func (s *Server) janitor(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := s.store.ExpireSessions(ctx, now); err != nil {
				s.log.Warn("expire sessions", "err", err)
			}
		}
	}
}

// Handler is the API's routing.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	v := "/" + providerapi.Version
	mux.HandleFunc("GET /provider.json", s.handleProviderJSON)
	mux.HandleFunc("GET /ca.crt", s.handleCA)
	mux.HandleFunc("POST "+v+"/users", s.handleSignup)
	mux.HandleFunc("POST "+v+"/sessions", s.handleLoginStart)
	mux.HandleFunc("POST "+v+"/sessions/{handshake}", s.handleLoginFinish)
	mux.HandleFunc("DELETE "+v+"/sessions/current", s.auth(s.handleLogout))
	mux.HandleFunc("POST "+v+"/sessions/current/renew", s.auth(s.handleRenew))
	mux.HandleFunc("PUT "+v+"/users/self", s.auth(s.handlePasswd))
	mux.HandleFunc("GET "+v+"/users/self/secret", s.auth(s.handleSecret))
	mux.HandleFunc("POST "+v+"/docs", s.auth(s.handlePush))
	mux.HandleFunc("GET "+v+"/docs/changes", s.auth(s.handleChanges))
	mux.HandleFunc("GET "+v+"/docs/{id}", s.auth(s.handleGetDoc))
	mux.HandleFunc("PUT "+v+"/blobs/{id}", s.auth(s.handlePutBlob))
	mux.HandleFunc("GET "+v+"/blobs/{id}", s.auth(s.handleGetBlob))
	mux.HandleFunc("GET "+v+"/events", s.auth(s.handleEvents))
	mux.HandleFunc("GET "+v+"/incoming", s.auth(s.handleListIncoming))
	mux.HandleFunc("GET "+v+"/incoming/{id}", s.auth(s.handleGetIncoming))
	mux.HandleFunc("DELETE "+v+"/incoming/{id}", s.auth(s.handleDeleteIncoming))
	mux.HandleFunc("PUT "+v+"/keys", s.auth(s.handlePutKey))
	mux.HandleFunc("GET "+v+"/keys", s.handleGetKey)
	mux.HandleFunc("GET "+autoconfigPath, s.handleAutoconfig)
	mux.HandleFunc("GET "+wellKnownAutoconfig, s.handleAutoconfig)
	for _, add := range extraRoutes {
		add(s, mux, v)
	}
	return mux
}

// extraRoutes add the routes of features that live in their own files;
// each file appends to it from init. v is "/" + the API version.
var extraRoutes []func(s *Server, mux *http.ServeMux, v string)

// --- helpers

type authed struct {
	login     string
	tokenHash []byte
	session   *storage.Session
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, providerapi.Error{Error: msg, Code: code})
}

// readJSON decodes exactly one JSON value of at most limit bytes.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErr(w, http.StatusRequestEntityTooLarge, providerapi.CodeTooLarge, fmt.Sprintf("request body larger than %d bytes", limit))
			return false
		}
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "malformed JSON: "+err.Error())
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "malformed JSON: trailing data after the value")
		return false
	}
	return true
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func hashToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

func (s *Server) auth(h func(http.ResponseWriter, *http.Request, authed)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" || len(tok) > 256 {
			writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "missing bearer token")
			return
		}
		th := hashToken(tok)
		// Tracked before the lookup, so a session ended after it
		// still cancels this request (session.go).
		ctx, done := s.live.track(r.Context(), th)
		defer done()
		se, err := s.store.Session(ctx, th)
		if err != nil || time.Now().After(se.Expires) {
			s.unauthorized(w, r, th)
			return
		}
		s.seen(ctx, r, se)
		h(w, r.WithContext(ctx), authed{login: se.Login, tokenHash: th, session: se})
	}
}

func (s *Server) internal(w http.ResponseWriter, what string, err error) {
	s.log.Error("provider: "+what, "err", err)
	writeErr(w, http.StatusInternalServerError, providerapi.CodeInternal, "internal error")
}

// --- bootstrap

func (s *Server) handleProviderJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.ProviderJSON())
}

func (s *Server) handleCA(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(s.tls.CACertPEM)
}

// --- accounts

func validCredentials(salt, verifier []byte, kdf seal.KDFParams, wrapped []byte) error {
	switch {
	case len(salt) < 16 || len(salt) > 64:
		return errors.New("srp_salt must be 16 to 64 bytes")
	case len(verifier) == 0 || len(verifier) > 512:
		return errors.New("srp_verifier must be 1 to 512 bytes")
	case len(wrapped) < 32 || len(wrapped) > 256:
		return errors.New("wrapped_secret must be 32 to 256 bytes")
	}
	if err := kdf.Validate(); err != nil {
		return fmt.Errorf("kdf: %w", err)
	}
	return nil
}

func (s *Server) handleSignup(w http.ResponseWriter, r *http.Request) {
	var req providerapi.SignupRequest
	if !readJSON(w, r, maxJSONBody, &req) {
		return
	}
	if !ValidLogin(req.Login) {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "login must be 2 to 64 of a-z, 0-9, '-', '_', '.'")
		return
	}
	if err := validCredentials(req.SRPSalt, req.SRPVerifier, req.KDF, req.WrappedSecret); err != nil {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, err.Error())
		return
	}
	if !validDevice(w, req.Device) {
		return
	}
	invite := ""
	switch s.cfg.Enrollment {
	case providerapi.EnrollClosed:
		writeErr(w, http.StatusForbidden, providerapi.CodeEnrollment, "this provider does not accept signups")
		return
	case providerapi.EnrollInvite:
		if req.InviteCode == "" {
			writeErr(w, http.StatusForbidden, providerapi.CodeEnrollment, "an invite code is required")
			return
		}
		invite = req.InviteCode
	}
	if !s.perClient.allow("signup " + clientKey(r)) {
		writeErr(w, http.StatusTooManyRequests, providerapi.CodeRateLimited, "too many attempts, try again later")
		return
	}
	u := &storage.User{
		Login: req.Login, SRPSalt: req.SRPSalt, SRPVerifier: req.SRPVerifier,
		KDF: req.KDF, WrappedSecret: req.WrappedSecret, Created: time.Now().UTC(),
	}
	switch err := s.store.CreateUser(r.Context(), u, invite); {
	case errors.Is(err, storage.ErrExists):
		writeErr(w, http.StatusConflict, providerapi.CodeExists, "that login is taken")
		return
	case errors.Is(err, storage.ErrInviteInvalid):
		writeErr(w, http.StatusForbidden, providerapi.CodeEnrollment, "invite code invalid or already used")
		return
	case err != nil:
		s.internal(w, "signup", err)
		return
	}
	token, se, err := s.newSession(r.Context(), req.Login, deviceOf(req.Device))
	if err != nil {
		s.internal(w, "session", err)
		return
	}
	s.log.Info("signup", "login", req.Login)
	writeJSON(w, http.StatusCreated, providerapi.SignupResponse{
		Login: req.Login, Address: s.Address(req.Login), Token: token, Expires: se.Expires,
	})
}

func (s *Server) fakeBytes(label, login string, n int) []byte {
	m := hmac.New(sha256.New, s.fakeKey[:])
	m.Write([]byte(label + "\x00" + login))
	return m.Sum(nil)[:n]
}

func (s *Server) handleLoginStart(w http.ResponseWriter, r *http.Request) {
	var req providerapi.LoginStartRequest
	if !readJSON(w, r, maxJSONBody, &req) {
		return
	}
	if !ValidLogin(req.Login) {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "invalid login")
		return
	}
	if len(req.A) == 0 || len(req.A) > 1024 {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "invalid A")
		return
	}
	if !s.perClient.allow("login " + clientKey(r)) {
		writeErr(w, http.StatusTooManyRequests, providerapi.CodeRateLimited, "too many login attempts, try again later")
		return
	}
	// Not per account (anyone could use that up): failed proofs slow
	// their (client, login) pair down (enum.go).
	if wait := s.guard().wait("login", clientKey(r), req.Login); wait > 0 {
		tooSoon(w, wait, "login")
		return
	}
	p := srp.DefaultParams()
	u, err := s.store.User(r.Context(), req.Login)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.internal(w, "login", err)
		return
	}
	var (
		resp providerapi.LoginStartResponse
		srv  *srp.Server
	)
	h := &hsState{Login: req.Login, Fake: u == nil, A: append([]byte(nil), req.A...)}
	if u != nil {
		srv, err = srp.NewServer(p, []byte(u.Login), u.SRPSalt, u.SRPVerifier)
		if err != nil {
			s.internal(w, "srp", err)
			return
		}
		resp = providerapi.LoginStartResponse{SRPSalt: u.SRPSalt, B: srv.B(), KDF: u.KDF}
	} else {
		// An unknown login gets a made-up account (enum.go): the same
		// answer at every attempt, parameters real accounts have, and
		// the same work as a real one here and at the proof.
		salt, verifier, kdf := s.fakeAccount("", req.Login, p)
		srv, err = srp.NewServer(p, []byte(req.Login), salt, verifier)
		if err != nil {
			s.internal(w, "srp", err)
			return
		}
		resp = providerapi.LoginStartResponse{SRPSalt: salt, B: srv.B(), KDF: kdf}
	}
	if h.SRP, err = srv.MarshalBinary(); err != nil {
		s.internal(w, "srp", err)
		return
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		s.internal(w, "rand", err)
		return
	}
	resp.Handshake = hex.EncodeToString(id)
	// Kept in the store (handshake.go), so the proof may come to
	// another instance.
	if err := s.putHandshake(r.Context(), hsLogin, resp.Handshake, h, handshakeTTL); err != nil {
		s.handshakePutFailed(w, "login", err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleLoginFinish(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("handshake")
	var req providerapi.LoginFinishRequest
	if !readJSON(w, r, maxJSONBody, &req) || !validDevice(w, req.Device) {
		return
	}
	// Taken from the store: one proof per handshake, on any instance.
	h, err := s.takeHandshake(r.Context(), hsLogin, id)
	if errors.Is(err, storage.ErrNotFound) {
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "unknown or expired login handshake")
		return
	} else if err != nil {
		s.internal(w, "login handshake", err)
		return
	}
	srv, err := h.srpServer()
	if err != nil {
		s.internal(w, "login handshake", err)
		return
	}
	// An unknown login's made-up server verifies too, then fails; a
	// failure slows the client's pair down (enum.go).
	m2, err := s.checkProof(w, r, "login", srv, h.Login, h.Fake, h.A, req.M1)
	if errors.Is(err, errBadProof) {
		writeErr(w, http.StatusUnauthorized, providerapi.CodeUnauthorized, "wrong login or password")
		return
	} else if err != nil {
		return // answered
	}
	u, err := s.store.User(r.Context(), h.Login)
	if err != nil {
		s.internal(w, "login", err)
		return
	}
	token, se, err := s.newSession(r.Context(), h.Login, deviceOf(req.Device))
	if err != nil {
		s.internal(w, "session", err)
		return
	}
	s.log.Info("login", "login", h.Login)
	writeJSON(w, http.StatusOK, providerapi.LoginFinishResponse{
		M2: m2, Token: token, Expires: se.Expires, Address: s.Address(h.Login), WrappedSecret: u.WrappedSecret,
	})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, a authed) {
	if err := s.store.DeleteSession(r.Context(), a.tokenHash); err != nil {
		s.internal(w, "logout", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleRenew swaps a live session for a fresh one, so a daemon that runs
// for weeks needs the password only when it starts.
func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request, a authed) {
	token, se, err := s.renew(r.Context(), a) // session.go
	if errors.Is(err, storage.ErrNotFound) {
		s.unauthorized(w, r, a.tokenHash) // ended meanwhile
		return
	} else if err != nil {
		s.internal(w, "renew", err)
		return
	}
	writeJSON(w, http.StatusOK, providerapi.RenewResponse{Token: token, Expires: se.Expires})
}

func (s *Server) handlePasswd(w http.ResponseWriter, r *http.Request, a authed) {
	var req providerapi.Credentials
	if !readJSON(w, r, maxJSONBody, &req) {
		return
	}
	if err := validCredentials(req.SRPSalt, req.SRPVerifier, req.KDF, req.WrappedSecret); err != nil {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, err.Error())
		return
	}
	if err := s.store.UpdateCredentials(r.Context(), a.login, req, a.tokenHash); errors.Is(err, storage.ErrNotFound) {
		s.unauthorized(w, r, a.tokenHash) // the session was ended meanwhile
		return
	} else if err != nil {
		s.internal(w, "password change", err)
		return
	}
	s.log.Info("password changed", "login", a.login)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSecret(w http.ResponseWriter, r *http.Request, a authed) {
	u, err := s.store.User(r.Context(), a.login)
	if err != nil {
		s.internal(w, "secret", err)
		return
	}
	writeJSON(w, http.StatusOK, providerapi.SecretResponse{KDF: u.KDF, WrappedSecret: u.WrappedSecret})
}

// --- documents

func (s *Server) handlePush(w http.ResponseWriter, r *http.Request, a authed) {
	var req providerapi.PushRequest
	var ok bool
	if req.Docs, ok = readPush(w, r); !ok { // pushread.go: at most maxPushDocs decoded
		return
	}
	if len(req.Docs) == 0 || len(req.Docs) > maxPushDocs {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, fmt.Sprintf("a push carries 1 to %d documents", maxPushDocs))
		return
	}
	for _, d := range req.Docs {
		if !docIDRe.MatchString(d.ID) || d.ID == "changes" {
			writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "invalid document id")
			return
		}
		if len(d.Ciphertext) == 0 || len(d.Ciphertext) > maxDocSize {
			writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, fmt.Sprintf("document %s: ciphertext must be 1 to %d bytes", d.ID, maxDocSize))
			return
		}
	}
	if over, err := s.pushOverQuota(r.Context(), a.login, req.Docs); err != nil {
		s.internal(w, "push: quota", err)
		return
	} else if over {
		writeQuotaErr(w, "push") // quota.go
		return
	}
	res, err := s.store.PushDocs(r.Context(), a.login, req.Docs)
	if err != nil {
		s.internal(w, "push", err)
		return
	}
	var last uint64
	for _, x := range res {
		last = max(last, x.Seq)
	}
	if last > 0 {
		s.wake(r.Context(), a.login)
	}
	writeJSON(w, http.StatusOK, providerapi.PushResponse{Results: res})
}

func queryUint(q url.Values, name string, def uint64) (uint64, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s must be a non-negative integer", name)
	}
	return n, nil
}

func (s *Server) handleChanges(w http.ResponseWriter, r *http.Request, a authed) {
	q := r.URL.Query()
	since, err := queryUint(q, "since", 0)
	if err == nil {
		var limit, wait uint64
		if limit, err = queryUint(q, "limit", 1000); err == nil {
			if wait, err = queryUint(q, "wait", 0); err == nil {
				s.changes(w, r, a, since, int(min(max(limit, 1), maxPageLimit)), time.Duration(min(wait, 120))*time.Second)
				return
			}
		}
	}
	writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, err.Error())
}

func (s *Server) changes(w http.ResponseWriter, r *http.Request, a authed, since uint64, limit int, wait time.Duration) {
	// Long poll: subscribe before looking, so a change that lands in
	// between still wakes us.
	var wake chan providerapi.Event
	if wait > 0 {
		ch, cancel := s.notify.subscribe(a.login)
		defer cancel()
		wake = ch
	}
	deadline := time.Now().Add(wait)
	for {
		docs, last, more, err := s.store.Changes(r.Context(), a.login, since, limit)
		if err != nil {
			s.internal(w, "changes", err)
			return
		}
		if len(docs) > 0 || wait <= 0 {
			if docs == nil {
				docs = []providerapi.Doc{}
			}
			head, err := s.store.LastSeq(r.Context(), a.login)
			if err != nil {
				s.internal(w, "changes", err)
				return
			}
			writeJSON(w, http.StatusOK, providerapi.ChangesResponse{Changes: docs, LastSeq: last, More: more, Head: head})
			return
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-wake:
			t.Stop()
			if !time.Now().Before(deadline) {
				wait = 0
			}
		case <-t.C:
			wait = 0
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
}

func (s *Server) handleGetDoc(w http.ResponseWriter, r *http.Request, a authed) {
	id := r.PathValue("id")
	if !docIDRe.MatchString(id) {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "invalid document id")
		return
	}
	d, err := s.store.Doc(r.Context(), a.login, id)
	if errors.Is(err, storage.ErrNotFound) {
		writeErr(w, http.StatusNotFound, providerapi.CodeNotFound, "no such document")
		return
	} else if err != nil {
		s.internal(w, "get doc", err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// --- blobs

func (s *Server) handlePutBlob(w http.ResponseWriter, r *http.Request, a authed) {
	id := r.PathValue("id")
	if !blobRe.MatchString(id) {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "a blob id is 64 lowercase hex characters")
		return
	}
	// The body streams to the store, which takes exactly the announced
	// length: a body without Content-Length is refused, and one that
	// stops half way stores nothing.
	switch {
	case r.ContentLength < 0:
		writeErr(w, http.StatusLengthRequired, providerapi.CodeBadRequest, "a blob upload needs a Content-Length")
		return
	case r.ContentLength == 0:
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "empty blob")
		return
	case r.ContentLength > maxBlobBody:
		writeErr(w, http.StatusRequestEntityTooLarge, providerapi.CodeTooLarge, "blob too large")
		return
	}
	if over, err := s.blobOverQuota(r.Context(), a.login, id, r.ContentLength); err != nil {
		s.internal(w, "put blob: quota", err)
		return
	} else if over {
		writeQuotaErr(w, "blob") // quota.go
		return
	}
	body := http.MaxBytesReader(w, r.Body, r.ContentLength)
	if err := s.store.PutBlob(r.Context(), a.login, id, body, r.ContentLength); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "reading blob: the body ended before its Content-Length")
			return
		}
		if r.Context().Err() != nil {
			return // the client went away; nothing was stored
		}
		s.internal(w, "put blob", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleGetBlob(w http.ResponseWriter, r *http.Request, a authed) {
	id := r.PathValue("id")
	if !blobRe.MatchString(id) {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "a blob id is 64 lowercase hex characters")
		return
	}
	rc, size, err := s.store.Blob(r.Context(), a.login, id)
	if errors.Is(err, storage.ErrNotFound) {
		writeErr(w, http.StatusNotFound, providerapi.CodeNotFound, "no such blob")
		return
	} else if err != nil {
		s.internal(w, "get blob", err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	if _, err := io.Copy(w, rc); err != nil && r.Context().Err() == nil {
		s.log.Warn("provider: sending a blob", "err", err)
	}
}

// --- notification stream

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, a authed) {
	ch, cancel := s.notify.subscribe(a.login)
	defer cancel()
	seq, err := s.store.LastSeq(r.Context(), a.login)
	if err != nil {
		s.internal(w, "events", err)
		return
	}
	inc, err := s.store.IncomingCounter(r.Context(), a.login)
	if err != nil {
		s.internal(w, "events", err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(ev providerapi.Event) error {
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "event: change\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send(providerapi.Event{Seq: seq, Incoming: inc}) != nil {
		return
	}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			if send(ev) != nil {
				return
			}
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func (s *Server) newSession(ctx context.Context, login string, dev storage.Session) (string, *storage.Session, error) {
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return "", nil, fmt.Errorf("making a session token: %w", err)
	}
	token := hex.EncodeToString(tok)
	se := &dev // the device's fields (session.go)
	se.TokenHash, se.Login, se.Expires = hashToken(token), login, time.Now().Add(s.cfg.SessionTTL).UTC()
	if se.Created.IsZero() {
		se.Created = time.Now().UTC()
	}
	if err := s.store.CreateSession(ctx, se); err != nil {
		return "", nil, err
	}
	return token, se, nil
}
