package elasticsearch

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File types of multielasticdump's layout: <index>.json holds the data,
// <index>.<type>.json the others.
const (
	TypeData     = "data"
	TypeMapping  = "mapping"
	TypeSettings = "settings"
	TypeTemplate = "template"
	TypeAlias    = "alias"
	TypeAnalyzer = "analyzer"
	TypeIndex    = "index"
	// The composable templates of Elasticsearch 7.8+ and OpenSearch, in
	// elasticdump's spelling (--type=component_template and
	// index_template). They belong to the cluster, not to an index:
	// each kind is one file, named with a leading underscore, which no
	// index name has.
	TypeComponentTemplate = "component_template"
	TypeIndexTemplate     = "index_template"
	// TypeDataStream's file names the data streams of the backup: their
	// documents are in <stream>.json, as an index's, and a restore
	// writes them into a data stream of that name. It goes with the data
	// (no type of its own in --includeType).
	TypeDataStream = "data_stream"
)

// templateKinds are the composable template kinds, in the order a
// restore puts them: an index template may be composed of component
// templates.
var templateKinds = []string{TypeComponentTemplate, TypeIndexTemplate}

// clusterFiles are the files of cluster-wide types, restored before any
// index in this order: the templates, then the data streams they make.
var clusterFiles = []string{TypeComponentTemplate, TypeIndexTemplate, TypeDataStream}

// ClusterFileName is the file of a cluster-wide type: _<type>.json.
func ClusterFileName(t string) string { return "_" + t + ".json" }

// Args are the options of a Function's args param (--es-args), in
// multielasticdump's spelling where it has one, so that the args Stash's
// users gave multielasticdump keep their meaning.
type Args struct {
	// Match selects indices whose name, or an alias of which, matches
	// (multielasticdump --match, case-insensitive); nil: every index.
	Match *regexp.Regexp
	// Exclude leaves out indices whose name matches (--exclude).
	Exclude *regexp.Regexp
	// MatchTypes are what --match selects among (multielasticdump's
	// --matchType): "alias" indices (by name or alias), "datastream"
	// data streams (by name). Both by default here; multielasticdump's
	// default was indices alone, which left data streams out.
	MatchTypes map[string]bool
	// IncludeHidden backs up system and hidden indices (names starting
	// with a dot, index.hidden), which are left out by default, as
	// elasticdump's wildcard listings leave them out (--include-hidden).
	IncludeHidden bool
	// Types are the file types dumped or loaded (multielasticdump's
	// --ignoreType and --includeType): by default data, mapping,
	// settings, template, alias, component_template and index_template.
	Types map[string]bool
	// Limit is how many documents one request reads (--limit).
	Limit int
	// Slices is how many slices of an index are read, and how many bulk
	// requests are sent, at once (--parallel, --slices).
	Slices int
	// KeepAlive is how long the server keeps a scroll or point in time
	// between requests (--scrollTime).
	KeepAlive time.Duration
	// Prefix and Suffix rename the indices a restore writes
	// (multielasticdump --prefix and --suffix).
	Prefix, Suffix string
	// Existing is what a restore does with an index that exists:
	// "overwrite" (documents written over, as Stash's restores did) or
	// "refuse" (--existing).
	Existing string
}

func defaultArgs() Args {
	return Args{
		Types: map[string]bool{TypeData: true, TypeMapping: true, TypeSettings: true, TypeTemplate: true, TypeAlias: true,
			TypeComponentTemplate: true, TypeIndexTemplate: true},
		Limit: 1000, Slices: 4, KeepAlive: 5 * time.Minute, Existing: "overwrite",
		MatchTypes: map[string]bool{"alias": true, "datastream": true},
	}
}

var knownTypes = []string{TypeData, TypeMapping, TypeSettings, TypeTemplate, TypeAlias, TypeAnalyzer, TypeIndex,
	TypeComponentTemplate, TypeIndexTemplate}

// ignoredArgs are multielasticdump options that change nothing here:
// logging, and tuning of its own child processes.
var ignoredArgs = map[string]bool{
	"quiet": true, "debug": true, "concurrency": true, "concurrencyInterval": true, "intervalCap": true,
	"carryoverConcurrencyCount": true, "interval": true, "ignoreChildError": true, "noRefresh": true,
	"scroll-with-post": true, "overwrite": true, "direction": true, "order": true,
}

