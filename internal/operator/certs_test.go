package operator_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashwebhook "github.com/stash-backup/stash/internal/webhook"
)

func certOf(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWebhookCertificateRotation checks issuance, reuse, renewal before
// expiry (same CA, so caBundle holds), and CA replacement near its end.
func TestWebhookCertificateRotation(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	ns := newNamespace(t, c)
	side := admissionregistrationv1.SideEffectClassNone
	url := "https://127.0.0.1:1/x"
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-v"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "x.stash.test", SideEffects: &side, AdmissionReviewVersions: []string{"v1"},
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"CREATE"},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"nothing.test"}, APIVersions: []string{"v1"}, Resources: []string{"nothings"}}}}}},
	}
	if err := c.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	dir := t.TempDir()
	certs := &stashwebhook.Certs{
		Client: c, Secret: client.ObjectKey{Namespace: ns, Name: "cert"},
		DNSNames: []string{"stash-operator.stash.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		Dir: dir, Validating: vwc.Name, Now: func() time.Time { return now },
	}
	secret := func() map[string][]byte {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cert"}, s); err != nil {
			t.Fatal(err)
		}
		return s.Data
	}
	bundle := func() []byte {
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := c.Get(ctx, client.ObjectKey{Name: vwc.Name}, v); err != nil {
			t.Fatal(err)
		}
		return v.Webhooks[0].ClientConfig.CABundle
	}

	if err := certs.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	first := secret()
	if string(bundle()) != string(first["ca.crt"]) {
		t.Fatal("caBundle is not the issued CA")
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil || string(onDisk) != string(first["tls.crt"]) {
		t.Fatalf("tls.crt on disk differs from the Secret (%v)", err)
	}
	serving := certOf(t, first["tls.crt"])
	pool := x509.NewCertPool()
	pool.AddCert(certOf(t, first["ca.crt"]))
	if _, err := serving.Verify(x509.VerifyOptions{DNSName: "stash-operator.stash.svc", Roots: pool}); err != nil {
		t.Fatalf("serving certificate does not verify for the Service name: %v", err)
	}

	// A second replica (or a restart) reuses the certificate.
	if err := certs.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if string(secret()["tls.crt"]) != string(first["tls.crt"]) {
		t.Fatal("a valid certificate was replaced")
	}

	// 20 days before the serving certificate expires: renewed, same CA.
	now = serving.NotAfter.Add(-20 * 24 * time.Hour)
	if err := certs.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := secret()
	if string(renewed["tls.crt"]) == string(first["tls.crt"]) || string(renewed["ca.crt"]) != string(first["ca.crt"]) {
		t.Fatal("want a new serving certificate from the same CA")
	}
	if certOf(t, renewed["tls.crt"]).NotAfter.Before(now.Add(300 * 24 * time.Hour)) {
		t.Fatal("renewed certificate is short-lived")
	}

	// Near the CA's end, a new CA is made and caBundle follows.
	now = certOf(t, first["ca.crt"]).NotAfter.Add(-20 * 24 * time.Hour)
	if err := certs.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	last := secret()
	if string(last["ca.crt"]) == string(first["ca.crt"]) {
		t.Fatal("want a new CA")
	}
	// Both CAs are trusted while the old one is valid: a replica still
	// serving the old certificate keeps working until it refreshes.
	if string(bundle()) != string(last["ca.crt"])+string(first["ca.crt"]) {
		t.Fatal("caBundle does not hold the new CA followed by the old one")
	}
	oldPool := x509.NewCertPool()
	oldPool.AppendCertsFromPEM(bundle())
	for _, served := range [][]byte{renewed["tls.crt"], last["tls.crt"]} {
		sc := certOf(t, served)
		if _, err := sc.Verify(x509.VerifyOptions{DNSName: "stash-operator.stash.svc", Roots: oldPool, CurrentTime: sc.NotBefore.Add(2 * time.Hour)}); err != nil {
			t.Errorf("a certificate a replica may serve during the rotation does not verify against caBundle: %v", err)
		}
	}
	// Another replica, with its own directory, picks up the new
	// certificate at its refresh.
	replica := *certs
	replica.Dir = t.TempDir()
	if err := replica.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(replica.Dir, "tls.crt")); err != nil || string(b) != string(last["tls.crt"]) {
		t.Fatalf("the other replica serves another certificate (%v)", err)
	}
	if string(secret()["tls.crt"]) != string(last["tls.crt"]) {
		t.Fatal("the other replica issued a certificate again")
	}
	// Once the old CA has expired, only the new one is trusted.
	now = certOf(t, first["ca.crt"]).NotAfter.Add(time.Hour)
	if err := certs.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if string(bundle()) != string(secret()["ca.crt"]) {
		t.Fatal("the expired CA is still in caBundle")
	}
}
