package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
)

// Kinds are the workload kinds backed up by sidecar.
var Kinds = []string{"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"}

// NewWorkload returns an empty object of a workload kind, or nil.
func NewWorkload(kind string) client.Object {
	switch kind {
	case "Deployment":
		return &appsv1.Deployment{}
	case "StatefulSet":
		return &appsv1.StatefulSet{}
	case "DaemonSet":
		return &appsv1.DaemonSet{}
	case "ReplicaSet":
		return &appsv1.ReplicaSet{}
	case "ReplicationController":
		return &corev1.ReplicationController{}
	}
	return nil
}

// KindOf is the workload kind of obj, or "".
func KindOf(obj client.Object) string {
	switch obj.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *appsv1.DaemonSet:
		return "DaemonSet"
	case *appsv1.ReplicaSet:
		return "ReplicaSet"
	case *corev1.ReplicationController:
		return "ReplicationController"
	}
	return ""
}

// Template is the pod template of a workload (nil for a
// ReplicationController without one).
func Template(obj client.Object) *corev1.PodTemplateSpec {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template
	case *appsv1.StatefulSet:
		return &w.Spec.Template
	case *appsv1.DaemonSet:
		return &w.Spec.Template
	case *appsv1.ReplicaSet:
		return &w.Spec.Template
	case *corev1.ReplicationController:
		return w.Spec.Template
	}
	return nil
}

// Invoker finds the BackupConfiguration that backs up a workload by
// sidecar: one without a Task whose target is the workload. When several
// do, the oldest wins (the others are Invalid, see Conflict).
func Invoker(ctx context.Context, r client.Reader, kind, namespace, name string) (*stashv1beta1.BackupConfiguration, error) {
	var list stashv1beta1.BackupConfigurationList
	if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list BackupConfigurations of namespace %s: %w", namespace, err)
	}
	var found []stashv1beta1.BackupConfiguration
	for _, bc := range list.Items {
		if Targets(&bc, kind, namespace, name) && bc.DeletionTimestamp.IsZero() {
			found = append(found, bc)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i].CreationTimestamp, found[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return found[i].Name < found[j].Name
	})
	return &found[0], nil
}

// Targets reports whether bc backs up the workload kind/namespace/name by
// sidecar.
func Targets(bc *stashv1beta1.BackupConfiguration, kind, namespace, name string) bool {
	t := bc.Spec.Target
	if bc.Spec.Task.Name != "" || t == nil || t.Ref.Kind != kind || t.Ref.Name != name {
		return false
	}
	ns := t.Ref.Namespace
	if ns == "" {
		ns = bc.Namespace
	}
	return ns == namespace && bc.Namespace == namespace
}

// Apply brings a workload's pod template and labels to what they should
// be: with the sidecar of the BackupConfiguration that backs it up, or
// without any. It changes obj in place and reports whether anything
// changed. A workload whose BackupConfiguration's Repository is not found
// keeps what it has (no rollout for a Repository that is briefly gone).
func Apply(ctx context.Context, r client.Reader, image plan.Image, obj client.Object) (bool, error) {
	kind := KindOf(obj)
	tpl := Template(obj)
	if kind == "" || tpl == nil {
		return false, nil
	}
	bc, err := Invoker(ctx, r, kind, obj.GetNamespace(), obj.GetName())
	if err != nil {
		return false, err
	}
	before := tpl.DeepCopy()
	labels := obj.GetLabels()
	if bc == nil {
		if !plan.HasSidecar(tpl) && labels[plan.LabelInjected] == "" {
			return false, nil
		}
		plan.RemoveSidecar(tpl)
		delete(labels, plan.LabelInjected)
		obj.SetLabels(labels)
		return true, nil
	}
	repo := &stashv1alpha1.Repository{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: bc.Namespace, Name: bc.Spec.Repository.Name}, repo); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("get Repository %s/%s: %w", bc.Namespace, bc.Spec.Repository.Name, err)
	}
	if bc.Spec.Repository.Namespace != "" && bc.Spec.Repository.Namespace != bc.Namespace {
		// The sidecar mounts the Repository's Secret, which only a
		// Repository of the workload's namespace can offer; validation
		// says so on the BackupConfiguration.
		return false, nil
	}
	plan.InjectSidecar(tpl, plan.Sidecar{Config: bc, Repository: repo, Image: image})
	changed := !Covers(tpl, before)
	if labels == nil {
		labels = map[string]string{}
	}
	if want := plan.LabelValue(bc.Name); labels[plan.LabelInjected] != want {
		labels[plan.LabelInjected] = want
		obj.SetLabels(labels)
		changed = true
	}
	if !changed {
		// Keep the API server's defaults of the sidecar as they are.
		*tpl = *before
	}
	return changed, nil
}

// Covers reports whether every field set in want holds the same value in
// have, list lengths equal: have may hold more (the defaults the API
// server filled in). It compares what Apply computed with what a
// workload stores, so that a template that only lacks defaults is not
// written again.
func Covers(want, have *corev1.PodTemplateSpec) bool {
	var w, h any
	if err := roundTrip(want, &w); err != nil {
		return false
	}
	if err := roundTrip(have, &h); err != nil {
		return false
	}
	return covers(w, h)
}

func roundTrip(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func covers(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return len(w) == 0 && have == nil
		}
		for k, v := range w {
			if !covers(v, h[k]) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return len(w) == 0 && have == nil
		}
		for i := range w {
			if !covers(w[i], h[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, have)
	}
}
