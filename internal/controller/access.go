package controller

import (
	"context"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/validation"
)

// ErrNotAllowed marks a Repository that exists but does not allow the
// namespace that uses it.
var ErrNotAllowed = fmt.Errorf("repository not allowed")

// LiveRepository reads the Repository ref (relative to namespace ns) past
// the cache and checks that it allows ns, reading ns's labels live when its
// policy is a selector. A session calls it right before granting anything,
// so a policy revoked a moment ago is never honoured from a stale cache.
func LiveRepository(ctx context.Context, r client.Reader, ns string, ref stashv1beta1.ObjectReference) (*stashv1alpha1.Repository, error) {
	repoNS := ref.Namespace
	if repoNS == "" {
		repoNS = ns
	}
	repo := &stashv1alpha1.Repository{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: repoNS, Name: ref.Name}, repo); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("Repository %s/%s does not exist", repoNS, ref.Name)
		}
		return nil, fmt.Errorf("read Repository %s/%s: %w", repoNS, ref.Name, err)
	}
	if err := UnverifiedSettings(ctx, r, validation.PrivilegedRepository(repo)); err != nil {
		return nil, fmt.Errorf("Repository %s/%s: %w", repoNS, ref.Name, err)
	}
	if repoNS == ns {
		return repo, nil
	}
	var labels map[string]string
	if validation.NeedsNamespaceLabels(repo) {
		l, ok := kube.Lookup{Ctx: ctx, Reader: r}.NamespaceLabels(ns)
		if !ok {
			return nil, fmt.Errorf("%w: the labels of namespace %s, which Repository %s/%s's usagePolicy selector needs, could not be read", ErrNotAllowed, ns, repoNS, ref.Name)
		}
		labels = l
	}
	if ok, why := validation.UsageAllowed(repo, ns, labels); !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotAllowed, why)
	}
	return repo, nil
}

// StepSecrets are the Secrets of namespace ns a step reads: the storage
// Secret when the Repository is in ns, and the AppBinding's credentials,
// TLS and transform Secrets. They become the resourceNames of the step's
// Role.
func StepSecrets(ns string, repo *stashv1alpha1.Repository, ab *appcatalogv1alpha1.AppBinding) []string {
	var out []string
	if repo != nil && repo.Namespace == ns {
		out = append(out, repo.Spec.Backend.StorageSecretName)
	}
	if ab != nil {
		if ab.Spec.Secret != nil {
			out = append(out, ab.Spec.Secret.Name)
		}
		if ab.Spec.TLSSecret != nil {
			out = append(out, ab.Spec.TLSSecret.Name)
		}
		for _, t := range ab.Spec.SecretTransforms {
			if t.AddKeysFrom != nil && t.AddKeysFrom.SecretRef != nil {
				out = append(out, t.AddKeysFrom.SecretRef.Name)
			}
		}
	}
	return out
}

// Permanent says whether an API error will not go away by sending the same
// request again: a quota or an admission policy refused it, or the object
// is invalid.
func Permanent(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
}

// UnverifiedSettings returns an error naming the privileged fields of an
// invoker or Repository (validation.PrivilegedBackup and its kin) when the admission policy that
// checks who set them is not installed: the operator cannot know who did,
// so it refuses rather than run them.
func UnverifiedSettings(ctx context.Context, r client.Reader, fields []string) error {
	if len(fields) == 0 {
		return nil
	}
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	err := r.Get(ctx, client.ObjectKey{Name: validation.AdmissionPolicy}, b)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read ValidatingAdmissionPolicyBinding %s: %w", validation.AdmissionPolicy, err)
	}
	return fmt.Errorf("%w: %s can only be used when the ValidatingAdmissionPolicy %s is installed (the Helm chart installs it; or kubectl apply -f config/admission), which checks that whoever sets them could do as much without Stash (create pods, exec into them, update the workload); install it, or remove the field",
		ErrNotAllowed, strings.Join(fields, ", "), validation.AdmissionPolicy)
}

// SessionOfPod maps a step pod to the session (of kind) that owns its Job,
// so that a pod's change (evicted, its node gone, deleted) is seen at once
// rather than at the next periodic look. The operator caches only pods
// labelled as Stash's.
func SessionOfPod(c client.Client, kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		name := o.GetLabels()["batch.kubernetes.io/job-name"]
		if name == "" {
			return nil
		}
		job := &batchv1.Job{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: name}, job); err != nil {
			return nil
		}
		if ref := metav1.GetControllerOf(job); ref != nil && ref.Kind == kind {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: job.Namespace, Name: ref.Name}}}
		}
		return nil
	}
}
