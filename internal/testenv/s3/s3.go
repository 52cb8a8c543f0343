// Package s3 runs a real S3-compatible server for tests: versitygw
// (the Versity S3 gateway, Apache-2.0) with its posix backend, in a
// temporary directory, on a loopback port the kernel picks, with random
// access and secret keys and, by default, TLS with a certificate made for
// the test (CAFile).
//
// versitygw runs as its own process, built once from its Go module
// (github.com/versity/versitygw/cmd/versitygw at Version) into a cache
// directory: running it in-process would pull its whole dependency tree
// (fiber, fasthttp, the Azure and IAM clients, ...) into this module's
// go.mod, and a separate process is also what a provider really talks to.
// The binary is looked up in order: $BITMASK_VERSITYGW, versitygw on
// PATH, $XDG_CACHE_HOME (or ~/.cache)/bitmask-test/versitygw-VERSION/;
// when none is there the first test builds it with `go install` (minutes;
// CI builds it beforehand, see InstallCommand).
//
// Tests skip with a clear message when versitygw is missing and cannot be
// built, unless BITMASK_REQUIRE_PEERS=1 (CI), where they fail.
package s3

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the versitygw release the tests run.
const Version = "v1.8.0"

// Module is the Go package of versitygw's command.
const Module = "github.com/versity/versitygw/cmd/versitygw"

// Options change how Start runs the server.
type Options struct {
	// PlainHTTP serves http:// instead of https://.
	PlainHTTP bool
}

// Server is a running versitygw.
type Server struct {
	// Endpoint is its base URL: https://127.0.0.1:PORT (http:// with
	// PlainHTTP).
	Endpoint string
	// CAFile is the PEM certificate that signs its TLS certificate
	// ("" with PlainHTTP).
	CAFile string
	// AccessKey and SecretKey are its root credentials.
	AccessKey, SecretKey string
	// Dir is the posix backend's root: one directory per bucket.
	Dir string

	client *s3.Client
	seq    atomic.Int64
	stop   func()
}

// Start runs a versitygw for the duration of t, or skips t (fails it
// with BITMASK_REQUIRE_PEERS=1) when there is none. It sets
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to its keys with t.Setenv
// (so t must not be parallel): a blob store opened in t finds them there.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		unavailable(t, err)
	}
	tmp := t.TempDir()
	s := &Server{
		AccessKey: "AK" + randHex(9),
		SecretKey: randHex(20),
		Dir:       filepath.Join(tmp, "root"),
	}
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"--port", "127.0.0.1:0", "--quiet", "--region", "us-east-1"}
	scheme := "http"
	if !opt.PlainHTTP {
		cert, key, err := writeCert(tmp)
		if err != nil {
			t.Fatalf("s3: making a certificate: %v", err)
		}
		s.CAFile = cert
		args = append(args, "--cert", cert, "--key", key)
		scheme = "https"
	}
	args = append(args, "posix", s.Dir)
	logPath := filepath.Join(tmp, "versitygw.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	// The keys go in the environment, not on the command line (ps).
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		unavailable(t, fmt.Errorf("starting versitygw: %w", err))
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }() //nolint:errcheck // the exit is seen through exited
	s.stop = sync.OnceFunc(func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill() //nolint:errcheck
			<-exited
		}
	})
	t.Cleanup(s.stop)
	port, err := listeningPort(cmd.Process.Pid, exited)
	if err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("s3: versitygw did not start listening: %v\n%s", err, tail(log, 2000))
	}
	s.Endpoint = fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")

	tlsConf := &tls.Config{}
	if s.CAFile != "" {
		pemBytes, _ := os.ReadFile(s.CAFile)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemBytes)
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: tlsConf}
	t.Cleanup(tr.CloseIdleConnections)
	s.client = s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  aws.NewCredentialsCache(staticCreds{s.AccessKey, s.SecretKey}),
		HTTPClient:   &http.Client{Transport: tr},
	})
	return s
}

type staticCreds struct{ id, secret string }

func (c staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret, Source: "testenv"}, nil
}

// Stop stops the server now (a store that goes away); it is also
// stopped when the test ends.
func (s *Server) Stop() { s.stop() }

// Env is the environment a process (a leapd) needs to reach the server.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}
}

// Client is an S3 client of the server with its root keys, for tests
// that look at the objects themselves.
func (s *Server) Client() *s3.Client { return s.client }

// CreateBucket makes a new empty bucket and returns its name.
func (s *Server) CreateBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("bitmask-%d-%d", os.Getpid(), s.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3: creating bucket %s: %v", name, err)
	}
	return name
}

// URL is a blob store URL (leapd's -blobs) for bucket and prefix
// ("" for none) on this server.
func (s *Server) URL(bucket, prefix string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("region", "us-east-1")
	q.Set("path-style", "1")
	if s.CAFile != "" {
		q.Set("ca", s.CAFile)
	}
	u := url.URL{Scheme: "s3", Host: bucket, RawQuery: q.Encode()}
	if prefix != "" {
		u.Path = "/" + prefix
	}
	return u.String()
}

// NewBucketURL is URL(CreateBucket(t), "").
func (s *Server) NewBucketURL(t testing.TB) string {
	t.Helper()
	return s.URL(s.CreateBucket(t), "")
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
		t.Fatalf("s3: %v (build it: %s) and BITMASK_REQUIRE_PEERS=1", err, InstallCommand())
	}
	t.Skipf("s3: no S3 server: %v (build it: %s)", err, InstallCommand())
}

// CacheDir is where the built versitygw is kept.
func CacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "bitmask-test", "versitygw-"+Version), nil
}

// InstallCommand is the shell command that builds versitygw where
// Binary finds it (what CI runs before the tests).
func InstallCommand() string {
	d, err := CacheDir()
	if err != nil {
		d = "~/.cache/bitmask-test/versitygw-" + Version
	}
	return fmt.Sprintf("GOBIN=%s go install %s@%s", d, Module, Version)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary finds versitygw, building it into CacheDir when it is nowhere.
func Binary() (string, error) {
	binOnce.Do(func() { binPath, binErr = findOrBuild() })
	return binPath, binErr
}

func findOrBuild() (string, error) {
	if p := os.Getenv("BITMASK_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("BITMASK_VERSITYGW: %w", err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("versitygw is not built and there is no go command to build it")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// One build at a time across test binaries: the others wait on
	// the lock, then find the binary.
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", Module+"@"+Version)
	cmd.Dir = dir // outside any module: the build uses versitygw's own go.mod
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building versitygw: %v: %s", err, tail(out, 1500))
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("building versitygw: %w", err)
	}
	return bin, nil
}

// listeningPort waits until process pid listens on a TCP socket and
// returns its port: the kernel picked it (--port 127.0.0.1:0), so it is
// read from /proc: the process's socket inodes, then /proc/PID/net/tcp.
func listeningPort(pid int, exited <-chan struct{}) (int, error) {
	deadline := time.Now().Add(time.Minute)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		select {
		case <-exited:
			return 0, errors.New("versitygw exited")
		default:
		}
		if port, err := findPort(pid); err == nil && port > 0 {
			return port, nil
		}
		if time.Now().After(deadline) {
			return 0, errors.New("no listening socket after a minute")
		}
		time.Sleep(wait)
	}
}

func findPort(pid int) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st ... inode (field 9)
		if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
			continue
		}
		_, portHex, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err == nil {
			return int(port), nil
		}
	}
	return 0, sc.Err()
}

// writeCert makes a self-signed CA certificate for 127.0.0.1 and
// localhost, and returns the paths of its PEM certificate and key.
func writeCert(dir string) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "bitmask test S3"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
