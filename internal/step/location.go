package step

import (
	"github.com/stash-backup/stash/internal/repository/location"

	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/formats"
	"github.com/stash-backup/stash/internal/source"
)

// backendFlagNames turns the Repository fields in a backend error into the
// flags they came from.
var backendFlagNames = strings.NewReplacer(
	"spec.backend.local.mountPath", "--bucket (with --provider=local)",
	"spec.backend.s3.endpoint", "--endpoint",
	"spec.backend.s3.bucket", "--bucket",
	"spec.backend.gcs.bucket", "--bucket",
	"spec.backend.azure.container", "--bucket",
	"spec.backend.b2.bucket", "--bucket",
	"spec.backend.s3", "--provider=s3 with --endpoint",
)

// OpenRepository opens (creating it if new) the repository the options
// name: the backend from the Function's flags or from a Repository in
// src, and the storage Secret.
func (o *Options) OpenRepository(ctx context.Context, src source.Source) (*repository.Repository, error) {
	ro, err := o.repositoryOptions(ctx, src)
	if err != nil {
		return nil, err
	}
	return repository.OpenOrInit(ctx, ro)
}

// OpenReader opens the existing repository the options name for reading:
// a restore never creates a repository where it expected one.
// A restic repository Stash wrote there is read as it is.
func (o *Options) OpenReader(ctx context.Context, src source.Source) (repository.SnapshotReader, error) {
	ro, err := o.repositoryOptions(ctx, src)
	if err != nil {
		return nil, err
	}
	return formats.OpenReader(ctx, ro)
}

func (o *Options) repositoryOptions(ctx context.Context, src source.Source) (repository.Options, error) {
	var backend stashv1alpha1.Backend
	secretName, secretNS := o.SecretName, o.SecretNamespace
	if o.Repository != "" {
		r, err := src.Repository(ctx, o.Namespace, o.Repository)
		if err != nil {
			return repository.Options{}, err
		}
		backend = r.Spec.Backend
		if secretName == "" {
			secretName, secretNS = backend.StorageSecretName, r.Namespace
		}
	} else {
		switch o.Provider {
		case "local":
			// Stash's local repository is <bucket>/<path>: two databases
			// with their own --path must not share one repository.
			if slices.Contains(strings.Split(filepath.ToSlash(o.Prefix), "/"), "..") {
				return repository.Options{}, fmt.Errorf("--path %q: must stay inside --bucket (no \"..\")", o.Prefix)
			}
			backend.Local = &stashv1alpha1.LocalSpec{MountPath: filepath.Join(o.Bucket, o.Prefix)}
		case "s3":
			backend.S3 = &stashv1alpha1.S3Spec{Endpoint: o.Endpoint, Bucket: o.Bucket, Prefix: o.Prefix, Region: o.Region, InsecureTLS: o.InsecureTLS}
		case "gcs":
			backend.GCS = &stashv1alpha1.GCSSpec{Bucket: o.Bucket, Prefix: o.Prefix, MaxConnections: o.MaxConnections}
		case "azure":
			backend.Azure = &stashv1alpha1.AzureSpec{Container: o.Bucket, Prefix: o.Prefix, MaxConnections: o.MaxConnections}
		case "b2":
			backend.B2 = &stashv1alpha1.B2Spec{Bucket: o.Bucket, Prefix: o.Prefix, MaxConnections: o.MaxConnections}
		case "swift":
			// Stash's restic repositories there are read; writing refuses.
			backend.Swift = &stashv1alpha1.SwiftSpec{Container: o.Bucket, Prefix: o.Prefix}
		case "rest":
			backend.Rest = &stashv1alpha1.RestServerSpec{URL: o.Endpoint}
		case "":
			return repository.Options{}, errors.New("--provider is empty: give the repository backend (local, s3, gcs, azure, b2, swift, rest) or --repository NAME")
		default:
			return repository.Options{}, fmt.Errorf("--provider %q is not supported: use local, s3, gcs, azure, b2, swift or rest", o.Provider)
		}
	}
	secret, err := o.storageSecret(ctx, src, secretName, secretNS)
	if err != nil {
		return repository.Options{}, err
	}
	loc, err := location.Resolve(backend, secret)
	if err != nil {
		if o.Repository == "" {
			// The backend came from flags: name them, not the
			// Repository's fields the message speaks of.
			return repository.Options{}, errors.New(backendFlagNames.Replace(err.Error()))
		}
		return repository.Options{}, err
	}
	pw, err := location.Password(secret)
	if err != nil {
		return repository.Options{}, err
	}
	return repository.Options{Location: loc, Password: pw}, nil
}

func (o *Options) storageSecret(ctx context.Context, src source.Source, name, ns string) (map[string][]byte, error) {
	if name != "" {
		return src.SecretData(ctx, orStr(ns, o.Namespace), name)
	}
	if o.SecretDir != "" {
		data, err := ReadSecretDir(o.SecretDir)
		if err != nil {
			return nil, fmt.Errorf("--secret-dir: %w", err)
		}
		return data, nil
	}
	return nil, errors.New("no storage Secret: pass --storage-secret-name (or --secret-dir)")
}

// ReadSecretDir reads a Secret mounted as a directory: one file per key.
// The kubelet's own entries (..data and the like) are not keys.
func ReadSecretDir(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		data[e.Name()] = b
	}
	return data, nil
}
