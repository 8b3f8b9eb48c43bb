package restic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/stash-backup/stash/internal/repository/location"
)

// swiftBackend reads a repository from an OpenStack Swift container, in
// restic's default layout under a prefix. It only ever reads: it neither
// creates the container nor writes or deletes an object.
type swiftBackend struct {
	conn      *swift.Connection
	container string
	prefix    string // without leading or trailing slash
}

// NewSwiftBackend authenticates to Swift as o says (keystone v1, v2 or v3,
// an application credential, or a storage URL and token) and returns
// read-only access to the repository under o.Prefix in o.Container. The
// container must exist: a missing one is an error that wraps ErrNotExist.
func NewSwiftBackend(ctx context.Context, o *location.SwiftOptions) (Backend, error) {
	if o.Container == "" {
		return nil, errors.New("swift: no container given")
	}
	b := &swiftBackend{
		conn: &swift.Connection{
			UserName:                    o.UserName,
			ApiKey:                      o.APIKey,
			AuthUrl:                     o.AuthURL,
			Region:                      o.Region,
			Tenant:                      o.Tenant,
			TenantId:                    o.TenantID,
			Domain:                      o.Domain,
			TenantDomain:                o.TenantDomain,
			ApplicationCredentialId:     o.ApplicationCredentialID,
			ApplicationCredentialName:   o.ApplicationCredentialName,
			ApplicationCredentialSecret: o.ApplicationCredentialSecret,
			StorageUrl:                  o.StorageURL,
			AuthToken:                   o.AuthToken,
			ConnectTimeout:              time.Minute,
			Timeout:                     time.Minute,
		},
		container: o.Container,
		prefix:    strings.Trim(o.Prefix, "/"),
	}
	tr, err := newTransport(o.RootCA)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	b.conn.Transport = tr
	// With a storage URL and token, Authenticated is already true and no
	// authentication request is made, as in restic.
	if !b.conn.Authenticated() {
		if err := b.conn.Authenticate(ctx); err != nil {
			return nil, fmt.Errorf("%s: authenticate at %s: %w", b, redactURL(o.AuthURL), b.explain(err))
		}
	}
	if _, _, err := b.conn.Container(ctx, b.container); err != nil {
		if errors.Is(err, swift.ContainerNotFound) {
			return nil, fmt.Errorf("%s: %w", b, notExist("container "+b.container))
		}
		return nil, fmt.Errorf("%s: container %s: %w", b, b.container, b.explain(err))
	}
	return b, nil
}

func (b *swiftBackend) String() string { return "swift:" + b.container + ":/" + b.prefix }

// explain adds what to check to Swift's authentication errors, and drops
// userinfo from any URL in a transport error.
func (b *swiftBackend) explain(err error) error {
	switch {
	case errors.Is(err, swift.AuthorizationFailed):
		return fmt.Errorf("%w: check the Swift credentials in the storage Secret (%s/%s, %s/%s, %s or %s)", err,
			location.KeySwiftV1User, location.KeySwiftV1Key, location.KeyOSUsername, location.KeyOSPassword,
			location.KeyOSApplicationCredentialSecret, location.KeyOSAuthToken)
	case errors.Is(err, swift.Forbidden):
		return fmt.Errorf("%w: the Swift user may not read container %s", err, b.container)
	}
	return scrubURLError(err)
}

// key is the object name of (t, name): restic's default layout under the
// prefix.
func (b *swiftBackend) key(t FileType, name string) string {
	return path.Join(b.prefix, defaultPath(t, name))
}

// Get reads length bytes at off of one object (all from off when length
// is negative) with a Range request; a whole object read is checked
// against its MD5 ETag.
func (b *swiftBackend) Get(ctx context.Context, t FileType, name string, off, length int64) ([]byte, error) {
	key := b.key(t, name)
	what := "get " + key
	if off < 0 {
		return nil, fmt.Errorf("%s: %s: negative offset %d", b, what, off)
	}
	if length == 0 {
		return []byte{}, nil
	}
	hdr := swift.Headers{}
	if length > 0 {
		hdr["Range"] = fmt.Sprintf("bytes=%d-%d", off, off+length-1)
	} else if off > 0 {
		hdr["Range"] = fmt.Sprintf("bytes=%d-", off)
	}
	whole := len(hdr) == 0
	f, rh, err := b.conn.ObjectOpen(ctx, b.container, key, whole, hdr)
	if err != nil {
		if errors.Is(err, swift.ObjectNotFound) {
			return nil, fmt.Errorf("%s: %w", b, notExist(key))
		}
		if se := (*swift.Error)(nil); errors.As(err, &se) && se.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return nil, fmt.Errorf("%s: %s: range beyond the end of the object (416)", b, what)
		}
		return nil, fmt.Errorf("%s: %s: %w", b, what, b.explain(err))
	}
	wrap := func(err error) error { return fmt.Errorf("%s: %s: %w", b, what, err) }
	if !whole {
		if err := checkContentRange(rh["Content-Range"], off, length); err != nil {
			_ = f.Close()
			return nil, wrap(err)
		}
	}
	// The body is the range asked for: Swift answers 206 with exactly
	// those bytes (swifttest answers 200, without Content-Range).
	var body io.Reader = f
	if length < 0 {
		body = &capReader{r: f, n: maxWhole(t), err: tooLarge(t, name, -1)}
	}
	data, err := readBody(body, length, true, wrap)
	if cerr := f.Close(); err == nil && cerr != nil {
		// Close checks the length, and the MD5 of a whole object.
		return nil, wrap(fmt.Errorf("object corrupted in transfer: %w", cerr))
	}
	if err != nil {
		return nil, err
	}
	return data, nil
}

// List walks the objects under the type's directory: direct children,
// and for packs the children of data/'s two-character shard directories.
// Names that do not fit the layout (pseudo-directories, other files) are
// skipped.
func (b *swiftBackend) List(ctx context.Context, t FileType, fn func(name string, size int64) error) error {
	dir := path.Join(b.prefix, t.String()) + "/"
	what := "list " + dir
	err := b.conn.ObjectsWalk(ctx, b.container, &swift.ObjectsOpts{Prefix: dir},
		func(ctx context.Context, opts *swift.ObjectsOpts) (any, error) {
			objs, err := b.conn.Objects(ctx, b.container, opts)
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				name, ok := listedName(t, strings.TrimPrefix(o.Name, dir))
				if !ok || o.PseudoDirectory {
					continue
				}
				if err := fn(name, o.Bytes); err != nil {
					return nil, errStop{err}
				}
			}
			return objs, nil
		})
	if stop := (errStop{}); errors.As(err, &stop) {
		return stop.err
	}
	if err != nil {
		if errors.Is(err, swift.ContainerNotFound) {
			return fmt.Errorf("%s: %w", b, notExist("container "+b.container))
		}
		return fmt.Errorf("%s: %s: %w", b, what, b.explain(err))
	}
	return nil
}

// listedName is the object name of rel, an object name relative to the
// type's directory, when it fits restic's default layout.
func listedName(t FileType, rel string) (string, bool) {
	if t == PackFile {
		shard, name, ok := strings.Cut(rel, "/")
		if !ok || len(shard) != 2 || name == "" || strings.Contains(name, "/") {
			return "", false
		}
		return name, true
	}
	if rel == "" || strings.Contains(rel, "/") {
		return "", false
	}
	return rel, true
}

// errStop carries the error of List's callback through ObjectsWalk, to
// be returned as it is.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }
