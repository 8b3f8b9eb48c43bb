package appbinding

import (
	"strings"
	"testing"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
)

func strp(s string) *string { return &s }

func TestResolve(t *testing.T) {
	pgUser := []string{"username", "POSTGRES_USER"}
	pgPass := []string{"password", "POSTGRES_PASSWORD"}
	tests := []struct {
		name   string
		cc     appcatalogv1alpha1.ClientConfig
		secret map[string][]byte
		tr     []appcatalogv1alpha1.SecretTransform
		want   Connection
		err    string
	}{
		{
			name: "postgres url",
			cc:   appcatalogv1alpha1.ClientConfig{URL: strp("postgresql://db.example.com:6432/app?sslmode=disable")},
			want: Connection{Scheme: "postgresql", Host: "db.example.com", Port: 6432, Database: "app"},
		},
		{
			name: "kubedb mysql url",
			cc:   appcatalogv1alpha1.ClientConfig{URL: strp("tcp(sample-mysql.demo.svc:3306)/")},
			want: Connection{Scheme: "tcp", Host: "sample-mysql.demo.svc", Port: 3306},
		},
		{
			name: "host only keeps default port",
			cc:   appcatalogv1alpha1.ClientConfig{URL: strp("127.0.0.1")},
			want: Connection{Scheme: "tcp", Host: "127.0.0.1", Port: 5432},
		},
		{
			name: "service",
			cc:   appcatalogv1alpha1.ClientConfig{Service: &appcatalogv1alpha1.ServiceReference{Name: "pg", Port: 5433, Scheme: "postgresql", Path: "/", Query: "sslmode=require"}},
			want: Connection{Scheme: "postgresql", Host: "pg.demo.svc", Port: 5433},
		},
		{
			name: "service with external host",
			cc:   appcatalogv1alpha1.ClientConfig{Service: &appcatalogv1alpha1.ServiceReference{Name: "127.0.0.1", Port: 5432}},
			want: Connection{Host: "127.0.0.1", Port: 5432},
		},
		{
			name:   "legacy secret keys",
			cc:     appcatalogv1alpha1.ClientConfig{URL: strp("pg:5432")},
			secret: map[string][]byte{"POSTGRES_USER": []byte("admin"), "POSTGRES_PASSWORD": []byte("pw")},
			want:   Connection{Scheme: "tcp", Host: "pg", Port: 5432, Username: "admin", Password: "pw"},
		},
		{
			name:   "secret transforms",
			cc:     appcatalogv1alpha1.ClientConfig{URL: strp("pg:5432")},
			secret: map[string][]byte{"user": []byte("u"), "pass": []byte("p"), "junk": []byte("x")},
			tr: []appcatalogv1alpha1.SecretTransform{
				{RenameKey: &appcatalogv1alpha1.RenameKeyTransform{From: "user", To: "username"}},
				{AddKey: &appcatalogv1alpha1.AddKeyTransform{Key: "password", StringValue: strp("override")}},
				{RemoveKey: &appcatalogv1alpha1.RemoveKeyTransform{Key: "junk"}},
			},
			want: Connection{Scheme: "tcp", Host: "pg", Port: 5432, Username: "u", Password: "override"},
		},
		{
			name: "mongodb seed list",
			cc:   appcatalogv1alpha1.ClientConfig{URL: strp("mongodb://mg-0.mg-pods:27017,mg-1.mg-pods,10.0.0.3:27018/?replicaSet=rs0")},
			want: Connection{Scheme: "mongodb", Host: "mg-0.mg-pods", Port: 27017, Seeds: []string{"mg-0.mg-pods:27017", "mg-1.mg-pods:5432", "10.0.0.3:27018"}},
		},
		{
			name: "mongodb+srv",
			cc:   appcatalogv1alpha1.ClientConfig{URL: strp("mongodb+srv://cluster0.example.com/?authSource=admin")},
			want: Connection{Scheme: "mongodb+srv", Host: "cluster0.example.com", Port: 5432},
		},
		{name: "empty seed", cc: appcatalogv1alpha1.ClientConfig{URL: strp("mongodb://a:1,,b:2/")}, err: "empty host"},
		{name: "bad seed", cc: appcatalogv1alpha1.ClientConfig{URL: strp("mongodb://a:1,-b:2/")}, err: "bad host"},
		{name: "credentials in url", cc: appcatalogv1alpha1.ClientConfig{URL: strp("postgresql://u:S3cret@h:1/db")}, err: "must not hold credentials"},
		{name: "credentials in mysql dsn", cc: appcatalogv1alpha1.ClientConfig{URL: strp("root:S3cret@tcp(mysql:3306)/")}, err: "must not hold credentials"},
		{name: "unparsable url with credentials", cc: appcatalogv1alpha1.ClientConfig{URL: strp("postgresql://u:S3cret@h:1/db%zz")}, err: "invalid URL escape"},
		{name: "no host", cc: appcatalogv1alpha1.ClientConfig{URL: strp("postgresql:///db")}, err: "names no host"},
		{name: "no host, port only", cc: appcatalogv1alpha1.ClientConfig{URL: strp(":5432")}, err: "names no host"},
		{name: "no host, mysql form", cc: appcatalogv1alpha1.ClientConfig{URL: strp("tcp(:3306)/")}, err: "names no host"},
		{name: "bad port", cc: appcatalogv1alpha1.ClientConfig{URL: strp("h:99999")}, err: "bad port"},
		{name: "nothing", cc: appcatalogv1alpha1.ClientConfig{}, err: "set spec.clientConfig.url or spec.clientConfig.service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ab := &appcatalogv1alpha1.AppBinding{}
			ab.Name, ab.Namespace = "db", "demo"
			ab.Spec.ClientConfig = tt.cc
			ab.Spec.SecretTransforms = tt.tr
			c, err := Resolve(ab, tt.secret, 5432, pgUser, pgPass)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "S3cret") {
					t.Fatalf("err %v holds the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Scheme != tt.want.Scheme || c.Host != tt.want.Host || c.Port != tt.want.Port || c.Database != tt.want.Database ||
				c.Username != tt.want.Username || c.Password != tt.want.Password || strings.Join(c.Seeds, " ") != strings.Join(tt.want.Seeds, " ") {
				t.Errorf("got %+v, want %+v", *c, tt.want)
			}
		})
	}
}
