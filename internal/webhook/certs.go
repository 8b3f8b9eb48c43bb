package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Certificate lifetimes. The serving certificate is renewed when less
// than RenewBefore of it is left; the CA outlives many renewals so that
// the caBundle rarely changes.
const (
	CALifetime      = 10 * 365 * 24 * time.Hour
	ServingLifetime = 365 * 24 * time.Hour
	RenewBefore     = 30 * 24 * time.Hour
)

// Certs keeps the webhook server's certificate: a self-signed CA and a
// serving certificate, stored in a Secret (so every replica serves the
// same one), written to Dir for the webhook server, and the CA patched
// into the webhook configurations. No cert-manager is needed.
type Certs struct {
	Client client.Client
	// Secret holds ca.crt, ca.key, tls.crt and tls.key.
	Secret client.ObjectKey
	// DNSNames and IPs go into the serving certificate (the Service's
	// names; 127.0.0.1 for tests).
	DNSNames []string
	IPs      []net.IP
	// Dir receives tls.crt and tls.key.
	Dir string
	// Validating and Mutating name the webhook configurations whose
	// caBundle is kept current.
	Validating, Mutating string
	Now                  func() time.Time
}

func (c *Certs) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Ensure makes sure a valid certificate exists in the Secret and in Dir,
// and that the webhook configurations trust its CA.
func (c *Certs) Ensure(ctx context.Context) error {
	var caPEM, certPEM, keyPEM []byte
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &corev1.Secret{}
		err := c.Client.Get(ctx, c.Secret, s)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		exists := err == nil
		data := s.Data
		if !exists || !c.valid(data) {
			if data, err = c.generate(data); err != nil {
				return err
			}
			s.Name, s.Namespace = c.Secret.Name, c.Secret.Namespace
			s.Type = corev1.SecretTypeOpaque
			s.Data = data
			if exists {
				err = c.Client.Update(ctx, s)
			} else {
				err = c.Client.Create(ctx, s)
				if apierrors.IsAlreadyExists(err) {
					// Another replica won; use its certificate.
					return apierrors.NewConflict(corev1.Resource("secrets"), s.Name, err)
				}
			}
			if err != nil {
				return err
			}
			logf.FromContext(ctx).Info("webhook serving certificate issued", "secret", c.Secret.String())
		}
		caPEM, certPEM, keyPEM = c.bundle(data), data["tls.crt"], data["tls.key"]
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook certificate Secret %s: %w", c.Secret, err)
	}
	if err := writeIfChanged(filepath.Join(c.Dir, "tls.crt"), certPEM); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(c.Dir, "tls.key"), keyPEM); err != nil {
		return err
	}
	return c.patchCABundle(ctx, caPEM)
}

// bundle is what webhook clients must trust: the CA, and while it has not
// expired the CA it replaced. A replica still serving a certificate of the
// old CA (it reads the Secret again only every few minutes) stays trusted
// through a CA rotation.
func (c *Certs) bundle(data map[string][]byte) []byte {
	out := append([]byte{}, data["ca.crt"]...)
	if prev := data[previousCA]; len(prev) > 0 {
		if ca, err := parseCert(prev); err == nil && c.now().Before(ca.NotAfter) {
			out = append(out, prev...)
		}
	}
	return out
}

// previousCA is the Secret key of the CA a rotation replaced.
const previousCA = "ca-previous.crt"

// Refresh is how often every replica reads the Secret again, writes the
// certificate it holds to Dir (the webhook server reloads it) and renews
// what is due.
const Refresh = 10 * time.Minute

// Runnable keeps the certificate current on every replica, not only the
// leader: each serves webhooks with its own copy in Dir.
func (c *Certs) Runnable(every time.Duration) manager.Runnable {
	return everyReplica{c: c, every: every}
}

type everyReplica struct {
	c     *Certs
	every time.Duration
}

func (e everyReplica) Start(ctx context.Context) error { return e.c.Run(ctx, e.every) }

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (everyReplica) NeedLeaderElection() bool { return false }

// Run keeps the certificate current until ctx ends.
func (c *Certs) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := c.Ensure(ctx); err != nil {
				logf.FromContext(ctx).Error(err, "renew webhook certificate")
			}
		}
	}
}

