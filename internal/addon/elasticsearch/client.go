package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stash-backup/stash/internal/appbinding"
)

// client speaks Elasticsearch's and OpenSearch's REST API over plain
// HTTP requests: the calls a dump needs are the same in both and in every
// version since 6 but for the shapes the server struct records, so one
// client serves all of them without a vendor library's product check.
type client struct {
	base       string // scheme://host:port[/prefix], no trailing slash
	user, pass string
	hc         *http.Client
	server     server
}

// server is what GET / told of the server.
type server struct {
	Number     string // version number
	Major      int
	Minor      int
	OpenSearch bool
}

// pitKind is how the server opens a point in time: "es" (POST
// <index>/_pit, Elasticsearch 7.10+), "os" (POST
// <index>/_search/point_in_time, OpenSearch 2.4+) or "" (none: scroll).
func (s server) pitKind() string {
	switch {
	case s.OpenSearch && (s.Major > 2 || s.Major == 2 && s.Minor >= 4):
		return "os"
	case !s.OpenSearch && (s.Major > 7 || s.Major == 7 && s.Minor >= 10):
		return "es"
	}
	return ""
}

// typed tells whether the server wants a mapping type in bulk actions and
// mapping requests (Elasticsearch 5 and 6).
func (s server) typed() bool { return !s.OpenSearch && s.Major < 7 }

// hasComposable tells a server with composable index and component
// templates: Elasticsearch 7.8 and later, every OpenSearch.
func (s server) hasComposable() bool {
	return s.OpenSearch || s.Major > 7 || s.Major == 7 && s.Minor >= 8
}

// hasDataStreams tells a server with data streams: Elasticsearch 7.9 and
// later, every OpenSearch.
func (s server) hasDataStreams() bool {
	return s.OpenSearch || s.Major > 7 || s.Major == 7 && s.Minor >= 9
}

func (s server) String() string {
	if s.OpenSearch {
		return "OpenSearch " + s.Number
	}
	return "Elasticsearch " + s.Number
}

// newClient makes a client of the AppBinding's server.
func newClient(c *appbinding.Connection) (*client, error) {
	scheme := c.Scheme
	if scheme == "" {
		scheme = "http"
	}
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("AppBinding scheme %q: Elasticsearch is reached over http or https", scheme)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if scheme == "https" || len(c.CABundle) > 0 || c.InsecureSkipTLSVerify {
		scheme = "https"
		cfg, err := c.ClientTLS()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
	}
	base := scheme + "://" + c.Address()
	if c.Database != "" {
		// A URL's path is a prefix the server is reached under (a
		// proxy's, or OpenSearch behind a path).
		base += "/" + strings.Trim(c.Database, "/")
	}
	return &client{
		base: base,
		user: c.Username, pass: c.Password,
		hc: &http.Client{Transport: tr},
	}, nil
}

// apiError is an error the server answered with.
type apiError struct {
	Status int
	Type   string
	Reason string
	Call   string // "METHOD path"
}

func (e *apiError) Error() string {
	switch {
	case e.Type == "" && e.Reason == "":
		return fmt.Sprintf("%s: HTTP %d", e.Call, e.Status)
	case e.Type == "":
		return fmt.Sprintf("%s: HTTP %d: %s", e.Call, e.Status, e.Reason)
	}
	return fmt.Sprintf("%s: HTTP %d %s: %s", e.Call, e.Status, e.Type, e.Reason)
}

// is tells whether err is an answer of status (and type, when given).
func is(err error, status int, typ string) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == status && (typ == "" || ae.Type == typ)
}

// do sends one request and returns the body of a 2xx answer; any other
// answer is an *apiError. body may be nil, a []byte, a *bytes.Reader, a
// *bytes.Buffer or a value to encode.
func (c *client) do(ctx context.Context, method, path string, body any, ctype string) ([]byte, error) {
	return c.doWith(ctx, method, path, body, ctype, nil)
}

func (c *client) doWith(ctx context.Context, method, path string, body any, ctype string, header map[string]string) ([]byte, error) {
	var out []byte
	err := c.send(ctx, method, path, body, ctype, header, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	return out, err
}

// answers holds the buffers answers are read into: a page of documents
// is hundreds of KiB, and reading each into a fresh, growing slice cost
// more than decoding it.
var answers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// send sends one request and hands the body of a 2xx answer to use,
// which must not keep it.
func (c *client) send(ctx context.Context, method, path string, body any, ctype string, header map[string]string, use func([]byte) error) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case *bytes.Reader:
		rd = b
	case *bytes.Buffer:
		rd = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		if ctype == "" {
			ctype = "application/json"
		}
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// The URL error names the address, never the credentials,
		// which travel in a header.
		return err
	}
	defer resp.Body.Close() //nolint:errcheck
	buf := answers.Get().(*bytes.Buffer)
	defer answers.Put(buf)
	buf.Reset()
	if resp.ContentLength > 0 && resp.ContentLength < 1<<30 {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	out := buf.Bytes()
	if resp.StatusCode/100 == 2 {
		return use(out)
	}
	ae := &apiError{Status: resp.StatusCode, Call: method + " " + strings.SplitN(path, "?", 2)[0]}
	var eb struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"` // Kibana's
	}
	if json.Unmarshal(out, &eb) == nil && eb.Message != "" {
		ae.Reason = eb.Message
	} else if json.Unmarshal(out, &eb) == nil && len(eb.Error) > 0 {
		var e struct{ Type, Reason string }
		if json.Unmarshal(eb.Error, &e) == nil && e.Type != "" {
			ae.Type, ae.Reason = e.Type, e.Reason
		} else {
			ae.Reason = strings.Trim(string(eb.Error), `"`)
		}
	}
	return ae
}

// call sends in (if any) as JSON and decodes the answer into out (if any).
func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	return c.send(ctx, method, path, in, "", nil, func(b []byte) error {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, path, err)
		}
		return nil
	})
}

// hello asks the server who it is.
func (c *client) hello(ctx context.Context) error {
	var info struct {
		Version struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	if err := c.call(ctx, http.MethodGet, "/", nil, &info); err != nil {
		return err
	}
	s := server{Number: info.Version.Number, OpenSearch: info.Version.Distribution == "opensearch"}
	parts := strings.SplitN(s.Number, ".", 3)
	s.Major, _ = strconv.Atoi(parts[0])
	if len(parts) > 1 {
		s.Minor, _ = strconv.Atoi(parts[1])
	}
	if s.Major == 0 {
		return fmt.Errorf("GET / answered version %q: not an Elasticsearch or OpenSearch server", s.Number)
	}
	if !s.OpenSearch && s.Major < 5 {
		return fmt.Errorf("%s: this addon backs up Elasticsearch 5 and later and OpenSearch (earlier versions have no sliced scroll)", s)
	}
	c.server = s
	return nil
}
