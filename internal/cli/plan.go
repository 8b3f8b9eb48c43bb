package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
	"github.com/stash-backup/stash/internal/validation"
)

// loadWithCatalog reads manifests and the catalog, the user's Functions
// and Tasks overriding the catalog's.
func loadWithCatalog(files []string) (*manifest.Set, *catalog.Catalog, error) {
	set, err := manifest.Load(files...)
	if err != nil {
		return nil, nil, err
	}
	cat, err := catalog.Builtin()
	if err != nil {
		return nil, nil, err
	}
	return set, cat.With(set.Functions, set.Tasks), nil
}

// injected shows what the operator adds to a workload's pod template (the
// backup sidecar or the restore init container and their volumes) as a
// PodTemplate, annotated with the workload it goes into.
func injected(ns, kind, name, what string, tpl corev1.PodTemplateSpec) *corev1.PodTemplate {
	return &corev1.PodTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodTemplate"},
		ObjectMeta: metav1.ObjectMeta{Name: strings.ToLower(kind) + "-" + name + "-stash", Namespace: ns, Annotations: map[string]string{
			"stash.appscode.com/injected-into": kind + "/" + name,
			"stash.appscode.com/injected":      what + ": added to the workload's pod template by the operator (the application's containers and volumes stay as they are)",
		}},
		Template: tpl,
	}
}

func newPlanCommand() *cobra.Command {
	var (
		files     []string
		namespace string
		backup    string
		restore   string
		session   string
		image     string
	)
	cmd := &cobra.Command{
		Use:   "plan -f DIR... (--backup NAME | --restore NAME)",
		Short: "Print the Job Stash runs for a BackupConfiguration's next session or for a RestoreSession",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (backup == "") == (restore == "") {
				return errors.New("give either --backup NAME (a BackupConfiguration) or --restore NAME (a RestoreSession)")
			}
			set, cat, err := loadWithCatalog(files)
			if err != nil {
				return err
			}
			img := plan.DefaultImage
			if image != "" {
				img, err = parseImage(image)
				if err != nil {
					return err
				}
			}
			l := validation.ManifestLookup{Set: set, Catalog: cat}
			var docs []any
			switch {
			case backup != "":
				bc, ok := set.BackupConfigurations[manifest.Key(namespace, backup)]
				if !ok {
					return fmt.Errorf("BackupConfiguration %s not found in the manifests", manifest.Key(namespace, backup))
				}
				if errs := validation.BackupConfiguration(bc, l); len(errs) > 0 {
					return fmt.Errorf("BackupConfiguration %s is invalid: %v", manifest.Key(namespace, backup), errs.ToAggregate())
				}
				repo, _ := l.Repository(orNS(bc.Spec.Repository.Namespace, bc.Namespace), bc.Spec.Repository.Name)
				if session == "" {
					// The name the trigger CronJob would give a session now.
					session = fmt.Sprintf("%s-%d", bc.Name, time.Now().Unix())
				}
				if t := bc.Spec.Target; bc.Spec.Task.Name == "" && sidecar.NewWorkload(t.Ref.Kind) != nil {
					// The sidecar model: what the operator adds to the
					// workload's pod template, as a PodTemplate.
					var tpl corev1.PodTemplateSpec
					plan.InjectSidecar(&tpl, plan.Sidecar{Config: bc, Repository: repo, Image: img})
					docs = append(docs, injected(bc.Namespace, t.Ref.Kind, t.Ref.Name, "backup sidecar", tpl))
					break
				}
				ab, _ := l.AppBinding(orNS(bc.Spec.Target.Ref.Namespace, bc.Namespace), bc.Spec.Target.Ref.Name)
				job, err := plan.BackupJob(plan.BackupRequest{Config: bc, AppBinding: ab, Session: session, Repository: repo, Catalog: cat, Image: img})
				if err != nil {
					return err
				}
				docs = append(docs, job)
			default:
				rs, ok := set.RestoreSessions[manifest.Key(namespace, restore)]
				if !ok {
					return fmt.Errorf("RestoreSession %s not found in the manifests", manifest.Key(namespace, restore))
				}
				if errs := validation.RestoreSession(rs, l); len(errs) > 0 {
					return fmt.Errorf("RestoreSession %s is invalid: %v", manifest.Key(namespace, restore), errs.ToAggregate())
				}
				repo, _ := l.Repository(orNS(rs.Spec.Repository.Namespace, rs.Namespace), rs.Spec.Repository.Name)
				if t := rs.Spec.Target; rs.Spec.Task.Name == "" && sidecar.NewWorkload(t.Ref.Kind) != nil {
					var tpl corev1.PodTemplateSpec
					plan.InjectRestoreInit(&tpl, plan.RestoreInit{Session: rs, Repository: repo, Image: img})
					docs = append(docs, injected(rs.Namespace, t.Ref.Kind, t.Ref.Name, "restore init container", tpl))
					break
				}
				var ab *appcatalogv1alpha1.AppBinding
				if t := rs.Spec.Target; t != nil && t.Ref.Kind == "AppBinding" {
					ab, _ = l.AppBinding(orNS(t.Ref.Namespace, rs.Namespace), t.Ref.Name)
				}
				jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, AppBinding: ab, Repository: repo, Catalog: cat, Image: img})
				if err != nil {
					return err
				}
				for _, j := range jobs {
					docs = append(docs, j)
				}
			}
			for _, d := range docs {
				raw, err := yaml.Marshal(d)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "---\n%s", raw)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&files, "filename", "f", nil, "files or directories of manifests")
	fl.StringVarP(&namespace, "namespace", "n", manifest.DefaultNamespace, "namespace of the invoker")
	fl.StringVar(&backup, "backup", "", "BackupConfiguration to plan a session of")
	fl.StringVar(&restore, "restore", "", "RestoreSession to plan")
	fl.StringVar(&session, "session", "", "BackupSession name to plan for (default <name>-<unix seconds>, as the trigger CronJob names it)")
	fl.StringVar(&image, "image", "", "stash image as registry/name:tag (default "+plan.DefaultImage.String()+")")
	return cmd
}

