package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrReadWriteOncePod is returned for a claim no second pod may mount.
var ErrReadWriteOncePod = errors.New("ReadWriteOncePod")

// PinToClaimNode makes a step pod that mounts claim able to: a
// ReadWriteOnce volume can be attached to one node at a time, so a step
// for a claim a running pod already mounts must run on that pod's node
// (elsewhere it waits on Multi-Attach forever). A ReadWriteOncePod claim,
// which no second pod may mount at all, is refused with the way out. A
// claim no pod mounts leaves the step free.
func PinToClaimNode(ctx context.Context, r client.Reader, spec *corev1.PodSpec, namespace, claim string) error {
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: claim}, pvc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("read PVC %s/%s: %w", namespace, claim, err)
	}
	modes := pvc.Spec.AccessModes
	if slices.Contains(modes, corev1.ReadWriteOncePod) {
		return fmt.Errorf("%w: PVC %s/%s is ReadWriteOncePod, so no pod but its user may mount it and a backup Job cannot: back it up from inside that pod with the sidecar model (a BackupConfiguration without a Task whose target is the workload; see docs/guides/workloads.md)", ErrReadWriteOncePod, namespace, claim)
	}
	if !slices.Contains(modes, corev1.ReadWriteOnce) || slices.Contains(modes, corev1.ReadWriteMany) {
		return nil
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(namespace)); err != nil {
		return fmt.Errorf("list pods of namespace %s: %w", namespace, err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
				requireNode(spec, p.Spec.NodeName)
				return nil
			}
		}
	}
	return nil
}

// requireNode adds "on node" to a pod's required node affinity, within
// every term a user's runtime settings gave (terms are ORed).
func requireNode(spec *corev1.PodSpec, node string) {
	// By the node's name (matchFields): its hostname label may differ.
	req := corev1.NodeSelectorRequirement{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil || len(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) == 0 {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{req}}}}
		return
	}
	terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for i := range terms {
		terms[i].MatchFields = append(terms[i].MatchFields, req)
	}
}
