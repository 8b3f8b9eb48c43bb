package restic

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/stash-backup/stash/internal/repository/location"
)

// The media types of restic's REST protocol: v2 lists names with sizes,
// v1 only names.
const (
	restContentTypeV1 = "application/vnd.x.restic.rest.v1"
	restContentTypeV2 = "application/vnd.x.restic.rest.v2"
)

// restBackend reads a repository from a restic REST server (rest-server,
// rclone serve restic). It only ever sends GET and HEAD.
type restBackend struct {
	base     *url.URL // the repository's URL, without userinfo, path ending in "/"
	username string
	password string
	client   *http.Client
}

// NewRESTBackend returns read-only access to the repository at o.URL on a
// restic REST server, with HTTP basic auth when o.Username is set and
// o.RootCA trusted besides the system's roots. It makes no request.
func NewRESTBackend(o *location.RestOptions) (Backend, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rest: repository URL %q is not an http(s) URL", redactURL(o.URL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("rest: repository URL %s has credentials in it: pass them as the username and password instead", redactURL(o.URL))
	}
	u.RawQuery, u.Fragment = "", ""
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	b := &restBackend{base: u, username: o.Username, password: o.Password}
	tr, err := newTransport(o.RootCA)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	b.client = &http.Client{Transport: tr}
	return b, nil
}

// newTransport is an HTTP transport like Go's default one (proxies from
// the environment, timeouts to connect) that trusts the PEM certificates
// of rootCA (CA_CERT_DATA) besides the system's roots.
func newTransport(rootCA []byte) (*http.Transport, error) {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	if len(rootCA) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(rootCA) {
			return nil, fmt.Errorf("%s holds no PEM certificate: paste the CA certificate that signed the server's, in PEM", location.KeyCACertData)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, nil
}

func (b *restBackend) String() string { return "rest:" + strings.TrimSuffix(b.base.String(), "/") }

// url is the address of rel (a restPath, or a type's directory ending in
// "/") under the repository.
func (b *restBackend) url(rel string) string {
	return b.base.ResolveReference(&url.URL{Path: rel}).String()
}

func (b *restBackend) do(ctx context.Context, method, rawURL string, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", restContentTypeV2)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if b.username != "" {
		req.SetBasicAuth(b.username, b.password)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, scrubURLError(err)
	}
	return resp, nil
}

// statusError says what a non-success answer means for the reader.
func (b *restBackend) statusError(resp *http.Response, what string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 || strings.ContainsAny(msg, "<\x00") {
		msg = ""
	}
	if msg != "" {
		msg = " (" + msg + ")"
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		if b.username == "" {
			return fmt.Errorf("%s: %s: the server wants a login: set %s and %s in the storage Secret", b, what, location.KeyRestUsername, location.KeyRestPassword)
		}
		return fmt.Errorf("%s: %s: the server refused user %q: check %s and %s in the storage Secret", b, what, b.username, location.KeyRestUsername, location.KeyRestPassword)
	case http.StatusForbidden:
		return fmt.Errorf("%s: %s: access denied (403)%s: the user may only reach its own repository (rest-server --private-repos)", b, what, msg)
	case http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%s: %s: range beyond the end of the object (416)", b, what)
	}
	return fmt.Errorf("%s: %s: server answered %s%s", b, what, resp.Status, msg)
}

// Get reads length bytes at off of one object (all from off when length
// is negative), asking the server for that range.
func (b *restBackend) Get(ctx context.Context, t FileType, name string, off, length int64) ([]byte, error) {
	p := restPath(t, name)
	what := "get " + p
	if off < 0 {
		return nil, fmt.Errorf("%s: %s: negative offset %d", b, what, off)
	}
	if length == 0 {
		return []byte{}, nil
	}
	hdr := map[string]string{}
	if length > 0 {
		hdr["Range"] = fmt.Sprintf("bytes=%d-%d", off, off+length-1)
	} else if off > 0 {
		hdr["Range"] = fmt.Sprintf("bytes=%d-", off)
	}
	resp, err := b.do(ctx, http.MethodGet, b.url(p), hdr)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", b, what, err)
	}
	defer resp.Body.Close()
	wrap := func(err error) error { return fmt.Errorf("%s: %s: %w", b, what, err) }
	limit := func(r io.Reader) io.Reader { return r }
	if length < 0 {
		if resp.StatusCode < 300 && resp.ContentLength > maxWhole(t) {
			return nil, wrap(tooLarge(t, name, resp.ContentLength))
		}
		limit = func(r io.Reader) io.Reader { return &capReader{r: r, n: maxWhole(t), err: tooLarge(t, name, -1)} }
	}
	switch resp.StatusCode {
	case http.StatusOK:
		// The whole object, from a server that ignores Range: skip to
		// off and read only what was asked.
		if off > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
				return nil, wrap(fmt.Errorf("object shorter than offset %d: %w", off, eofUnexpected(err)))
			}
		}
		return readBody(limit(resp.Body), length, false, wrap)
	case http.StatusPartialContent:
		if err := checkContentRange(resp.Header.Get("Content-Range"), off, length); err != nil {
			return nil, wrap(err)
		}
		return readBody(limit(resp.Body), length, true, wrap)
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", b, notExist(p))
	}
	return nil, b.statusError(resp, what)
}

