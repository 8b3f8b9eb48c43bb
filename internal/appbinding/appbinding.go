// Package appbinding turns an AppBinding and its Secret into what a dump
// tool needs: host, port, database, TLS settings and credentials. It is
// pure: the objects come from a source (the API server or manifests).
package appbinding

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
)

// Connection is how to reach an application.
type Connection struct {
	Scheme string
	Host   string
	Port   int
	// Seeds holds every host:port of a URL that names several, as a
	// MongoDB replica set's seed list does (mongodb://a:27017,b:27017/);
	// Host and Port are then the first of them. It is empty otherwise.
	Seeds    []string
	Database string
	// Query holds URL or service query parameters (sslmode=disable, …).
	Query url.Values
	// CABundle is the PEM CA that signs the server's certificate.
	CABundle []byte
	// InsecureSkipTLSVerify disables server certificate checks.
	InsecureSkipTLSVerify bool
	// ClientCert and ClientKey are the PEM client certificate and key from
	// the AppBinding's spec.tlsSecret.
	ClientCert, ClientKey []byte
	Username              string
	Password              string
	// Secret is the transformed credentials Secret, for tools that need
	// other keys.
	Secret map[string][]byte
	// Parameters is the AppBinding's spec.parameters, as JSON: a
	// database's topology (KubeDB's MongoDB configServer and
	// replicaSets) for the driver that reads it.
	Parameters []byte
}

// WithoutCA is c without its CA bundle, for a client that must not verify
// the server (insecureSkipTLSVerify): libpq and MariaDB's clients check the
// server against any CA they are given, whatever else they are told.
func (c *Connection) WithoutCA() *Connection {
	cc := *c
	cc.CABundle = nil
	return &cc
}

// ClientTLS is the TLS configuration of a client of the application: the
// CA bundle to check the server against (the system's when there is
// none), the client certificate of spec.tlsSecret, and
// insecureSkipTLSVerify.
func (c *Connection) ClientTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipTLSVerify} //nolint:gosec // the AppBinding's own choice
	if len(c.CABundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CABundle) {
			return nil, errors.New("AppBinding spec.clientConfig.caBundle holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if len(c.ClientCert) > 0 || len(c.ClientKey) > 0 {
		cert, err := tls.X509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("AppBinding spec.tlsSecret: client certificate and key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Address is host:port.
func (c Connection) Address() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Resolve reads the connection from an AppBinding, with credentials from
// its Secret (after spec.secretTransforms). defaultPort applies when the
// AppBinding names none; userKeys and passwordKeys are tried in order
// (e.g. username, then the legacy POSTGRES_USER).
func Resolve(ab *appcatalogv1alpha1.AppBinding, secret map[string][]byte, defaultPort int, userKeys, passwordKeys []string) (*Connection, error) {
	name := ab.Namespace + "/" + ab.Name
	c := &Connection{Port: defaultPort, Query: url.Values{}, CABundle: ab.Spec.ClientConfig.CABundle,
		InsecureSkipTLSVerify: ab.Spec.ClientConfig.InsecureSkipTLSVerify}
	if p := ab.Spec.Parameters; p != nil {
		c.Parameters = p.Raw
	}
	cc := ab.Spec.ClientConfig
	switch {
	case cc.URL != nil && *cc.URL != "":
		if err := parseURL(c, *cc.URL); err != nil {
			return nil, fmt.Errorf("AppBinding %s: spec.clientConfig.url %q: %w", name, redactURL(*cc.URL), err)
		}
	case cc.Service != nil:
		s := cc.Service
		if s.Name == "" {
			return nil, fmt.Errorf("AppBinding %s: spec.clientConfig.service.name is required", name)
		}
		ns := s.Namespace
		if ns == "" {
			ns = ab.Namespace
		}
		c.Scheme = s.Scheme
		// Inside a cluster the service resolves as name.namespace.svc; a
		// name that already holds a dot (an external host) is kept.
		c.Host = s.Name
		if !strings.Contains(s.Name, ".") && ns != "" {
			c.Host = s.Name + "." + ns + ".svc"
		}
		if s.Port > 0 {
			c.Port = int(s.Port)
		}
		c.Database = strings.Trim(s.Path, "/")
		q, err := url.ParseQuery(s.Query)
		if err != nil {
			return nil, fmt.Errorf("AppBinding %s: spec.clientConfig.service.query %q: %w", name, s.Query, err)
		}
		c.Query = q
	default:
		return nil, fmt.Errorf("AppBinding %s: set spec.clientConfig.url or spec.clientConfig.service", name)
	}
	if secret != nil {
		data, err := Transform(secret, ab.Spec.SecretTransforms)
		if err != nil {
			return nil, fmt.Errorf("AppBinding %s: spec.secretTransforms: %w", name, err)
		}
		c.Secret = data
		c.Username = first(data, userKeys)
		c.Password = first(data, passwordKeys)
	}
	return c, nil
}

func first(data map[string][]byte, keys []string) string {
	for _, k := range keys {
		if v, ok := data[k]; ok && len(v) > 0 {
			return string(v)
		}
	}
	return ""
}

// redactURL hides what a URL holds before its '@', a password perhaps:
// the URL goes into an error message, and from there into a session's
// status and events.
func redactURL(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return raw[:start] + "…" + raw[at:]
}

var errCredentials = errors.New("must not hold credentials: put them in the AppBinding's Secret")

// parseURL accepts the forms AppBindings use: scheme://host:port/db?query,
// host:port, and KubeDB's MySQL form tcp(host:port)/db.
func parseURL(c *Connection, raw string) error {
	if err := parseURLForm(c, raw); err != nil {
		return err
	}
	if c.Host == "" {
		// The tools would fall back to a local socket, far from the
		// server the AppBinding means.
		return errors.New("names no host")
	}
	return nil
}

func parseURLForm(c *Connection, raw string) error {
	if user, _, ok := strings.Cut(raw, "@tcp("); ok && !strings.Contains(user, "/") {
		return errCredentials // the MySQL driver's user:password@tcp(host:port)/
	}
	if strings.HasPrefix(raw, "tcp(") {
		end := strings.Index(raw, ")")
		if end < 0 {
			return errors.New("tcp( without )")
		}
		c.Scheme = "tcp"
		if err := setHostPort(c, raw[4:end]); err != nil {
			return err
		}
		rest := raw[end+1:]
		path, query, _ := strings.Cut(rest, "?")
		c.Database = strings.Trim(path, "/")
		q, err := url.ParseQuery(query)
		if err != nil {
			return err
		}
		c.Query = q
		return nil
	}
	if !strings.Contains(raw, "://") {
		raw = "tcp://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which the caller quotes redacted
		}
		return err
	}
	if u.User != nil {
		return errCredentials
	}
	c.Scheme = u.Scheme
	if strings.Contains(u.Host, ",") {
		if err := setSeeds(c, u.Host); err != nil {
			return err
		}
	} else if err := setHostPort(c, u.Host); err != nil {
		return err
	}
	c.Database = strings.Trim(u.Path, "/")
	c.Query = u.Query()
	return nil
}

// setSeeds reads a seed list, host:port pairs separated by commas, each
// checked as a single address is; a pair without a port gets c's default.
func setSeeds(c *Connection, list string) error {
	def := c.Port
	var seeds []string
	for _, hp := range strings.Split(list, ",") {
		one := Connection{Port: def}
		if err := setHostPort(&one, hp); err != nil {
			return err
		}
		if one.Host == "" {
			return fmt.Errorf("an empty host in the list %q", list)
		}
		seeds = append(seeds, one.Address())
		if len(seeds) == 1 {
			c.Host, c.Port = one.Host, one.Port
		}
	}
	c.Seeds = seeds
	return nil
}

func setHostPort(c *Connection, hp string) error {
	if strings.Contains(hp, "@") {
		// tcp(user:password@host:port): the address holds credentials.
		return errCredentials
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		var ae *net.AddrError
		if !errors.As(err, &ae) {
			return err
		}
		if ae.Err != "missing port in address" {
			// Without the address: the caller quotes the URL, redacted.
			return errors.New(ae.Err)
		}
		host, port = strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]"), ""
	}
	if !validHost(host) {
		return fmt.Errorf("bad host %q: give a DNS name or an IP address", host)
	}
	c.Host = host
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("bad port %q", port)
		}
		c.Port = p
	}
	return nil
}

