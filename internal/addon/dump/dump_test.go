package dump

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	var l Lines
	for i := 1; i <= keepLines+10; i++ {
		l.Add([]byte(fmt.Sprintf("statement %d;", i)))
	}
	l.Add([]byte(strings.Repeat("x", 2*maxLineKept)))
	if _, ok := l.At(5); ok {
		t.Error("line 5 should have left the ring")
	}
	if s, ok := l.At(keepLines + 10); !ok || s != fmt.Sprintf("statement %d;", keepLines+10) {
		t.Errorf("recent line: %q %v", s, ok)
	}
	if s, _ := l.At(keepLines + 11); len(s) != maxLineKept {
		t.Errorf("long line kept %d bytes", len(s))
	}
	re := regexp.MustCompile(`at line (\d+)`)
	if q := l.Quote(fmt.Sprintf("ERROR 1050 at line %d: exists", keepLines+9), re); q != fmt.Sprintf(" (dump line %d: statement %d;)", keepLines+9, keepLines+9) {
		t.Errorf("quote %q", q)
	}
	if q := l.Quote("ERROR at line 3", re); q != "" {
		t.Errorf("evicted line quoted: %q", q)
	}
	if q := l.Quote("no line here", re); q != "" {
		t.Errorf("quote without a line: %q", q)
	}
}
