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
	"reflect"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// Set holds the objects read from manifests, keyed by namespace/name
// (cluster-scoped kinds by name).
type Set struct {
	Repositories map[string]*stashv1alpha1.Repository
	Secrets      map[string]*corev1.Secret
	// Namespaces are Namespace objects, keyed by name: their labels
	// decide Repository usagePolicy selectors.
	Namespaces           map[string]*corev1.Namespace
	BackupConfigurations map[string]*stashv1beta1.BackupConfiguration
	BackupSessions       map[string]*stashv1beta1.BackupSession
	RestoreSessions      map[string]*stashv1beta1.RestoreSession
	BackupBlueprints     map[string]*stashv1beta1.BackupBlueprint
	BackupBatches        map[string]*stashv1beta1.BackupBatch
	RestoreBatches       map[string]*stashv1beta1.RestoreBatch
	Functions            map[string]*stashv1beta1.Function
	Tasks                map[string]*stashv1beta1.Task
	AppBindings          map[string]*appcatalogv1alpha1.AppBinding
	// Other counts documents of kinds this package does not decode.
	Other map[string]int
	// Sources maps "Kind key" to the file and document it came from, for
	// every object, those of Other kinds too (a Deployment or a PVC a
	// BackupConfiguration targets), keyed by namespace/name.
	Sources map[string]string
	// Warnings are problems that do not stop loading, such as fields
	// Stash does not define (often a typo).
	Warnings []Warning
}

// Warning is a problem with one object that does not stop loading.
type Warning struct {
	Kind string `json:"kind"`
	// Key is namespace/name, or the name of a cluster-scoped object.
	Key    string `json:"key"`
	Source string `json:"source"`
	// Field is the path of the field at fault, e.g. spec.retentonPolicy.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (w Warning) String() string {
	f := ""
	if w.Field != "" {
		f = w.Field + ": "
	}
	return fmt.Sprintf("%s: %s %s: %s%s", w.Source, w.Kind, w.Key, f, w.Message)
}

// Source returns where an object was defined.
func (s *Set) Source(kind, key string) string { return s.Sources[kind+" "+key] }

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
		Repositories:         map[string]*stashv1alpha1.Repository{},
		Secrets:              map[string]*corev1.Secret{},
		Namespaces:           map[string]*corev1.Namespace{},
		BackupConfigurations: map[string]*stashv1beta1.BackupConfiguration{},
		BackupSessions:       map[string]*stashv1beta1.BackupSession{},
		RestoreSessions:      map[string]*stashv1beta1.RestoreSession{},
		BackupBlueprints:     map[string]*stashv1beta1.BackupBlueprint{},
		BackupBatches:        map[string]*stashv1beta1.BackupBatch{},
		RestoreBatches:       map[string]*stashv1beta1.RestoreBatch{},
		Functions:            map[string]*stashv1beta1.Function{},
		Tasks:                map[string]*stashv1beta1.Task{},
		AppBindings:          map[string]*appcatalogv1alpha1.AppBinding{},
		Other:                map[string]int{},
		Sources:              map[string]string{},
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
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
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
		if err := s.addDoc(doc, fmt.Sprintf("%s#%d", file, i)); err != nil {
			return fmt.Errorf("%s: document %d: %w", file, i, err)
		}
	}
}