func orNS(ns, def string) string {
	if ns == "" {
		return def
	}
	return ns
}

func parseImage(s string) (plan.Image, error) {
	slash := strings.LastIndex(s, "/")
	colon := strings.LastIndex(s, ":")
	if slash < 0 || colon < slash {
		return plan.Image{}, fmt.Errorf("--image %q: use registry/name:tag", s)
	}
	return plan.Image{Registry: s[:slash], Name: s[slash+1 : colon], Tag: s[colon+1:]}, nil
}

func newAddonsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "addons", Short: "The addon catalog: Functions and Tasks per application and version"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the catalog's Tasks",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cat, err := catalog.Builtin()
			if err != nil {
				return err
			}
			for _, n := range cat.TaskNames() {
				t, _ := cat.Task(n)
				var steps []string
				for _, s := range t.Spec.Steps {
					steps = append(steps, s.Name)
				}
				fmt.Fprintf(stdout, "%-36s %s\n", n, strings.Join(steps, " -> "))
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "show NAME",
		Short: "Print a Task and its Functions as YAML",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cat, err := catalog.Builtin()
			if err != nil {
				return err
			}
			t, ok := cat.Task(args[0])
			fn, fok := cat.Function(args[0])
			if !ok && !fok {
				return fmt.Errorf("no Task or Function named %s: see stash addons list", args[0])
			}
			print := func(v any) error {
				raw, err := yaml.Marshal(v)
				if err == nil {
					fmt.Fprintf(stdout, "---\n%s", raw)
				}
				return err
			}
			if ok {
				if err := print(t); err != nil {
					return err
				}
				for _, s := range t.Spec.Steps {
					if f, ok := cat.Function(s.Name); ok {
						if err := print(f); err != nil {
							return err
						}
					}
				}
				return nil
			}
			return print(fn)
		},
	}, &cobra.Command{
		Use:   "manifests",
		Short: "Print every Function and Task as YAML for kubectl apply -f -",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cat, err := catalog.Builtin()
			if err != nil {
				return err
			}
			out, err := cat.Manifests()
			if err != nil {
				return err
			}
			_, err = stdout.Write(out)
			return err
		},
	})
	return cmd
}
