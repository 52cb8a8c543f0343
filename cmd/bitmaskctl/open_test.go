package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/testenv"
)

// $BROWSER is a colon-separated list of commands, as xdg-open reads
// it; the system's opener comes last.
func TestBrowserCommands(t *testing.T) {
	const u = "http://127.0.0.1:7070/auth?code=ab&next=%2Fsetup"
	for _, tc := range []struct {
		env, goos string
		want      [][]string
	}{
		{"", "linux", [][]string{{"xdg-open", u}}},
		{"", "darwin", [][]string{{"open", u}}},
		{"", "windows", [][]string{{"cmd", "/c", "start", "", strings.ReplaceAll(u, "&", "^&")}}},
		{"firefox", "linux", [][]string{{"firefox", u}, {"xdg-open", u}}},
		{"firefox --new-tab:w3m", "freebsd", [][]string{{"firefox", "--new-tab", u}, {"w3m", u}, {"xdg-open", u}}},
		{"chromium --app=%s:::lynx", "linux", [][]string{{"chromium", "--app=" + u}, {"lynx", u}, {"xdg-open", u}}},
		{"echo 100%% %s", "linux", [][]string{{"echo", "100%", u}, {"xdg-open", u}}},
	} {
		if got := browserCommands(u, tc.env, tc.goos); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("BROWSER=%q on %s: %q, want %q", tc.env, tc.goos, got, tc.want)
		}
	}
}

// bitmaskctl open starts $BROWSER on a one-time URL that logs a browser
// in to the page; without a browser it prints the URL.
func TestOpen(t *testing.T) {
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	dir := t.TempDir()
	got := filepath.Join(dir, "url")
	script := filepath.Join(dir, "browser")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+got+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
		if err := c.run(context.Background(), append([]string{"--data", r.Dir, "--control", r.ControlAddr}, args...)); err != nil {
			t.Fatalf("bitmaskctl %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}

	// A failing browser first: the next in the list is tried.
	t.Setenv("BROWSER", "false:"+script)
	run("open", "setup")
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	url := string(b)
	if !strings.HasPrefix(url, "http://"+r.ControlAddr+"/auth?code=") || !strings.HasSuffix(url, "&next=%2Fsetup") {
		t.Fatalf("browser got %q", url)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/setup" {
		t.Fatalf("the URL led to %d %s", resp.StatusCode, resp.Request.URL)
	}
	// The code worked once.
	if resp, err := http.Get(url); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the URL again: %v %v", resp, err)
	}

	// No browser at all: the URL is printed.
	t.Setenv("BROWSER", "")
	t.Setenv("PATH", dir)
	out := run("open")
	if !strings.Contains(out, "Open this address in your browser") || !strings.Contains(out, "http://"+r.ControlAddr+"/auth?code=") {
		t.Fatalf("open without a browser:\n%s", out)
	}
	if out := run("open", "/keys", "--print"); !strings.HasPrefix(out, "http://"+r.ControlAddr+"/auth?code=") || !strings.HasSuffix(out, "&next=%2Fkeys\n") {
		t.Fatalf("open --print: %q", out)
	}
}