func (s *Set) addDoc(doc []byte, where string) error {
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
	group := ""
	if i := strings.Index(tm.APIVersion, "/"); i >= 0 {
		group = tm.APIVersion[:i]
	}
	name := tm.Metadata.Name
	switch {
	case group == "stash.appscode.com" && tm.Kind == stashv1alpha1.KindRepository:
		return addNamespaced(s, doc, where, "Repository", name, s.Repositories, func(o *stashv1alpha1.Repository) *metav1.ObjectMeta { return &o.ObjectMeta })
	case group == "" && tm.Kind == "Secret":
		return addNamespaced(s, doc, where, "Secret", name, s.Secrets, func(o *corev1.Secret) *metav1.ObjectMeta {
			// stringData is write-only in Kubernetes: the API server
			// merges it into data, and so do we.
			if o.Data == nil {
				o.Data = map[string][]byte{}
			}
			for k, v := range o.StringData {
				o.Data[k] = []byte(v)
			}
			o.StringData = nil
			return &o.ObjectMeta
		})
	case group == "" && tm.Kind == "Namespace":
		return addCluster(s, doc, where, tm.Kind, name, s.Namespaces)
	case group == "stash.appscode.com" && tm.Kind == "BackupConfiguration":
		return addNamespaced(s, doc, where, tm.Kind, name, s.BackupConfigurations, func(o *stashv1beta1.BackupConfiguration) *metav1.ObjectMeta { return &o.ObjectMeta })
	case group == "stash.appscode.com" && tm.Kind == "BackupSession":
		return addNamespaced(s, doc, where, tm.Kind, name, s.BackupSessions, func(o *stashv1beta1.BackupSession) *metav1.ObjectMeta { return &o.ObjectMeta })
	case group == "stash.appscode.com" && tm.Kind == "RestoreSession":
		return addNamespaced(s, doc, where, tm.Kind, name, s.RestoreSessions, func(o *stashv1beta1.RestoreSession) *metav1.ObjectMeta { return &o.ObjectMeta })
	case group == "stash.appscode.com" && tm.Kind == "BackupBatch":
		return addNamespaced(s, doc, where, tm.Kind, name, s.BackupBatches, func(o *stashv1beta1.BackupBatch) *metav1.ObjectMeta { return &o.ObjectMeta })
	case group == "stash.appscode.com" && tm.Kind == "RestoreBatch":
		return addNamespaced(s, doc, where, tm.Kind, name, s.RestoreBatches, func(o *stashv1beta1.RestoreBatch) *metav1.ObjectMeta { return &o.ObjectMeta })
	case group == "stash.appscode.com" && tm.Kind == "BackupBlueprint":
		return addCluster(s, doc, where, tm.Kind, name, s.BackupBlueprints)
	case group == "stash.appscode.com" && tm.Kind == "Function":
		return addCluster(s, doc, where, tm.Kind, name, s.Functions)
	case group == "stash.appscode.com" && tm.Kind == "Task":
		return addCluster(s, doc, where, tm.Kind, name, s.Tasks)
	case group == "appcatalog.appscode.com" && tm.Kind == "AppBinding":
		return addNamespaced(s, doc, where, tm.Kind, name, s.AppBindings, func(o *appcatalogv1alpha1.AppBinding) *metav1.ObjectMeta { return &o.ObjectMeta })
	default:
		s.Other[tm.APIVersion+"/"+tm.Kind]++
		s.Sources[tm.Kind+" "+Key(tm.Metadata.Namespace, name)] = where
	}
	return nil
}

// decode unmarshals doc into out. Fields the type does not define, and
// fields given twice, are returned as warnings with their paths (strict
// decoding is tried only to find them), as the API server reports them.
func decode(doc []byte, kind, name string, out any) ([]Warning, error) {
	if err := yaml.Unmarshal(doc, out); err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	strict, err := sigsjson.UnmarshalStrict(js, reflectNew(out))
	if err != nil {
		// Decoded leniently above; the strict pass only finds fields.
		return []Warning{{Message: err.Error()}}, nil
	}
	var ws []Warning
	for _, e := range strict {
		w := Warning{Message: e.Error()}
		if fe, ok := e.(sigsjson.FieldError); ok {
			w.Field = fe.FieldPath()
			w.Message = strings.TrimSuffix(e.Error(), " "+strconv.Quote(w.Field))
			if strings.HasPrefix(w.Message, "unknown field") {
				w.Message += ": Stash does not define it; check its spelling and indentation"
			}
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// warn records decode's warnings for the object kind key.
func (s *Set) warn(ws []Warning, where, kind, key string) {
	for _, w := range ws {
		w.Kind, w.Key, w.Source = kind, key, where
		s.Warnings = append(s.Warnings, w)
	}
}

func addNamespaced[T any](s *Set, doc []byte, where, kind, name string, m map[string]*T, meta func(*T) *metav1.ObjectMeta) error {
	obj := new(T)
	ws, err := decode(doc, kind, name, obj)
	if err != nil {
		return err
	}
	om := meta(obj)
	if om.Namespace == "" {
		om.Namespace = DefaultNamespace
	}
	k := Key(om.Namespace, om.Name)
	if _, dup := m[k]; dup {
		return fmt.Errorf("%s %s is defined twice (again in %s)", kind, k, where)
	}
	s.warn(ws, where, kind, k)
	m[k] = obj
	s.Sources[kind+" "+k] = where
	return nil
}

func addCluster[T any](s *Set, doc []byte, where, kind, name string, m map[string]*T) error {
	obj := new(T)
	ws, err := decode(doc, kind, name, obj)
	if err != nil {
		return err
	}
	if _, dup := m[name]; dup {
		return fmt.Errorf("%s %s is defined twice (again in %s)", kind, name, where)
	}
	s.warn(ws, where, kind, name)
	m[name] = obj
	s.Sources[kind+" "+name] = where
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

// reflectNew returns a new zero value of the type out points to.
func reflectNew(out any) any {
	return reflect.New(reflect.TypeOf(out).Elem()).Interface()
}
