package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// EnsureInterimClaim creates the claim of a session's interimVolumeTemplate,
// <session>-<template name>, which its Jobs mount (internal/plan), owned by
// the session: it holds a step's intermediate data only.
func EnsureInterimClaim(ctx context.Context, c client.Client, session client.Object, t *stashv1beta1.PersistentVolumeClaim) error {
	if t == nil {
		return nil
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: session.GetName() + "-" + t.Name, Namespace: session.GetNamespace(), Labels: t.Labels},
		Spec:       *t.Spec.DeepCopy(),
	}
	if err := controllerutil.SetControllerReference(session, pvc, c.Scheme()); err != nil {
		return err
	}
	if err := c.Create(ctx, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create interim PVC %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}
