// Package trayhost is a tray host for tests: it starts a private D-Bus
// session bus (dbus-daemon, as a child of the test) and owns
// org.kde.StatusNotifierWatcher on it, takes the registration of a
// StatusNotifierItem, reads the item's properties and its
// com.canonical.dbusmenu menu, and clicks menu entries, as a desktop's
// tray does. Waits are for signals from the item, never for a time.
package trayhost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

// Bus is a private session bus.
type Bus struct {
	Addr string // its address, for DBUS_SESSION_BUS_ADDRESS
}

// busConfig is a session bus that lets everyone own names and talk to
// everyone: the bus's socket is in the test's own directory.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// StartBus starts dbus-daemon on a socket in a temporary directory and
// stops it when the test ends. Without dbus-daemon the test is skipped,
// or fails when BITMASK_REQUIRE_PEERS=1.
func StartBus(t testing.TB) *Bus {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
			t.Fatal("dbus-daemon is needed (Debian package dbus) and BITMASK_REQUIRE_PEERS=1")
		}
		t.Skip("no dbus-daemon (Debian package dbus)")
	}
	// A short directory: a socket's path has a limit of about 100 bytes.
	dir, err := os.MkdirTemp("", "bus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "socket")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// It prints its address once it listens.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return &Bus{Addr: strings.TrimSpace(line)}
}

// Host is the tray host: the StatusNotifierWatcher on a bus.
type Host struct {
	conn    *dbus.Conn
	items   chan Item
	signals chan *dbus.Signal
}

// Item is a registered StatusNotifierItem.
type Item struct {
	h       *Host
	Service string          // the bus name of its connection
	Path    dbus.ObjectPath // its object
}

type watcher struct{ items chan Item }

// RegisterStatusNotifierItem is the watcher's method an item calls; it
// names its object path (as fyne's systray does) or a bus name.
func (w watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	it := Item{Service: string(sender), Path: "/StatusNotifierItem"}
	if strings.HasPrefix(service, "/") {
		it.Path = dbus.ObjectPath(service)
	} else if service != "" {
		it.Service = service
	}
	select {
	case w.items <- it:
	default:
	}
	return nil
}

// RegisterStatusNotifierHost is the watcher's method a host calls.
func (w watcher) RegisterStatusNotifierHost(sender dbus.Sender, service string) *dbus.Error {
	return nil
}

// New connects to the bus and owns org.kde.StatusNotifierWatcher.
func New(t testing.TB, addr string) *Host {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connecting to the test bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	h := &Host{conn: conn, items: make(chan Item, 4), signals: make(chan *dbus.Signal, 1024)}
	if err := conn.Export(watcher{h.items}, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	r, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue)
	if err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning org.kde.StatusNotifierWatcher: %v (%v)", r, err)
	}
	conn.Signal(h.signals)
	return h
}

// WaitItem waits for an item to register, then listens to its signals.
func (h *Host) WaitItem(ctx context.Context) (Item, error) {
	select {
	case <-ctx.Done():
		return Item{}, fmt.Errorf("no item registered: %w", ctx.Err())
	case it := <-h.items:
		it.h = h
		if err := h.conn.AddMatchSignal(dbus.WithMatchSender(it.Service)); err != nil {
			return Item{}, err
		}
		return it, nil
	}
}

// Property reads one of the item's org.kde.StatusNotifierItem properties.
func (it Item) Property(name string) (dbus.Variant, error) {
	return it.h.conn.Object(it.Service, it.Path).GetProperty("org.kde.StatusNotifierItem." + name)
}

// Tooltip is the title of the item's ToolTip property.
func (it Item) Tooltip() (string, error) {
	v, err := it.Property("ToolTip")
	if err != nil {
		return "", err
	}
	var tip struct {
		Name  string
		Icons []Pixmap
		Title string
		Text  string
	}
	if err := v.Store(&tip); err != nil {
		return "", fmt.Errorf("ToolTip %s: %w", v.Signature(), err)
	}
	return tip.Title, nil
}

// Pixmap is an image of IconPixmap: ARGB32 in network byte order.
type Pixmap struct {
	W, H int32
	Pix  []byte
}

// Icon is the item's IconPixmap.
func (it Item) Icon() ([]Pixmap, error) {
	v, err := it.Property("IconPixmap")
	if err != nil {
		return nil, err
	}
	var px []Pixmap
	if err := v.Store(&px); err != nil {
		return nil, fmt.Errorf("IconPixmap %s: %w", v.Signature(), err)
	}
	return px, nil
}

