package blobmem

import "testing"

func TestExtend(t *testing.T) {
	for _, tc := range []struct {
		name, before, fill, after, want string
	}{
		{name: "empty", fill: "abc", want: "abc"},
		{name: "after content", before: "ab", fill: "cde", after: "f", want: "abcdef"},
		{name: "nothing", before: "ab", after: "c", want: "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Buffer
			b.WriteString(tc.before)
			copy(b.Extend(len(tc.fill)), tc.fill)
			b.WriteString(tc.after)
			if got := string(b.Bytes()); got != tc.want || b.Length() != len(tc.want) {
				t.Errorf("content %q (length %d), want %q", got, b.Length(), tc.want)
			}
		})
	}
	// Read from before extending: what was read is gone, the rest kept.
	var b Buffer
	b.WriteString("xyz")
	b.Next(1)
	copy(b.Extend(2), "12")
	if got := string(b.Bytes()); got != "yz12" {
		t.Errorf("after a read: %q, want %q", got, "yz12")
	}
}
