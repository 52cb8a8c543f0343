package rawmime

import (
	"slices"
	"testing"
)

func TestAddressSpecials(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{`a@b, c@d`, []int{3}},
		{`"x, y:" <a@b>, c@d`, []int{13}},
		{`G: a@b, (c, d;) e@f;`, []int{1, 6, 19}},
		{`<@r1,@r2:a@b>, c`, []int{13}},
		{`"unclosed, quote`, nil},
		{`undisclosed-recipients:;`, []int{22, 23}},
	} {
		var got []int
		AddressSpecials(tc.in, func(i int, c byte) bool { got = append(got, i); return true })
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
	n := 0
	AddressSpecials("a,b,c", func(int, byte) bool { n++; return false })
	if n != 1 {
		t.Errorf("did not stop: %d calls", n)
	}
}
