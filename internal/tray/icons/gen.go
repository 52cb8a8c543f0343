//go:build ignore

// gen draws the Bitmask icons: the application icon (bitmask-SIZE.png,
// the same drawing as bitmask.svg) and the tray's state icons
// (state-STATE.png: the icon with a badge). Run it from this directory:
//
//	go run gen.go
//
// The drawing is a few shapes measured in a 64-unit square, rendered
// with 4x4 samples per pixel, so the output depends on nothing but this
// file.
package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
)

type rgba struct{ r, g, b, a float64 }

var (
	purple = hex(0x4b2e83)
	white  = hex(0xffffff)
)

func hex(v uint32) rgba {
	return rgba{float64(v>>16&0xff) / 255, float64(v>>8&0xff) / 255, float64(v&0xff) / 255, 1}
}

// A shape says whether a point (in icon units) is inside it.
type shape func(x, y float64) bool

type layer struct {
	in shape
	c  rgba
}

func roundRect(x0, y0, x1, y1, r float64) shape {
	return func(x, y float64) bool {
		if x < x0 || x > x1 || y < y0 || y > y1 {
			return false
		}
		cx := math.Max(x0+r, math.Min(x, x1-r))
		cy := math.Max(y0+r, math.Min(y, y1-r))
		return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r
	}
}

func circle(cx, cy, r float64) shape {
	return func(x, y float64) bool { return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r }
}

// line is a segment drawn with round caps, w wide.
func line(x0, y0, x1, y1, w float64) shape {
	return func(x, y float64) bool {
		dx, dy := x1-x0, y1-y0
		t := ((x-x0)*dx + (y-y0)*dy) / (dx*dx + dy*dy)
		t = math.Max(0, math.Min(1, t))
		px, py := x0+t*dx-x, y0+t*dy-y
		return px*px+py*py <= w*w/4
	}
}

// ring is a circle's outline, w wide, without the arc between the
// angles gap0 and gap1 (degrees, 0 is east, counterclockwise on screen).
func ring(cx, cy, r, w, gap0, gap1 float64) shape {
	return func(x, y float64) bool {
		d := math.Hypot(x-cx, y-cy)
		if math.Abs(d-r) > w/2 {
			return false
		}
		a := math.Atan2(-(y-cy), x-cx) * 180 / math.Pi
		if a < 0 {
			a += 360
		}
		return !(a >= gap0 && a <= gap1)
	}
}

func union(ss ...shape) shape {
	return func(x, y float64) bool {
		for _, s := range ss {
			if s(x, y) {
				return true
			}
		}
		return false
	}
}

// The application icon: an envelope on a rounded square.
func base() []layer {
	return []layer{
		{roundRect(4, 4, 60, 60, 12), purple},
		{roundRect(13, 19, 51, 46, 3), white},
		{union(line(15, 22, 32, 35, 3.5), line(32, 35, 49, 22, 3.5)), purple},
	}
}

// badge is a state's mark in the lower right corner: a disc with a
// white rim and a white glyph.
func badge(c rgba, glyph shape) []layer {
	return []layer{
		{circle(49, 49, 14), white},
		{circle(49, 49, 11.5), c},
		{glyph, white},
	}
}

var states = map[string][]layer{
	// A check mark.
	"online": badge(hex(0x2e9e44), union(line(43.5, 49.5, 47.5, 53.5, 3), line(47.5, 53.5, 54.5, 44.5, 3))),
	// A circle with a gap: going round.
	"syncing": badge(hex(0x2f7de1), union(ring(49, 49, 6, 2.6, 60, 120), line(52, 43.8, 55, 41, 2.6), line(52, 43.8, 55.6, 45.2, 2.6))),
	// A dash: not connected.
	"offline": badge(hex(0x7d7d7d), line(44, 49, 54, 49, 3.2)),
	// A padlock.
	"locked": badge(hex(0xc98a00), union(roundRect(43.5, 48, 54.5, 56, 1.5), ring(49, 47, 3.6, 2.2, 181, 359))),
	// An exclamation mark.
	"error": badge(hex(0xd93025), union(line(49, 42.5, 49, 50, 3.4), circle(49, 55, 1.9))),
	// Two bars.
	"paused": badge(hex(0x7d7d7d), union(line(46, 44, 46, 54, 3.2), line(52, 44, 52, 54, 3.2))),
}

func render(size int, layers []layer) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	const n = 4
	scale := 64 / float64(size)
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			var r, g, b, a float64 // premultiplied sums
			for sy := 0; sy < n; sy++ {
				for sx := 0; sx < n; sx++ {
					x := (float64(px) + (float64(sx)+0.5)/n) * scale
					y := (float64(py) + (float64(sy)+0.5)/n) * scale
					var c rgba
					for _, l := range layers {
						if l.in(x, y) {
							c = l.c
						}
					}
					r += c.r * c.a
					g += c.g * c.a
					b += c.b * c.a
					a += c.a
				}
			}
			if a == 0 {
				continue
			}
			img.SetNRGBA(px, py, color.NRGBA{
				R: uint8(math.Round(r / a * 255)), G: uint8(math.Round(g / a * 255)), B: uint8(math.Round(b / a * 255)),
				A: uint8(math.Round(a / (n * n) * 255)),
			})
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func write(name string, b []byte) {
	if err := os.WriteFile(name, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

func main() {
	for _, size := range []int{16, 22, 24, 32, 48, 64, 128, 256} {
		write(fmt.Sprintf("bitmask-%d.png", size), render(size, base()))
	}
	for name, badge := range states {
		write("state-"+name+".png", render(64, append(base(), badge...)))
	}
}