// validHost accepts a DNS name (with the underscores some container
// networks use) or an IP address, IPv6 with a zone included: anything
// else reaches a dump tool as a host it cannot make sense of, or as one
// more option (a leading '-').
func validHost(h string) bool {
	if h == "" {
		return true // the caller reports a missing host
	}
	if ip, _, _ := strings.Cut(h, "%"); net.ParseIP(ip) != nil {
		return true
	}
	if h[0] == '-' || h[0] == '.' {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// Transform applies kmodules' secretTransforms in order. addKeysFrom needs
// another Secret and is not supported here.
func Transform(data map[string][]byte, ts []appcatalogv1alpha1.SecretTransform) (map[string][]byte, error) {
	out := make(map[string][]byte, len(data))
	for k, v := range data {
		out[k] = v
	}
	for i, t := range ts {
		switch {
		case t.RenameKey != nil:
			if v, ok := out[t.RenameKey.From]; ok {
				delete(out, t.RenameKey.From)
				out[t.RenameKey.To] = v
			}
		case t.AddKey != nil:
			if t.AddKey.StringValue != nil {
				out[t.AddKey.Key] = []byte(*t.AddKey.StringValue)
			} else {
				out[t.AddKey.Key] = t.AddKey.Value
			}
		case t.RemoveKey != nil:
			delete(out, t.RemoveKey.Key)
		case t.AddKeysFrom != nil:
			return nil, fmt.Errorf("[%d].addKeysFrom is not supported: copy the keys into the AppBinding's Secret", i)
		}
	}
	return out, nil
}

// ApplyTLS takes the client certificate and key (tls.crt, tls.key) and, if
// the AppBinding gave none, the CA (ca.crt) from spec.tlsSecret's data.
func ApplyTLS(c *Connection, data map[string][]byte) error {
	c.ClientCert, c.ClientKey = data["tls.crt"], data["tls.key"]
	if (len(c.ClientCert) == 0) != (len(c.ClientKey) == 0) {
		return errors.New("spec.tlsSecret must hold both tls.crt and tls.key")
	}
	if len(c.CABundle) == 0 {
		c.CABundle = data["ca.crt"]
	}
	return nil
}