// ParseArgs reads the --es-args of a backup or a restore. An option this
// addon does not know is refused by name, never passed over silently.
func ParseArgs(fields []string) (Args, error) {
	a := defaultArgs()
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if !strings.HasPrefix(f, "--") {
			return a, fmt.Errorf("%q: give options as --name=value", f)
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		needVal := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 < len(fields) && !strings.HasPrefix(fields[i+1], "--") {
				i++
				return fields[i], nil
			}
			return "", fmt.Errorf("--%s needs a value", name)
		}
		var err error
		switch name {
		case "match", "exclude":
			var v string
			if v, err = needVal(); err != nil {
				return a, err
			}
			re, cerr := regexp.Compile("(?i)" + v)
			if cerr != nil {
				return a, fmt.Errorf("--%s=%q: not a regular expression: %w", name, v, cerr)
			}
			if name == "match" {
				a.Match = re
			} else {
				a.Exclude = re
			}
		case "include-hidden":
			a.IncludeHidden = !hasVal || val == "true"
		case "matchType":
			var v string
			if v, err = needVal(); err != nil {
				return a, err
			}
			a.MatchTypes = map[string]bool{}
			for _, t := range strings.Split(v, ",") {
				switch t = strings.TrimSpace(t); t {
				case "alias", "datastream":
					a.MatchTypes[t] = true
				case "":
				default:
					return a, fmt.Errorf("--matchType: unknown type %q: give alias (indices), datastream (data streams) or both, comma-separated", t)
				}
			}
			if len(a.MatchTypes) == 0 {
				return a, errors.New("--matchType: give alias (indices), datastream (data streams) or both")
			}
		case "ignoreType", "includeType":
			var v string
			if v, err = needVal(); err != nil {
				return a, err
			}
			var list []string
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t == "" {
					continue
				}
				if !contains(knownTypes, t) {
					return a, fmt.Errorf("--%s: unknown type %q: give some of %s", name, t, strings.Join(knownTypes, ", "))
				}
				list = append(list, t)
			}
			if name == "ignoreType" {
				for _, t := range list {
					delete(a.Types, t)
				}
			} else {
				a.Types = map[string]bool{}
				for _, t := range list {
					a.Types[t] = true
				}
			}
		case "limit", "parallel", "slices":
			var v string
			if v, err = needVal(); err != nil {
				return a, err
			}
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 1 || n > 10000 {
				return a, fmt.Errorf("--%s=%q: give a number from 1 to 10000", name, v)
			}
			if name == "limit" {
				a.Limit = n
			} else {
				a.Slices = min(n, 64)
			}
		case "scrollTime":
			var v string
			if v, err = needVal(); err != nil {
				return a, err
			}
			d, perr := time.ParseDuration(v)
			if perr != nil || d < time.Second {
				return a, fmt.Errorf("--scrollTime=%q: give a duration such as 10m", v)
			}
			a.KeepAlive = d
		case "prefix", "suffix":
			var v string
			if v, err = needVal(); err != nil {
				return a, err
			}
			if strings.ContainsAny(v, `/\*?"<>| ,#`) || v != strings.ToLower(v) {
				return a, fmt.Errorf("--%s=%q: an index name part must be lowercase, without spaces or any of / \\ * ? \" < > | , #", name, v)
			}
			if name == "prefix" {
				a.Prefix = v
			} else {
				a.Suffix = v
			}
		case "existing":
			var v string
			if v, err = needVal(); err != nil {
				return a, err
			}
			if v != "overwrite" && v != "refuse" {
				return a, fmt.Errorf("--existing=%q: give overwrite (documents written over an existing index) or refuse", v)
			}
			a.Existing = v
		default:
			if ignoredArgs[name] {
				if !hasVal && i+1 < len(fields) && !strings.HasPrefix(fields[i+1], "--") {
					i++
				}
				continue
			}
			return a, fmt.Errorf("--%s is not an option this addon takes: it takes --match, --exclude, --include-hidden, --ignoreType, --includeType, --limit, --parallel, --scrollTime, --prefix, --suffix and --existing", name)
		}
	}
	return a, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Selected tells whether an index, with its aliases, is backed up.
func (a Args) Selected(name string, aliases []string, hidden bool) bool {
	if (strings.HasPrefix(name, ".") || hidden) && !a.IncludeHidden {
		return false
	}
	if a.Exclude != nil && a.Exclude.MatchString(name) {
		return false
	}
	if a.Match == nil || a.Match.MatchString(name) {
		return true
	}
	for _, al := range aliases {
		if a.Match.MatchString(al) {
			return true
		}
	}
	return false
}

// Target is the name a restore writes index name to.
func (a Args) Target(name string) string { return a.Prefix + name + a.Suffix }

// FileName is the name of an index's file of type t in the layout.
func FileName(index, t string) string {
	if t == TypeData {
		return index + ".json"
	}
	return index + "." + t + ".json"
}

// ParseFileName splits a file name of the layout into its index and type;
// ok is false for a file that is not of the layout. A cluster-wide file
// (ClusterFileName) has no index.
func ParseFileName(name string) (index, t string, ok bool) {
	base, found := strings.CutSuffix(name, ".json")
	if !found || base == "" {
		return "", "", false
	}
	if strings.HasPrefix(base, "_") {
		for _, ct := range clusterFiles {
			if base == "_"+ct {
				return "", ct, true
			}
		}
		return "", "", false
	}
	for _, kt := range knownTypes {
		if kt == TypeData || slices.Contains(clusterFiles, kt) {
			continue
		}
		if ix, found := strings.CutSuffix(base, "."+kt); found && ix != "" {
			return ix, kt, true
		}
	}
	return base, TypeData, true
}

// typeRank orders an index's files for a restore: templates first, then
// what makes the index (settings, analyzers, mappings, aliases), then the
// data.
var typeRank = map[string]int{TypeComponentTemplate: -3, TypeIndexTemplate: -2, TypeDataStream: -1,
	TypeTemplate: 0, TypeIndex: 1, TypeSettings: 2, TypeAnalyzer: 3, TypeMapping: 4, TypeAlias: 5, TypeData: 6}

// RestoreOrder compares two file names of the layout for a restore: the
// cluster-wide files first (their index is "", before every name), then
// every index's metadata by index and typeRank, then the data files by
// index; names not of the layout go last. Every index is made before any
// document is written: a refused index (--existing=refuse) stops the
// restore before it has changed any index, and the documents of one index
// follow another's without waiting for the next index to be made.
func RestoreOrder(a, b string) int {
	ia, ta, oka := ParseFileName(a)
	ib, tb, okb := ParseFileName(b)
	switch {
	case !oka || !okb:
		return boolCmp(oka, okb, a, b)
	case (ta == TypeData) != (tb == TypeData):
		if ta == TypeData {
			return 1
		}
		return -1
	case ia != ib:
		return strings.Compare(ia, ib)
	}
	return typeRank[ta] - typeRank[tb]
}

func boolCmp(oka, okb bool, a, b string) int {
	switch {
	case oka && !okb:
		return -1
	case !oka && okb:
		return 1
	}
	return strings.Compare(a, b)
}
