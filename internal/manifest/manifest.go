// Package manifest reads Kubernetes-style YAML manifests (files or
// directories, several documents per file) into typed objects, so that the
// CLI and the local runtime take the same manifests a cluster would.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// Set holds the objects read from manifests, keyed by namespace/name.
type Set struct {
	Repositories map[string]*stashv1alpha1.Repository
	Secrets      map[string]*corev1.Secret
	// Other counts documents of kinds this package does not decode.
	Other map[string]int
}

// DefaultNamespace is the namespace of objects whose metadata has none,
// as kubectl does.
const DefaultNamespace = "default"

// Key returns the map key of an object.
func Key(namespace, name string) string {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return namespace + "/" + name
}

// Load reads every .yaml, .yml and .json file in paths (directories are
// walked recursively) and decodes the documents it knows.
func Load(paths ...string) (*Set, error) {
	s := &Set{
		Repositories: map[string]*stashv1alpha1.Repository{},
		Secrets:      map[string]*corev1.Secret{},
		Other:        map[string]int{},
	}
	if len(paths) == 0 {
		return nil, errors.New("no manifest given: pass -f FILE_OR_DIR")
	}
	for _, p := range paths {
		files, err := manifestFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read manifest: %w", err)
			}
			if err := s.add(f, data); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func manifestFiles(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read manifests in %s: %w", p, err)
	}
	sort.Strings(files)
	return files, nil
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func (s *Set) add(file string, data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := s.addDoc(doc); err != nil {
			return fmt.Errorf("%s: document %d: %w", file, i, err)
		}
	}
}

func (s *Set) addDoc(doc []byte) error {
	var tm typeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if tm.Kind == "" && tm.APIVersion == "" {
		return nil // an empty or comment-only document
	}
	if tm.Kind == "" || tm.APIVersion == "" {
		return errors.New("apiVersion and kind are required")
	}
	if tm.Metadata.Name == "" {
		return fmt.Errorf("%s: metadata.name is required", tm.Kind)
	}
	group := tm.APIVersion
	if i := strings.Index(group, "/"); i >= 0 {
		group = group[:i]
	} else {
		group = ""
	}
	switch {
	case group == "stash.appscode.com" && tm.Kind == stashv1alpha1.KindRepository:
		var repo stashv1alpha1.Repository
		if err := yaml.Unmarshal(doc, &repo); err != nil {
			return fmt.Errorf("Repository %q: %w", tm.Metadata.Name, err)
		}
		if repo.Namespace == "" {
			repo.Namespace = DefaultNamespace
		}
		k := Key(repo.Namespace, repo.Name)
		if _, dup := s.Repositories[k]; dup {
			return fmt.Errorf("Repository %s is defined twice", k)
		}
		s.Repositories[k] = &repo
	case group == "" && tm.Kind == "Secret":
		var sec corev1.Secret
		if err := yaml.Unmarshal(doc, &sec); err != nil {
			return fmt.Errorf("Secret %q: %w", tm.Metadata.Name, err)
		}
		if sec.Namespace == "" {
			sec.Namespace = DefaultNamespace
		}
		// stringData is write-only in Kubernetes: the API server merges it
		// into data, and so do we.
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		for k, v := range sec.StringData {
			sec.Data[k] = []byte(v)
		}
		sec.StringData = nil
		k := Key(sec.Namespace, sec.Name)
		if _, dup := s.Secrets[k]; dup {
			return fmt.Errorf("Secret %s is defined twice", k)
		}
		s.Secrets[k] = &sec
	default:
		s.Other[tm.APIVersion+"/"+tm.Kind]++
	}
	return nil
}

// Repository returns the Repository named name. With an empty name, the
// set must hold exactly one Repository.
func (s *Set) Repository(namespace, name string) (*stashv1alpha1.Repository, error) {
	if name == "" {
		switch len(s.Repositories) {
		case 0:
			return nil, errors.New("no Repository found in the manifests: add a stash.appscode.com/v1alpha1 Repository")
		case 1:
			for _, r := range s.Repositories {
				return r, nil
			}
		default:
			names := make([]string, 0, len(s.Repositories))
			for k := range s.Repositories {
				names = append(names, k)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("the manifests hold %d Repositories (%s): choose one with --repository NAME", len(names), strings.Join(names, ", "))
		}
	}
	r, ok := s.Repositories[Key(namespace, name)]
	if !ok {
		return nil, fmt.Errorf("Repository %s not found in the manifests", Key(namespace, name))
	}
	return r, nil
}

// StorageSecret returns the data of the Secret named by a Repository's
// spec.backend.storageSecretName, in the Repository's namespace.
func (s *Set) StorageSecret(repo *stashv1alpha1.Repository) (map[string][]byte, error) {
	name := repo.Spec.Backend.StorageSecretName
	if name == "" {
		return nil, fmt.Errorf("Repository %s: spec.backend.storageSecretName is empty: name the Secret that holds RESTIC_PASSWORD", Key(repo.Namespace, repo.Name))
	}
	sec, ok := s.Secrets[Key(repo.Namespace, name)]
	if !ok {
		return nil, fmt.Errorf("Repository %s: Secret %s (spec.backend.storageSecretName) not found in the manifests: add it with -f", Key(repo.Namespace, repo.Name), Key(repo.Namespace, name))
	}
	return sec.Data, nil
}
