package tray

import (
	"bytes"
	"embed"
	"encoding/binary"
	"image/png"
	"runtime"
)

// The icons are drawn by icons/gen.go; icons/bitmask.svg and
// icons/bitmask-SIZE.png are the application's icon, which packaging
// installs too (docs/tray.md).
//
//go:embed icons/state-*.png icons/bitmask-64.png
var iconFiles embed.FS

// IconPNG is the tray's icon for a state (or for a pause), as PNG.
func IconPNG(s State, paused bool) []byte {
	name := "icons/state-" + s.String() + ".png"
	if paused {
		name = "icons/state-paused.png"
	}
	b, err := iconFiles.ReadFile(name)
	if err != nil {
		b, _ = iconFiles.ReadFile("icons/bitmask-64.png")
	}
	return b
}

// platformIcon is the icon as the platform's tray takes it: an .ico on
// Windows, PNG elsewhere.
func platformIcon(s State, paused bool) []byte {
	b := IconPNG(s, paused)
	if runtime.GOOS == "windows" {
		return ICO(b)
	}
	return b
}

// ICO wraps a PNG in an .ico file of one image (Windows reads PNG
// images inside .ico files since Vista).
func ICO(pngData []byte) []byte {
	w, h := 0, 0
	if cfg, err := png.DecodeConfig(bytes.NewReader(pngData)); err == nil {
		w, h = cfg.Width, cfg.Height
	}
	dim := func(n int) byte {
		if n <= 0 || n >= 256 {
			return 0 // 0 means 256
		}
		return byte(n)
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	// ICONDIR: reserved, type 1 (icon), one image.
	b.Write(le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 0), 1), 1))
	// ICONDIRENTRY: width, height, colours, reserved, planes, bits per
	// pixel, size, offset of the image (after these 6+16 bytes).
	b.Write([]byte{dim(w), dim(h), 0, 0})
	b.Write(le.AppendUint16(le.AppendUint16(nil, 1), 32))
	b.Write(le.AppendUint32(le.AppendUint32(nil, uint32(len(pngData))), 6+16))
	b.Write(pngData)
	return b.Bytes()
}