// Entry is a menu entry, with the dbusmenu properties a tray reads.
type Entry struct {
	ID       int32
	Label    string
	Type     string // "separator", or "" for a standard entry
	Enabled  bool
	Visible  bool
	Children []Entry
}

// menuPath is the item's Menu property.
func (it Item) menuPath() (dbus.ObjectPath, error) {
	v, err := it.Property("Menu")
	if err != nil {
		return "", err
	}
	p, ok := v.Value().(dbus.ObjectPath)
	if !ok {
		return "", fmt.Errorf("Menu is a %s", v.Signature())
	}
	return p, nil
}

// Menu reads the whole menu with com.canonical.dbusmenu GetLayout.
func (it Item) Menu() ([]Entry, error) {
	p, err := it.menuPath()
	if err != nil {
		return nil, err
	}
	var (
		rev    uint32
		layout []any
	)
	call := it.h.conn.Object(it.Service, p).Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
	if err := call.Store(&rev, &layout); err != nil {
		return nil, fmt.Errorf("GetLayout: %w", err)
	}
	root, err := entry(layout)
	if err != nil {
		return nil, err
	}
	return root.Children, nil
}

// entry decodes a layout node, (ia{sv}av).
func entry(node []any) (Entry, error) {
	if len(node) != 3 {
		return Entry{}, fmt.Errorf("a menu node of %d fields", len(node))
	}
	id, ok1 := node[0].(int32)
	props, ok2 := node[1].(map[string]dbus.Variant)
	kids, ok3 := node[2].([]dbus.Variant)
	if !ok1 || !ok2 || !ok3 {
		return Entry{}, errors.New("a menu node of the wrong types")
	}
	e := Entry{ID: id, Enabled: true, Visible: true}
	if v, ok := props["label"]; ok {
		e.Label, _ = v.Value().(string)
	}
	if v, ok := props["type"]; ok {
		e.Type, _ = v.Value().(string)
	}
	if v, ok := props["enabled"]; ok {
		e.Enabled, _ = v.Value().(bool)
	}
	if v, ok := props["visible"]; ok {
		e.Visible, _ = v.Value().(bool)
	}
	for _, k := range kids {
		n, ok := k.Value().([]any)
		if !ok {
			return Entry{}, fmt.Errorf("a menu child of type %s", k.Signature())
		}
		c, err := entry(n)
		if err != nil {
			return Entry{}, err
		}
		e.Children = append(e.Children, c)
	}
	return e, nil
}

// Entries reads the properties of the entries with these ids, with
// com.canonical.dbusmenu GetGroupProperties (ids that name no entry are
// left out; children are not read).
//
// fyne.io/systray v1.12.2 answers its first GetLayout with a
// goroutine that bumps the menu's revision 150 ms later without the
// lock GetLayout reads it under: the race detector reports that, so a
// test built with -race reads entries this way instead of with Menu.
func (it Item) Entries(ids []int32) ([]Entry, error) {
	p, err := it.menuPath()
	if err != nil {
		return nil, err
	}
	var groups []struct {
		ID    int32
		Props map[string]dbus.Variant
	}
	call := it.h.conn.Object(it.Service, p).Call("com.canonical.dbusmenu.GetGroupProperties", 0, ids, []string{})
	if err := call.Store(&groups); err != nil {
		return nil, fmt.Errorf("GetGroupProperties: %w", err)
	}
	var out []Entry
	for _, g := range groups {
		e, err := entry([]any{g.ID, g.Props, []dbus.Variant{}})
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Click sends the entry a com.canonical.dbusmenu Event "clicked", as a
// tray does when the user picks it.
func (it Item) Click(id int32) error {
	p, err := it.menuPath()
	if err != nil {
		return err
	}
	return it.h.conn.Object(it.Service, p).Call("com.canonical.dbusmenu.Event", 0, id, "clicked", dbus.MakeVariant(""), uint32(0)).Err
}

// WaitFor checks cond, and again after each signal from the item, until
// it holds or ctx ends.
func (it Item) WaitFor(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case _, ok := <-it.h.signals:
			if !ok {
				return fmt.Errorf("waiting for %s: the connection closed", what)
			}
		}
	}
	return nil
}
