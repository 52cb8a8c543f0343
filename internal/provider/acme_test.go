package provider_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
)

// A public name that is no host name, or that is the API's or the
// submission's host (which must keep the certificate the devices pin),
// stops the start with an error saying so, before the storage is
// opened. (The ACME exchange
// itself is tested against Pebble in cmd/leapd.)
func TestACMEBadNames(t *testing.T) {
	for _, tc := range []struct {
		names  []string
		apiURL string
		want   string
	}{
		{[]string{"api.example.test"}, "https://API.example.test:4430", "also the API or submission host"},
		{[]string{"example.test"}, "https://127.0.0.1:4430", "also the API or submission host"}, // the submission host
		{[]string{"localhost"}, "https://127.0.0.1:4430", "not a host name"},
		{[]string{"mail.example.test:443"}, "https://127.0.0.1:4430", "not a host name"},
		{nil, "https://127.0.0.1:4430", "no name"},
	} {
		dir := t.TempDir()
		_, err := provider.Start(context.Background(), provider.Config{
			DataDir: dir, Logger: quiet(),
			API:    httpapi.Config{Domain: "example.test", APIURL: tc.apiURL, Submission: "example.test:5870"},
			Listen: provider.Addrs{API: "127.0.0.1:0"},
			ACME:   &provider.ACME{Names: tc.names},
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v with API %s: %v, want %q", tc.names, tc.apiURL, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "leapd.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v: the storage was made: %v", tc.names, err)
		}
	}
}
