// Package catalog holds the Functions and Tasks a plan may use: the
// embedded addon catalog, overridden by any the user's manifests define.
package catalog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/stash-backup/stash/addons"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// Catalog is a set of Functions and Tasks by name.
type Catalog struct {
	Functions map[string]*stashv1beta1.Function
	Tasks     map[string]*stashv1beta1.Task
	// Files maps each object ("Function/name") to its catalog file.
	Files map[string]string
}

// Function implements plan.Catalog.
func (c *Catalog) Function(name string) (*stashv1beta1.Function, bool) {
	f, ok := c.Functions[name]
	return f, ok
}

// Task implements plan.Catalog.
func (c *Catalog) Task(name string) (*stashv1beta1.Task, bool) {
	t, ok := c.Tasks[name]
	return t, ok
}

// Builtin loads the embedded addon catalog.
func Builtin() (*Catalog, error) {
	c := &Catalog{Functions: map[string]*stashv1beta1.Function{}, Tasks: map[string]*stashv1beta1.Task{}, Files: map[string]string{}}
	err := fs.WalkDir(addons.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := addons.FS.ReadFile(p)
		if err != nil {
			return err
		}
		return c.addFile(p, data)
	})
	if err != nil {
		return nil, fmt.Errorf("load addon catalog: %w", err)
	}
	return c, nil
}

func (c *Catalog) addFile(name string, data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		var tm struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch tm.Kind {
		case "Function":
			var f stashv1beta1.Function
			if err := yaml.UnmarshalStrict(doc, &f); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			c.Functions[f.Name] = &f
			c.Files["Function/"+f.Name] = name
		case "Task":
			var t stashv1beta1.Task
			if err := yaml.UnmarshalStrict(doc, &t); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			c.Tasks[t.Name] = &t
			c.Files["Task/"+t.Name] = name
		case "":
		default:
			return fmt.Errorf("%s: unexpected kind %s in the catalog", name, tm.Kind)
		}
	}
}

// With returns a catalog where the given Functions and Tasks (from the
// user's manifests) replace catalog entries of the same name.
func (c *Catalog) With(fns map[string]*stashv1beta1.Function, tasks map[string]*stashv1beta1.Task) *Catalog {
	out := &Catalog{Functions: map[string]*stashv1beta1.Function{}, Tasks: map[string]*stashv1beta1.Task{}, Files: c.Files}
	for k, v := range c.Functions {
		out.Functions[k] = v
	}
	for k, v := range c.Tasks {
		out.Tasks[k] = v
	}
	for k, v := range fns {
		out.Functions[k] = v
	}
	for k, v := range tasks {
		out.Tasks[k] = v
	}
	return out
}

// TaskNames lists the Tasks, sorted.
func (c *Catalog) TaskNames() []string {
	var out []string
	for n := range c.Tasks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Manifests renders every Function and Task as multi-document YAML, for
// `kubectl apply -f -`.
func (c *Catalog) Manifests() ([]byte, error) {
	var b bytes.Buffer
	names := make([]string, 0, len(c.Functions))
	for n := range c.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	write := func(v any, kind string) error {
		raw, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(raw)
		return nil
	}
	for _, n := range names {
		f := *c.Functions[n]
		f.APIVersion, f.Kind = stashv1beta1.GroupVersion.String(), "Function"
		if err := write(&f, "Function"); err != nil {
			return nil, err
		}
	}
	for _, n := range c.TaskNames() {
		t := *c.Tasks[n]
		t.APIVersion, t.Kind = stashv1beta1.GroupVersion.String(), "Task"
		if err := write(&t, "Task"); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}