// List lists one type's directory, in protocol v2 (names and sizes) when
// the server speaks it, else v1 (names, then a HEAD for each size). A
// missing directory lists nothing, as restic has it.
func (b *restBackend) List(ctx context.Context, t FileType, fn func(name string, size int64) error) error {
	dir := t.String() + "/"
	what := "list " + dir
	resp, err := b.do(ctx, http.MethodGet, b.url(dir), nil)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", b, what, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil
	default:
		return b.statusError(resp, what)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	dec := json.NewDecoder(resp.Body)
	if ct == restContentTypeV2 {
		var list []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		}
		if err := dec.Decode(&list); err != nil {
			return fmt.Errorf("%s: %s: bad v2 listing: %w", b, what, err)
		}
		resp.Body.Close()
		for _, e := range list {
			if err := checkListedName(e.Name); err != nil {
				return fmt.Errorf("%s: %s: %w", b, what, err)
			}
			if err := fn(e.Name, e.Size); err != nil {
				return err
			}
		}
		return nil
	}
	var names []string
	if err := dec.Decode(&names); err != nil {
		return fmt.Errorf("%s: %s: bad v1 listing (Content-Type %q): %w", b, what, ct, err)
	}
	resp.Body.Close()
	for _, n := range names {
		if err := checkListedName(n); err != nil {
			return fmt.Errorf("%s: %s: %w", b, what, err)
		}
		size, err := b.size(ctx, t, n)
		if err != nil {
			return err
		}
		if err := fn(n, size); err != nil {
			return err
		}
	}
	return nil
}

// size asks for an object's size with HEAD, for v1 listings.
func (b *restBackend) size(ctx context.Context, t FileType, name string) (int64, error) {
	p := restPath(t, name)
	what := "head " + p
	resp, err := b.do(ctx, http.MethodHead, b.url(p), nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %s: %w", b, what, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return 0, fmt.Errorf("%s: %w", b, notExist(p))
	default:
		return 0, b.statusError(resp, what)
	}
	if resp.ContentLength < 0 {
		return 0, fmt.Errorf("%s: %s: no Content-Length", b, what)
	}
	return resp.ContentLength, nil
}

// checkListedName refuses a listed name that would address something
// else than an object of the listed type.
func checkListedName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\") {
		return fmt.Errorf("server listed a bad object name %q", n)
	}
	return nil
}

// checkContentRange checks the Content-Range of a 206 answer (when the
// server sent one) against the range asked for: off, and length bytes
// unless negative. A range cut short at the object's end is a short read.
func checkContentRange(cr string, off, length int64) error {
	if cr == "" {
		return nil
	}
	var first, last, total int64
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &first, &last, &total); err != nil {
		if _, err := fmt.Sscanf(cr, "bytes %d-%d/*", &first, &last); err != nil {
			return fmt.Errorf("bad Content-Range %q", cr)
		}
		total = -1
	}
	switch {
	case first != off:
		return fmt.Errorf("server sent bytes %d-%d for a range from %d", first, last, off)
	case length > 0 && last < off+length-1:
		if total >= 0 {
			return fmt.Errorf("short read: %d of %d bytes: the object ends at %d bytes", last-first+1, length, total)
		}
		return fmt.Errorf("short read: %d of %d bytes", last-first+1, length)
	case length > 0 && last > off+length-1:
		return fmt.Errorf("server sent bytes %d-%d for %d-%d", first, last, off, off+length-1)
	}
	return nil
}

// readBody reads exactly length bytes (all when negative) of a response
// body; fewer is an error, and so is more when exact says the body is
// the range asked for.
func readBody(r io.Reader, length int64, exact bool, wrap func(error) error) ([]byte, error) {
	if length < 0 {
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, wrap(eofUnexpected(err))
		}
		return data, nil
	}
	data := make([]byte, length)
	if n, err := io.ReadFull(r, data); err != nil {
		return nil, wrap(fmt.Errorf("short read: %d of %d bytes: %w", n, length, eofUnexpected(err)))
	}
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); exact && n > 0 {
		return nil, wrap(fmt.Errorf("server sent more than the %d bytes asked: it ignored the Range header", length))
	}
	return data, nil
}

// capReader reads at most n bytes of r, and fails with err beyond them.
type capReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n < 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.n+1 {
		p = p[:c.n+1]
	}
	k, err := c.r.Read(p)
	if c.n -= int64(k); c.n < 0 {
		return 0, c.err
	}
	return k, err
}

func eofUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// scrubURLError keeps the operation and cause of a transport error and
// drops userinfo from its URL.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	return err
}

// redactURL drops userinfo from a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "<URL not shown>"
		}
		return s
	}
	u.User = nil
	return u.String()
}
