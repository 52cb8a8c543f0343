package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/bitmask-go/bitmask/internal/controlserver"
	"github.com/bitmask-go/bitmask/internal/localserve"
	"github.com/bitmask-go/bitmask/internal/tray"
)

// desktopSession reports whether bitmaskd runs in a desktop session,
// where a tray icon can show: on Linux and the BSDs an X11 or Wayland
// display and a D-Bus session bus (the StatusNotifierItem protocol);
// Windows and macOS start bitmaskd in the user's session.
func desktopSession(getenv func(string) string) bool {
	switch runtime.GOOS {
	case "windows", "darwin":
		return true
	}
	return (getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != "") && getenv("DBUS_SESSION_BUS_ADDRESS") != ""
}

// runWithTray runs bitmaskd's services as localserve.Run does, and the
// tray icon over them on this goroutine (macOS wants the main one) until
// ctx ends or the user chooses Quit; then the services stop, the daemon
// closes and it returns. Should the icon fail, the services go on
// without it.
func runWithTray(ctx context.Context, cfg localserve.Config, stdout io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan *localserve.Services, 1)
	next := cfg.Ready
	cfg.Ready = func(ctx context.Context, s *localserve.Services) error {
		if next != nil {
			if err := next(ctx, s); err != nil {
				return err
			}
		}
		ready <- s
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		errc <- localserve.Run(ctx, cfg)
		cancel() // the tray goes with the services
	}()
	select {
	case err := <-errc:
		return err
	case s := <-ready:
		fmt.Fprintln(stdout, "bitmaskd: tray icon on (bitmaskd --no-tray leaves it out)")
		err := tray.Run(ctx, tray.Config{
			Daemon: s.Daemon,
			PageURL: func(path string) (string, error) {
				return controlserver.LoginURL(s.Daemon, path)
			},
			Quit:   cancel,
			Logger: log,
		})
		if err != nil {
			log.Warn("no tray icon", "err", err)
		}
	}
	return <-errc
}
