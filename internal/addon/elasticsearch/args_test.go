package elasticsearch

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args    string
		check   func(Args) bool
		wantErr string
	}{
		{"", func(a Args) bool {
			return a.Limit == 1000 && a.Slices == 4 && a.Types[TypeData] && a.Types[TypeAlias] && !a.Types[TypeAnalyzer] && a.Existing == "overwrite"
		}, ""},
		{"--match=^logs- --limit 500", func(a Args) bool { return a.Match.MatchString("LOGS-1") && a.Limit == 500 }, ""},
		{"--ignoreType=template,alias", func(a Args) bool { return !a.Types[TypeTemplate] && !a.Types[TypeAlias] && a.Types[TypeData] }, ""},
		{"--includeType=data,mapping", func(a Args) bool { return len(a.Types) == 2 && a.Types[TypeMapping] }, ""},
		{"--prefix=old- --suffix=-2026 --existing=refuse", func(a Args) bool { return a.Target("x") == "old-x-2026" && a.Existing == "refuse" }, ""},
		{"--scrollTime=10m --parallel=8 --quiet --debug", func(a Args) bool { return a.KeepAlive == 10*time.Minute && a.Slices == 8 }, ""},
		{"--include-hidden --exclude=^tmp", func(a Args) bool { return a.IncludeHidden && !a.Selected("tmp1", nil, false) }, ""},
		{"", func(a Args) bool { return a.MatchTypes["alias"] && a.MatchTypes["datastream"] }, ""},
		{"--matchType=datastream", func(a Args) bool { return !a.MatchTypes["alias"] && a.MatchTypes["datastream"] }, ""},
		{"--matchType alias,datastream", func(a Args) bool { return a.MatchTypes["alias"] && a.MatchTypes["datastream"] }, ""},
		{"--matchType=index", nil, `unknown type "index"`},
		{"--limit=0", nil, "--limit"},
		{"--ignoreType=bogus", nil, `unknown type "bogus"`},
		{"--match=(", nil, "not a regular expression"},
		{"--prefix=Old", nil, "lowercase"},
		{"--existing=merge", nil, "give overwrite"},
		{"--searchBody={}", nil, "--searchBody is not an option"},
		{"logs", nil, "--name=value"},
	} {
		a, err := ParseArgs(strings.Fields(tc.args))
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case !tc.check(a):
			t.Errorf("%q: parsed %+v", tc.args, a)
		}
	}
}

func TestSelected(t *testing.T) {
	a, _ := ParseArgs([]string{"--match=^shop"})
	for _, tc := range []struct {
		name    string
		aliases []string
		hidden  bool
		want    bool
	}{
		{"shop", nil, false, true},
		{"orders", []string{"shop-read"}, false, true},
		{"orders", nil, false, false},
		{".shop", nil, false, false},
		{"shop-hidden", nil, true, false},
	} {
		if got := a.Selected(tc.name, tc.aliases, tc.hidden); got != tc.want {
			t.Errorf("Selected(%q, %v, %v) = %v", tc.name, tc.aliases, tc.hidden, got)
		}
	}
}

func TestFileNames(t *testing.T) {
	for _, tc := range []struct{ name, index, typ string }{
		{"logs.json", "logs", TypeData},
		{"logs.mapping.json", "logs", TypeMapping},
		{"logs.v2.settings.json", "logs.v2", TypeSettings},
		{"a.template.json", "a", TypeTemplate},
		{".kibana_1.alias.json", ".kibana_1", TypeAlias},
	} {
		ix, ty, ok := ParseFileName(tc.name)
		if !ok || ix != tc.index || ty != tc.typ {
			t.Errorf("ParseFileName(%q) = %q %q %v", tc.name, ix, ty, ok)
		}
		if got := FileName(ix, ty); got != tc.name {
			t.Errorf("FileName(%q, %q) = %q", ix, ty, got)
		}
	}
	if _, _, ok := ParseFileName("notes.txt"); ok {
		t.Error("notes.txt parsed as a file of the layout")
	}
	names := []string{"b.json", "b.mapping.json", "a.json", "readme", "a.alias.json", "a.settings.json", "a.template.json", "b.settings.json"}
	slices.SortStableFunc(names, RestoreOrder)
	want := []string{"a.template.json", "a.settings.json", "a.alias.json", "b.settings.json", "b.mapping.json", "a.json", "b.json", "readme"}
	if !slices.Equal(names, want) {
		t.Errorf("restore order %v, want %v", names, want)
	}
}

func TestApplyingTemplate(t *testing.T) {
	ts := []indexTemplate{
		{Name: "logs", Patterns: []string{"logs-*"}, Priority: 100, Stream: true},
		{Name: "logs-plain", Patterns: []string{"logs-plain*"}, Priority: 200},
		{Name: "all", Patterns: []string{"*"}},
		{Name: "mid", Patterns: []string{"m*x*y"}, Priority: 5, Stream: true},
	}
	for name, want := range map[string]string{
		"logs-app":    "logs",       // the stream template applies
		"logs-plain1": "logs-plain", // a higher priority one without data_stream wins
		"shop":        "all",
		"mxay":        "mid",
		"mxa":         "all", // m*x*y needs a y at the end
		"my":          "all", // and an x between
	} {
		got := applyingTemplate(ts, name)
		if got == nil || got.Name != want {
			t.Errorf("applyingTemplate(%q) = %+v, want %s", name, got, want)
		}
	}
	if got := applyingTemplate(ts[:2], "shop"); got != nil {
		t.Errorf("no pattern matches shop, got %+v", got)
	}
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{{"a*a", "a", false}, {"a*a", "aa", true}, {"*", "", true}, {"ab", "ab", true}, {"ab", "abc", false}, {"*ab*b", "xab", false}, {"*ab*b", "xabb", true}} {
		if got := wildcardMatch(c.pattern, c.name); got != c.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}
