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
	return oldest(found), nil
}

// oldest is the first created of objs (by name among equals), or nil.
func oldest[T any, P interface {
	*T
	client.Object
}](objs []T) P {
	if len(objs) == 0 {
		return nil
	}
	sort.Slice(objs, func(i, j int) bool {
		a, b := P(&objs[i]).GetCreationTimestamp(), P(&objs[j]).GetCreationTimestamp()
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return P(&objs[i]).GetName() < P(&objs[j]).GetName()
	})
	return P(&objs[0])
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

// RestoreInvoker finds the RestoreSession that restores a workload by
// init container: one without a Task whose target is the workload, which
// the operator has planned (Running or finished; an init container waits
// for no plan). The oldest wins.
func RestoreInvoker(ctx context.Context, r client.Reader, kind, namespace, name string) (*stashv1beta1.RestoreSession, error) {
	var list stashv1beta1.RestoreSessionList
	if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list RestoreSessions of namespace %s: %w", namespace, err)
	}
	var found []stashv1beta1.RestoreSession
	for _, rs := range list.Items {
		t := rs.Spec.Target
		if rs.Spec.Task.Name != "" || t == nil || t.Ref.Kind != kind || t.Ref.Name != name || !rs.DeletionTimestamp.IsZero() {
			continue
		}
		if t.Ref.Namespace != "" && t.Ref.Namespace != namespace {
			continue
		}
		switch rs.Status.Phase {
		case stashv1beta1.RestoreRunning, stashv1beta1.RestoreSucceeded, stashv1beta1.RestoreFailed:
			found = append(found, rs)
		}
	}
	return oldest(found), nil
}

// verdict says whether the operator has validated bc at its current
// generation, and if so whether it passed: a sidecar goes only into
// workloads of a BackupConfiguration found valid, so that settings the
// operator refuses (privileged ones without the admission policy, say)
// never reach a pod.
func verdict(bc *stashv1beta1.BackupConfiguration) (checked, valid bool) {
	if bc == nil || bc.Status.ObservedGeneration != bc.Generation {
		return false, false
	}
	return true, bc.Status.Phase != stashv1beta1.InvokerInvalid
}

// Injection is the operator's part of what goes into workloads: the
// image, and the default resources of the sidecar and init container.
type Injection struct {
	Image     plan.Image
	Resources *corev1.ResourceRequirements
}

// Apply brings a workload's pod template and labels to what they should
// be: with the backup sidecar of the BackupConfiguration that backs it up
// and the init container of the RestoreSession that restores it, or
// without them. It changes obj in place and reports whether anything
// changed. What an invoker whose Repository is not found would inject is
// left as it is (no rollout for a Repository that is briefly gone).
func Apply(ctx context.Context, r client.Reader, in Injection, obj client.Object) (bool, error) {
	kind := KindOf(obj)
	tpl := Template(obj)
	if kind == "" || tpl == nil {
		return false, nil
	}
	ns := obj.GetNamespace()
	before := tpl.DeepCopy()
	bc, err := Invoker(ctx, r, kind, ns, obj.GetName())
	if err != nil {
		return false, err
	}
	switch checked, valid := verdict(bc); {
	case bc == nil || checked && !valid:
		plan.RemoveSidecar(tpl)
	case !checked:
		// Not validated at this generation yet: the BackupConfiguration's
		// status change brings this back.
	default:
		repo, err := sameNamespaceRepository(ctx, r, ns, bc.Spec.Repository)
		if err != nil {
			return false, err
		}
		if repo != nil {
			plan.InjectSidecar(tpl, plan.Sidecar{Config: bc, Repository: repo, Image: in.Image, Resources: in.Resources})
		}
	}
	rs, err := RestoreInvoker(ctx, r, kind, ns, obj.GetName())
	if err != nil {
		return false, err
	}
	if rs == nil {
		plan.RemoveRestoreInit(tpl)
	} else if repo, err := sameNamespaceRepository(ctx, r, ns, rs.Spec.Repository); err != nil {
		return false, err
	} else if repo != nil {
		plan.InjectRestoreInit(tpl, plan.RestoreInit{Session: rs, Repository: repo, Image: in.Image, Resources: in.Resources})
	}
	changed := !Covers(tpl, before)
	if !changed {
		// Keep the API server's defaults of what was injected before.
		*tpl = *before
	}
	labels := obj.GetLabels()
	injected := plan.HasSidecar(tpl) || plan.HasRestoreInit(tpl)
	if _, has := labels[plan.LabelInjected]; has != injected {
		if injected {
			if labels == nil {
				labels = map[string]string{}
			}
			labels[plan.LabelInjected] = "true"
		} else {
			delete(labels, plan.LabelInjected)
		}
		obj.SetLabels(labels)
		changed = true
	}
	return changed, nil
}

// sameNamespaceRepository reads an invoker's Repository when it is in the
// workload's namespace (a mounted Secret cannot cross namespaces; the
// invoker is Invalid otherwise); nil when it is not there.
func sameNamespaceRepository(ctx context.Context, r client.Reader, ns string, ref stashv1beta1.ObjectReference) (*stashv1alpha1.Repository, error) {
	if ref.Namespace != "" && ref.Namespace != ns {
		return nil, nil
	}
	repo := &stashv1alpha1.Repository{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, repo); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Repository %s/%s: %w", ns, ref.Name, err)
	}
	return repo, nil
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
