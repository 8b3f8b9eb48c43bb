// Package webhook holds the operator's admission webhooks (validation and
// defaulting of Repository, BackupConfiguration and RestoreSession, with
// the same checks as `stash validate`) and the certificates they serve
// with, which the operator makes and rotates itself.
package webhook

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/validation"
)

// Validator validates one kind with validation's checks. References to
// objects that do not exist yet are warnings, not rejections: manifests
// are often applied in any order, and the reconcilers hold a session back
// until its references appear.
type Validator[T client.Object] struct {
	Reader  client.Reader
	Catalog *catalog.Catalog
	Kind    schema.GroupKind
	Check   func(T, validation.Lookup) field.ErrorList
}

func (v Validator[T]) validate(ctx context.Context, obj T) (admission.Warnings, error) {
	errs := v.Check(obj, kube.Lookup{Ctx: ctx, Reader: v.Reader, Catalog: v.Catalog})
	var warnings admission.Warnings
	var invalid field.ErrorList
	for _, e := range errs {
		if e.Type == field.ErrorTypeNotFound {
			warnings = append(warnings, fmt.Sprintf("%s (the object will wait for it)", e.Error()))
			continue
		}
		invalid = append(invalid, e)
	}
	if len(invalid) > 0 {
		return warnings, apierrors.NewInvalid(v.Kind, obj.GetName(), invalid)
	}
	return warnings, nil
}

// ValidateCreate implements admission.Validator.
func (v Validator[T]) ValidateCreate(ctx context.Context, obj T) (admission.Warnings, error) {
	return v.validate(ctx, obj)
}

// ValidateUpdate implements admission.Validator. Objects being deleted,
// and updates that leave the spec as it was (finalizers, labels), are let
// through, so that a finalizer can always be removed, even from an object
// that a changed Repository policy has made invalid.
func (v Validator[T]) ValidateUpdate(ctx context.Context, old, obj T) (admission.Warnings, error) {
	if !obj.GetDeletionTimestamp().IsZero() || sameSpec(old, obj) {
		return nil, nil
	}
	return v.validate(ctx, obj)
}

// sameSpec says whether two versions of an object have equal specs.
func sameSpec(a, b client.Object) bool {
	ua, err := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	if err != nil {
		return false
	}
	ub, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		return false
	}
	return equality.Semantic.DeepEqual(ua["spec"], ub["spec"])
}

// ValidateDelete implements admission.Validator.
func (v Validator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}

// Validators returns the validators of the three kinds.
func Validators(r client.Reader, cat *catalog.Catalog) (Validator[*stashv1alpha1.Repository], Validator[*stashv1beta1.BackupConfiguration], Validator[*stashv1beta1.RestoreSession]) {
	return Validator[*stashv1alpha1.Repository]{Reader: r, Catalog: cat, Kind: schema.GroupKind{Group: stashv1alpha1.GroupVersion.Group, Kind: "Repository"},
			Check: func(o *stashv1alpha1.Repository, l validation.Lookup) field.ErrorList {
				return validation.Repository(o, l)
			}},
		Validator[*stashv1beta1.BackupConfiguration]{Reader: r, Catalog: cat, Kind: schema.GroupKind{Group: stashv1beta1.GroupVersion.Group, Kind: "BackupConfiguration"},
			Check: validation.BackupConfiguration},
		Validator[*stashv1beta1.RestoreSession]{Reader: r, Catalog: cat, Kind: schema.GroupKind{Group: stashv1beta1.GroupVersion.Group, Kind: "RestoreSession"},
			Check: validation.RestoreSession}
}

// BackupConfigurationDefaulter fills in Stash's defaults that a CRD
// schema cannot: the repository's namespace and the history limit.
type BackupConfigurationDefaulter struct{}

// Default implements admission.Defaulter.
func (BackupConfigurationDefaulter) Default(_ context.Context, bc *stashv1beta1.BackupConfiguration) error {
	if bc.Spec.Repository.Namespace == "" {
		bc.Spec.Repository.Namespace = bc.Namespace
	}
	if bc.Spec.BackupHistoryLimit == nil {
		one := int32(1)
		bc.Spec.BackupHistoryLimit = &one
	}
	if bc.Spec.Driver == "" {
		bc.Spec.Driver = stashv1beta1.DriverRestic
	}
	return nil
}

// RestoreSessionDefaulter fills in a RestoreSession's defaults.
type RestoreSessionDefaulter struct{}

// Default implements admission.Defaulter.
func (RestoreSessionDefaulter) Default(_ context.Context, rs *stashv1beta1.RestoreSession) error {
	if rs.Spec.Repository.Namespace == "" {
		rs.Spec.Repository.Namespace = rs.Namespace
	}
	if rs.Spec.Driver == "" {
		rs.Spec.Driver = stashv1beta1.DriverRestic
	}
	return nil
}
