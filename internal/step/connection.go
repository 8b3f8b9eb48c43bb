package step

import (
	"context"
	"errors"
	"fmt"

	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/source"
)

// connection resolves the AppBinding the options name, its Secret and its
// tlsSecret into a connection, with the driver's port and Secret keys.
func (o *Options) connection(ctx context.Context, src source.Source, port int, userKeys, passwordKeys []string) (*appbinding.Connection, error) {
	if o.AppBinding == "" {
		return nil, errors.New("--appbinding is empty: name the AppBinding of the database")
	}
	ns := orStr(o.AppBindingNamespace, o.Namespace)
	ab, err := src.AppBinding(ctx, ns, o.AppBinding)
	if err != nil {
		return nil, err
	}
	var secret map[string][]byte
	if ab.Spec.Secret != nil {
		if secret, err = src.SecretData(ctx, ns, ab.Spec.Secret.Name); err != nil {
			return nil, fmt.Errorf("AppBinding %s/%s: spec.secret: %w", ns, ab.Name, err)
		}
	}
	conn, err := appbinding.Resolve(ab, secret, port, userKeys, passwordKeys)
	if err != nil {
		return nil, err
	}
	if ts := ab.Spec.TLSSecret; ts != nil {
		data, err := src.SecretData(ctx, ns, ts.Name)
		if err != nil {
			return nil, fmt.Errorf("AppBinding %s/%s: spec.tlsSecret: %w", ns, ab.Name, err)
		}
		if err := appbinding.ApplyTLS(conn, data); err != nil {
			return nil, fmt.Errorf("AppBinding %s/%s: %w", ns, ab.Name, err)
		}
	}
	return conn, nil
}
