package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// FuzzLoad loads arbitrary manifest files. What must hold: an error names
// the file; every object is stored under the key its own metadata gives
// (so a lookup by namespace/name finds what the document said) and knows
// its source; and writing the loaded objects out and loading them again
// gives the same objects (nothing is lost or invented on the way in).
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"apiVersion: stash.appscode.com/v1alpha1\nkind: Repository\nmetadata: {name: r, namespace: demo}\nspec:\n  backend:\n    s3: {endpoint: s3.amazonaws.com, bucket: b}\n    storageSecretName: s\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {RESTIC_PASSWORD: pw}\ndata: {AWS_ACCESS_KEY_ID: YQ==}\n",
		"apiVersion: stash.appscode.com/v1beta1\nkind: BackupConfiguration\nmetadata: {name: bc}\nspec:\n  schedule: '@daily'\n  task: {name: pvc-backup, params: [{name: args, value: x}]}\n  target: {ref: {kind: PersistentVolumeClaim, name: data}}\n  runtimeSettings: {container: {resources: {requests: {cpu: 100m, memory: 1Gi}}}}\n",
		"apiVersion: stash.appscode.com/v1beta1\nkind: Function\nmetadata: {name: f}\nspec: {image: 'x:${TAG:=1}'}\n---\napiVersion: stash.appscode.com/v1beta1\nkind: Task\nmetadata: {name: t}\nspec: {steps: [{name: f}]}\n",
		"apiVersion: appcatalog.appscode.com/v1alpha1\nkind: AppBinding\nmetadata: {name: db, namespace: demo}\nspec:\n  clientConfig: {url: 'postgres://db:5432'}\n  parameters: {kind: StashAddon, stash: {addon: {backupTask: {name: x}}}}\n",
		"---\n# only a comment\n---\n",
		"{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"demo\", \"labels\": {\"team\": \"c\"}}}",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
		"kind: Secret\nmetadata: {name: s}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\n",
		"apiVersion: stash.appscode.com/v1beta1\nkind: RestoreSession\nmetadata: {name: rs}\nspec: {target: {replicas: 3}, unknownField: 1}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s, name: t}\n",
		"\t- [",
	} {
		f.Add([]byte(s))
	}
	empty := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// A manifest that takes this long is a hang (a user's stash
		// validate or the local runtime would stop): fail loudly, so
		// that the fuzzer keeps the input.
		hang := time.AfterFunc(30*time.Second, func() { panic(fmt.Sprintf("loading %d bytes took over 30s: %q", len(data), data)) })
		defer hang.Stop()
		// What Load does for each file, without the disk: the fuzzer
		// spends its time in the parser, not in writing files.
		const file = "/manifests/m.yaml"
		set := emptySet(t, empty)
		if err := set.add(file, data); err != nil {
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		docs := checkKeys(t, set)
		// Load what was loaded again, from one file of all its objects.
		var out bytes.Buffer
		for _, d := range docs {
			raw, err := yaml.Marshal(d.obj)
			if err != nil {
				t.Fatalf("%s %s: %v", d.kind, d.key, err)
			}
			out.WriteString("---\n")
			out.Write(raw)
		}
		set2 := emptySet(t, empty)
		if err := set2.add("/manifests/again.yaml", out.Bytes()); err != nil {
			t.Fatalf("loaded objects do not load again: %v\n%s", err, out.Bytes())
		}
		docs2 := checkKeys(t, set2)
		if len(docs2) != len(docs) {
			t.Fatalf("%d objects, %d after a round trip:\n%s", len(docs), len(docs2), out.Bytes())
		}
		for i := range docs {
			a, _ := json.Marshal(docs[i].obj)
			b, _ := json.Marshal(docs2[i].obj)
			if docs[i].key != docs2[i].key || !bytes.Equal(a, b) {
				t.Fatalf("%s %s changed in a round trip:\n%s\n%s", docs[i].kind, docs[i].key, a, b)
			}
		}
	})
}

// clusterScoped are the Set's maps of cluster-scoped kinds, keyed by name
// alone (a namespace in their metadata means nothing).
var clusterScoped = map[string]bool{"Namespaces": true, "BackupBlueprints": true, "Functions": true, "Tasks": true}

// emptySet is the Set Load starts from (Load of an empty directory), so
// that fields added to Set later are initialised as Load does.
func emptySet(t *testing.T, emptyDir string) *Set {
	t.Helper()
	set, err := Load(emptyDir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

type loaded struct {
	kind, key string
	obj       any
}

// checkKeys checks that every object of every map of the Set (found by
// reflection, so kinds added later are covered) sits under its own key
// and has a source, and returns them sorted by map and key.
func checkKeys(t *testing.T, set *Set) []loaded {
	t.Helper()
	var out []loaded
	v := reflect.ValueOf(set).Elem()
	for i := 0; i < v.NumField(); i++ {
		m := v.Field(i)
		if m.Kind() != reflect.Map || m.Type().Elem().Kind() != reflect.Pointer {
			continue // Other and Sources, which are not objects
		}
		field := v.Type().Field(i).Name
		keys := m.MapKeys()
		sort.Slice(keys, func(a, b int) bool { return keys[a].String() < keys[b].String() })
		for _, k := range keys {
			obj := m.MapIndex(k).Interface()
			meta := reflect.ValueOf(obj).Elem().FieldByName("ObjectMeta")
			name := meta.FieldByName("Name").String()
			ns := meta.FieldByName("Namespace").String()
			kind := reflect.ValueOf(obj).Elem().FieldByName("TypeMeta").FieldByName("Kind").String()
			want := Key(ns, name)
			if clusterScoped[field] {
				want = name
			}
			if k.String() != want || name == "" {
				t.Fatalf("%s: object %s/%s stored under %q", field, ns, name, k.String())
			}
			if set.Source(kind, k.String()) == "" {
				t.Fatalf("%s %s has no source", kind, k.String())
			}
			out = append(out, loaded{kind: field, key: k.String(), obj: obj})
		}
	}
	return out
}