// valid says whether data holds a CA and a serving certificate signed by
// it, for our names, with more than RenewBefore left.
func (c *Certs) valid(data map[string][]byte) bool {
	ca, err := parseCert(data["ca.crt"])
	if err != nil {
		return false
	}
	cert, err := parseCert(data["tls.crt"])
	if err != nil {
		return false
	}
	if _, err := parseKey(data["ca.key"]); err != nil {
		return false
	}
	if _, err := parseKey(data["tls.key"]); err != nil {
		return false
	}
	now := c.now()
	if cert.NotAfter.Sub(now) < RenewBefore || ca.NotAfter.Sub(now) < RenewBefore {
		return false
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range c.DNSNames {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now}); err != nil {
			return false
		}
	}
	for _, ip := range c.IPs {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: ip.String(), Roots: pool, CurrentTime: now}); err != nil {
			return false
		}
	}
	return true
}

// generate issues a serving certificate, reusing the CA in old when it has
// life left, so that renewals do not change the caBundle.
func (c *Certs) generate(old map[string][]byte) (map[string][]byte, error) {
	now := c.now()
	ca, caErr := parseCert(old["ca.crt"])
	ca0 := ca
	caKey, keyErr := parseKey(old["ca.key"])
	caPEM, caKeyPEM := old["ca.crt"], old["ca.key"]
	if caErr != nil || keyErr != nil || ca.NotAfter.Sub(now) < 2*ServingLifetime {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: "stash-webhook-ca"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(CALifetime),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, err
		}
		if ca, err = x509.ParseCertificate(der); err != nil {
			return nil, err
		}
		caKey = key
		caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		caKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cn := "stash-webhook"
	if len(c.DNSNames) > 0 {
		cn = c.DNSNames[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(ServingLifetime),
		DNSNames: c.DNSNames, IPAddresses: c.IPs,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{
		"ca.crt": caPEM, "ca.key": caKeyPEM,
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	}
	// Keep trusting the CA being replaced (or the one replaced before) for
	// as long as it is valid: replicas pick up the new certificate only at
	// their next refresh.
	switch {
	case string(caPEM) != string(old["ca.crt"]) && caErr == nil && now.Before(ca0.NotAfter):
		out[previousCA] = old["ca.crt"]
	case len(old[previousCA]) > 0:
		if prev, err := parseCert(old[previousCA]); err == nil && now.Before(prev.NotAfter) {
			out[previousCA] = old[previousCA]
		}
	}
	return out, nil
}

func (c *Certs) patchCABundle(ctx context.Context, ca []byte) error {
	if c.Validating != "" {
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		err := c.setBundles(ctx, c.Validating, v, ca, func() []*[]byte {
			var out []*[]byte
			for i := range v.Webhooks {
				out = append(out, &v.Webhooks[i].ClientConfig.CABundle)
			}
			return out
		})
		if err != nil {
			return fmt.Errorf("set caBundle of ValidatingWebhookConfiguration %s: %w", c.Validating, err)
		}
	}
	if c.Mutating != "" {
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		err := c.setBundles(ctx, c.Mutating, m, ca, func() []*[]byte {
			var out []*[]byte
			for i := range m.Webhooks {
				out = append(out, &m.Webhooks[i].ClientConfig.CABundle)
			}
			return out
		})
		if err != nil {
			return fmt.Errorf("set caBundle of MutatingWebhookConfiguration %s: %w", c.Mutating, err)
		}
	}
	return nil
}

// setBundles reads the webhook configuration name into obj and writes ca
// into every caBundle that bundles points at, updating only on a change.
// A configuration that does not exist (webhooks not installed) is fine.
func (c *Certs) setBundles(ctx context.Context, name string, obj client.Object, ca []byte, bundles func() []*[]byte) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
			return err
		}
		changed := false
		for _, b := range bundles() {
			if !bytes.Equal(*b, ca) {
				*b, changed = ca, true
			}
		}
		if !changed {
			return nil
		}
		return c.Client.Update(ctx, obj)
	})
	return client.IgnoreNotFound(err)
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM key")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
