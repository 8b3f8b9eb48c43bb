package operator_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller/backupconfiguration"
	"github.com/stash-backup/stash/internal/controller/rbac"
	"github.com/stash-backup/stash/internal/operator"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/status"
	"github.com/stash-backup/stash/internal/testserver"
)

// startOperatorNoWebhooks runs the operator without its webhooks, and with
// the webhook configurations removed from the API server: what a cluster
// installed without webhooks (or whose webhook is down) admits, the
// reconcilers alone must hold back. startOperator reinstalls them.
func startOperatorNoWebhooks(t *testing.T) {
	t.Helper()
	c := newClient(t)
	for _, o := range []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "stash-validating-webhook"}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "stash-mutating-webhook"}},
	} {
		if err := c.Delete(context.Background(), o); client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
	}
	runOperator(t, func(o *operator.Options) { o.Webhooks = false })
}

// deputy is the confused-deputy setup: namespaces A (an attacker's), B
// (holding a Repository that allows namespaces labelled team=c) and C
// (labelled team=c), each with a PostgreSQL AppBinding.
type deputy struct {
	a, b, cns string
}

const appBinding = `
apiVersion: v1
kind: Secret
metadata: {name: pg-auth}
stringData: {username: postgres, password: pw}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: pg}
spec:
  type: kubedb.com/postgres
  version: "14.0"
  clientConfig:
    service: {name: pg, port: 5432, scheme: postgresql}
  secret: {name: pg-auth}
`

func newDeputy(t *testing.T, c client.Client) deputy {
	t.Helper()
	d := deputy{a: newNamespace(t, c), b: newNamespace(t, c), cns: newNamespace(t, c)}
	ns := get(t, c, "", d.cns, &corev1.Namespace{})
	ns.Labels["team"] = "c"
	if err := c.Update(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	mustApply(t, c, d.b, fixtures+`---
apiVersion: v1
kind: Secret
metadata: {name: other-secret}
stringData: {token: do-not-read}
`)
	sel := stashv1alpha1.NamespacesFromSelector
	updateRepository(t, c, d.b, "s3-repo", func(repo *stashv1alpha1.Repository) {
		repo.Spec.UsagePolicy = &stashv1alpha1.UsagePolicy{AllowedNamespaces: stashv1alpha1.AllowedNamespaces{
			From: &sel, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "c"}}}}
	})
	mustApply(t, c, d.a, appBinding)
	mustApply(t, c, d.cns, appBinding)
	return d
}

func (d deputy) backupConfiguration(name string) string {
	return strings.Replace(backupConfiguration(name, ""), "repository: {name: s3-repo}", "repository: {name: s3-repo, namespace: "+d.b+"}", 1)
}

func (d deputy) restoreSession(name string) string {
	return fmt.Sprintf(`
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: %s}
spec:
  task: {name: postgres-restore-14.0}
  repository: {name: s3-repo, namespace: %s}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}
    rules:
    - snapshots: [latest]
`, name, d.b)
}

// repositoryFixtures are the Repository and its Secret of fixtures,
// without the AppBinding.
var repositoryFixtures = strings.Join(strings.Split(fixtures, "\n---\n")[2:], "\n---\n")

// updateRepository changes a Repository, retrying when the operator wrote
// its status in between.
func updateRepository(t *testing.T, c client.Client, ns, name string, change func(*stashv1alpha1.Repository)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		repo := get(t, c, ns, name, &stashv1alpha1.Repository{})
		change(repo)
		return c.Update(context.Background(), repo)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rbacIn lists the Roles and RoleBindings of namespace ns.
func rbacIn(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	var roles rbacv1.RoleList
	var rbs rbacv1.RoleBindingList
	if err := c.List(context.Background(), &roles, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if err := c.List(context.Background(), &rbs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range roles.Items {
		out = append(out, "Role/"+r.Name)
	}
	for _, r := range rbs.Items {
		out = append(out, "RoleBinding/"+r.Name)
	}
	sort.Strings(out)
	return out
}

func grantOf(t *testing.T, c client.Client, ns string) *rbacv1.Role {
	t.Helper()
	var roles rbacv1.RoleList
	if err := c.List(context.Background(), &roles, client.InNamespace(ns), client.HasLabels{rbac.LabelGrantOwnerUID}); err != nil {
		t.Fatal(err)
	}
	if len(roles.Items) != 1 {
		return nil
	}
	return &roles.Items[0]
}

func waitNoGrant(t *testing.T, c client.Client, ns, what string) {
	t.Helper()
	eventually(t, 15*time.Second, what, func() error {
		if got := rbacIn(t, c, ns); len(got) > 0 {
			return fmt.Errorf("still in %s: %v", ns, got)
		}
		return nil
	})
}

func TestConfusedDeputyWebhooksOn(t *testing.T) {
	startOperator(t)
	confusedDeputy(t, true)
}

func TestConfusedDeputyWebhooksOff(t *testing.T) {
	startOperatorNoWebhooks(t)
	confusedDeputy(t, false)
}

func confusedDeputy(t *testing.T, webhooks bool) {
	c := newClient(t)
	ctx := context.Background()
	d := newDeputy(t, c)

	// From A: refused by the webhook, or admitted and held Invalid by the
	// reconcilers; either way nothing is granted in B.
	err := apply(t, c, d.a, d.backupConfiguration("steal"))
	switch {
	case webhooks && (err == nil || !strings.Contains(err.Error(), "does not match")):
		t.Fatalf("webhook admitted a BackupConfiguration of A using B's Repository: %v", err)
	case !webhooks && err != nil:
		t.Fatal(err)
	}
	err = apply(t, c, d.a, d.restoreSession("steal"))
	switch {
	case webhooks && (err == nil || !strings.Contains(err.Error(), "does not match")):
		t.Fatalf("webhook admitted a RestoreSession of A using B's Repository: %v", err)
	case !webhooks && err != nil:
		t.Fatal(err)
	}
	if !webhooks {
		eventually(t, 20*time.Second, "A's BackupConfiguration Invalid", func() error {
			bc := get(t, c, d.a, "steal", &stashv1beta1.BackupConfiguration{})
			if bc.Status.Phase != stashv1beta1.InvokerInvalid {
				return fmt.Errorf("phase %q %+v", bc.Status.Phase, bc.Status.Conditions)
			}
			return nil
		})
		eventually(t, 20*time.Second, "A's RestoreSession Invalid", func() error {
			rs := get(t, c, d.a, "steal", &stashv1beta1.RestoreSession{})
			if rs.Status.Phase != stashv1beta1.RestoreInvalid {
				return fmt.Errorf("phase %q %+v", rs.Status.Phase, rs.Status.Conditions)
			}
			return nil
		})
		// A session created by hand for the Invalid invoker is skipped.
		name := createSession(t, c, d.a, "steal")
		waitSession(t, c, d.a, name, stashv1beta1.BackupSessionSkipped)
	}
	if got := rbacIn(t, c, d.b); len(got) > 0 {
		t.Fatalf("A's objects made RBAC objects in B: %v", got)
	}

	// From C: the grant in B names only the storage Secret and the
	// Repository, and binds only C's step ServiceAccount.
	mustApply(t, c, d.cns, d.backupConfiguration("shared"))
	waitReady(t, c, d.cns, "shared")
	name := createSession(t, c, d.cns, "shared")
	waitSession(t, c, d.cns, name, stashv1beta1.BackupSessionRunning)
	g := grantOf(t, c, d.b)
	if g == nil {
		t.Fatalf("no single grant in B: %v", rbacIn(t, c, d.b))
	}
	if !strings.HasPrefix(g.Name, "stash-grant-"+d.cns) {
		t.Errorf("grant %s is not named after its source namespace", g.Name)
	}
	for _, r := range g.Rules {
		want := "s3-repo"
		if contains(r.Resources, "secrets") {
			want = "s3-secret"
		}
		if len(r.ResourceNames) != 1 || r.ResourceNames[0] != want {
			t.Errorf("grant rule %+v does not name exactly %s", r, want)
		}
		for _, v := range r.Verbs {
			if contains(r.Resources, "secrets") && v != "get" {
				t.Errorf("grant lets C %s Secrets", v)
			}
		}
	}
	rb := get(t, c, d.b, g.Name, &rbacv1.RoleBinding{})
	if len(rb.Subjects) != 1 || rb.Subjects[0].Namespace != d.cns || rb.Subjects[0].Kind != rbacv1.ServiceAccountKind {
		t.Errorf("grant binds %+v", rb.Subjects)
	}

	// The race: a Ready BackupConfiguration of A pointed at B's Repository
	// and a session created at once, 200 times. No grant may appear in B,
	// not even for a moment (B is listed after every round).
	mustApply(t, c, d.a, repositoryFixtures+"---"+backupConfiguration("racer", ""))
	waitReady(t, c, d.a, "racer")
	point := func(ref stashv1beta1.ObjectReference) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			bc := get(t, c, d.a, "racer", &stashv1beta1.BackupConfiguration{})
			bc.Spec.Repository = ref
			return c.Update(ctx, bc)
		})
	}
	own := stashv1beta1.ObjectReference{Name: "s3-repo"}
	for i := 0; i < 200; i++ {
		err := point(stashv1beta1.ObjectReference{Name: "s3-repo", Namespace: d.b})
		if webhooks != (err != nil) {
			t.Fatalf("round %d: update pointing A at B's Repository: %v (webhooks %v)", i, err, webhooks)
		}
		createSession(t, c, d.a, "racer")
		if got := rbacIn(t, c, d.b); len(got) != 2 {
			t.Fatalf("round %d: RBAC objects in B: %v (want only C's grant)", i, got)
		}
		if err == nil {
			if err := point(own); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every racing session settles, and B still holds only C's grant.
	eventually(t, 90*time.Second, "racing sessions settled", func() error {
		var list stashv1beta1.BackupSessionList
		if err := c.List(ctx, &list, client.InNamespace(d.a)); err != nil {
			return err
		}
		for _, s := range list.Items {
			if s.Status.Phase == "" {
				return fmt.Errorf("session %s not started", s.Name)
			}
		}
		return nil
	})
	if got := rbacIn(t, c, d.b); len(got) != 2 {
		t.Fatalf("after the race, RBAC objects in B: %v", got)
	}

	// Revoking the policy removes C's grant.
	updateRepository(t, c, d.b, "s3-repo", func(repo *stashv1alpha1.Repository) {
		repo.Spec.UsagePolicy.AllowedNamespaces.Selector.MatchLabels["team"] = "x"
	})
	waitNoGrant(t, c, d.b, "grant removed after the policy was revoked")
	eventually(t, 20*time.Second, "C's BackupConfiguration Invalid after revocation", func() error {
		bc := get(t, c, d.cns, "shared", &stashv1beta1.BackupConfiguration{})
		if bc.Status.Phase != stashv1beta1.InvokerInvalid {
			return fmt.Errorf("phase %q", bc.Status.Phase)
		}
		return nil
	})

	// A RestoreSession's grant goes with it.
	updateRepository(t, c, d.b, "s3-repo", func(repo *stashv1alpha1.Repository) {
		repo.Spec.UsagePolicy.AllowedNamespaces.Selector.MatchLabels["team"] = "c"
	})
	if err := c.Delete(ctx, get(t, c, d.cns, "shared", &stashv1beta1.BackupConfiguration{})); err != nil {
		t.Fatal(err)
	}
	waitNoGrant(t, c, d.b, "grant removed with its BackupConfiguration")
	mustApply(t, c, d.cns, d.restoreSession("restore"))
	eventually(t, 60*time.Second, "RestoreSession's grant in B", func() error {
		if grantOf(t, c, d.b) == nil {
			return fmt.Errorf("no grant: %v", rbacIn(t, c, d.b))
		}
		return nil
	})
	if err := c.Delete(ctx, get(t, c, d.cns, "restore", &stashv1beta1.RestoreSession{})); err != nil {
		t.Fatal(err)
	}
	waitNoGrant(t, c, d.b, "grant removed with its RestoreSession")
}

// TestRepositoryStatusOnlyOfAnAllowedRepository: a session whose
// BackupConfiguration was pointed at another namespace's Repository while
// it ran (no webhook to refuse the change) does not write its report into
// that Repository's status.
func TestRepositoryStatusOnlyOfAnAllowedRepository(t *testing.T) {
	startOperatorNoWebhooks(t)
	c := newClient(t)
	ctx := context.Background()
	a, b := newNamespace(t, c), newNamespace(t, c)
	mustApply(t, c, b, repositoryFixtures)
	// The preBackup hook holds the session Running until released.
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case held <- struct{}{}:
		default:
		}
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	repoDir, data := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	bc := strings.ReplaceAll(sidecarBackup("web-backup", "Deployment", "web"), "/source/data", data) +
		fmt.Sprintf("  hooks: {preBackup: {httpGet: {port: %d, path: /}}}\n", port)
	mustApply(t, c, a, fmt.Sprintf(sidecarRepo, repoDir)+"---"+workloadManifest("Deployment", "web", "")+"---"+bc)
	waitSidecar(t, c, a, "Deployment", "web", true)
	waitReady(t, c, a, "web-backup")
	startSidecar(t, a, "web-backup", "Deployment", "web", "web-a", "node-a", secretDir(t))
	name := createSession(t, c, a, "web-backup")
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("the preBackup hook was not called")
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := get(t, c, a, "web-backup", &stashv1beta1.BackupConfiguration{})
		cur.Spec.Repository = stashv1beta1.ObjectReference{Name: "s3-repo", Namespace: b}
		return c.Update(ctx, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	waitSessionWithin(t, c, a, name, "", time.Minute)
	if st := get(t, c, b, "s3-repo", &stashv1alpha1.Repository{}).Status; st.LastBackupTime != nil || st.SnapshotCount != 0 {
		t.Errorf("namespace %s's Repository took the report of a session of %s: %+v", b, a, st)
	}
}

// TestOperatorAdoptsNothing: a user's Role of the name Stash would give a
// step's Role is neither changed nor deleted; the session fails saying so.
func TestOperatorAdoptsNothing(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ctx := context.Background()
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fixtures+"---"+backupConfiguration("mine", ""))
	waitReady(t, c, ns, "mine")
	userRole := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "stash-backup-mine", Namespace: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}},
	}
	if err := c.Create(ctx, userRole); err != nil {
		t.Fatal(err)
	}
	name := createSession(t, c, ns, "mine")
	bs := waitSession(t, c, ns, name, stashv1beta1.BackupSessionFailed)
	if msg := firstStatsError(bs); !strings.Contains(msg, "not managed by Stash") {
		t.Errorf("session error %q does not say the Role is not Stash's", msg)
	}
	got := get(t, c, ns, "stash-backup-mine", &rbacv1.Role{})
	if len(got.Rules) != 1 || got.Rules[0].Resources[0] != "configmaps" || got.Labels[rbac.LabelManagedBy] != "" {
		t.Errorf("the user's Role was changed: %+v", got)
	}
	// Removing a grant never removes an object that is not the operator's.
	if err := rbac.RemoveGrant(ctx, c, ns, "stash-backup-mine"); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "stash-backup-mine"}, &rbacv1.Role{}); apierrors.IsNotFound(err) {
		t.Error("RemoveGrant deleted a user's Role")
	}
}

func firstStatsError(bs *stashv1beta1.BackupSession) string {
	for _, t := range bs.Status.Targets {
		for _, s := range t.Stats {
			if s.Error != "" {
				return s.Error
			}
		}
	}
	return ""
}

// TestStepRoleNamesItsObjects: the step Role of a same-namespace backup
// names every Secret, the invoker, the session and the Repository, and
// nothing cluster-scoped or unnamed beyond events.
func TestStepRoleNamesItsObjects(t *testing.T) {
	c, ns, name := runningBackup(t, "named", "")
	role := get(t, c, ns, "stash-backup-named", &rbacv1.Role{})
	want := map[string][]string{
		"secrets": {"pg-auth", "s3-secret"}, "backupconfigurations": {"named"}, "backupsessions": {name},
		"backupsessions/status": {name}, "repositories": {"s3-repo"}, "appbindings": {"pg"},
	}
	for _, r := range role.Rules {
		res := r.Resources[0]
		if res == "events" {
			continue
		}
		if fmt.Sprint(r.ResourceNames) != fmt.Sprint(want[res]) {
			t.Errorf("%s: resourceNames %v, want %v", res, r.ResourceNames, want[res])
		}
		delete(want, res)
	}
	if len(want) > 0 {
		t.Errorf("no rule for %v", want)
	}
}

// asUser is a client that acts as user (impersonated by the admin), whose
// rights are only the rules given in namespace ns.
func asUser(t *testing.T, ns, user string, rules ...rbacv1.PolicyRule) client.Client {
	t.Helper()
	admin := newClient(t)
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}, Rules: rules}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	for _, o := range []client.Object{role, rb} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(api.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: admin.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRuntimeSettingsNeedPodRights: a user who may create Stash objects but
// not pods cannot choose the ServiceAccount, node, privileges, environment
// or commands of a Stash Job, nor have a RestoreSession create PVCs; a user
// who may create pods can; settings that grant nothing (resources, nice)
// are open to both.
func TestRuntimeSettingsNeedPodRights(t *testing.T) {
	startOperator(t)
	admin := newClient(t)
	ns := newNamespace(t, admin)
	mustApply(t, admin, ns, fixtures)
	stash := rbacv1.PolicyRule{APIGroups: []string{"stash.appscode.com"}, Resources: []string{"backupconfigurations", "restoresessions"}, Verbs: []string{"get", "create", "update"}}
	pods := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods", "persistentvolumeclaims"}, Verbs: []string{"create"}}
	mallory := asUser(t, ns, "mallory", stash)
	alice := asUser(t, ns, "alice", stash, pods)

	settings := map[string]string{
		"serviceAccountName":        "  runtimeSettings: {pod: {serviceAccountName: default}}",
		"nodeName":                  "  runtimeSettings: {pod: {nodeName: node-1}}",
		"pod securityContext":       "  runtimeSettings: {pod: {securityContext: {runAsUser: 0}}}",
		"container securityContext": "  runtimeSettings: {container: {securityContext: {privileged: true}}}",
		"nodeSelector":              "  runtimeSettings: {pod: {nodeSelector: {kubernetes.io/hostname: node-1}}}",
		"tolerations":               "  runtimeSettings: {pod: {tolerations: [{operator: Exists}]}}",
		"serviceAccountAnnotations": "  runtimeSettings: {pod: {serviceAccountAnnotations: {eks.amazonaws.com/role-arn: x}}}",
		"priorityClassName":         "  runtimeSettings: {pod: {priorityClassName: system-cluster-critical}}",
		"runtimeClassName":          "  runtimeSettings: {pod: {runtimeClassName: unconfined}}",
		"lifecycle":                 "  runtimeSettings: {container: {lifecycle: {postStart: {exec: {command: [sh, -c, id]}}}}}",
		"livenessProbe":             "  runtimeSettings: {container: {livenessProbe: {exec: {command: [sh, -c, id]}}}}",
		"env":                       "  runtimeSettings: {container: {env: [{name: BASH_ENV, value: /source/x}]}}",
		"envFrom":                   "  runtimeSettings: {container: {envFrom: [{secretRef: {name: pg-auth}}]}}",
	}
	// The API server loads a new policy asynchronously.
	eventually(t, 30*time.Second, "admission policy in force", func() error {
		err := apply(t, mallory, ns, backupConfiguration("probe", settings["serviceAccountName"]))
		if err == nil {
			_ = admin.Delete(context.Background(), get(t, admin, ns, "probe", &stashv1beta1.BackupConfiguration{}))
			return fmt.Errorf("admitted")
		}
		if !strings.Contains(err.Error(), "only a user who may create pods") {
			return err
		}
		return nil
	})
	i := 0
	for what, extra := range settings {
		i++
		err := apply(t, mallory, ns, backupConfiguration(fmt.Sprintf("m%d", i), extra))
		if err == nil || !strings.Contains(err.Error(), "only a user who may create pods") {
			t.Errorf("%s set by a user who cannot create pods: %v", what, err)
		}
		if err := apply(t, alice, ns, backupConfiguration(fmt.Sprintf("a%d", i), extra)); err != nil {
			t.Errorf("%s set by a user who can create pods: %v", what, err)
		}
	}
	if err := apply(t, mallory, ns, backupConfiguration("plain", "  runtimeSettings: {container: {resources: {limits: {memory: 512Mi}}}}")); err != nil {
		t.Errorf("resources refused: %v", err)
	}
	// An update that leaves the setting alone is fine for anyone.
	bc := get(t, mallory, ns, "a1", &stashv1beta1.BackupConfiguration{})
	bc.Spec.Paused = true
	if err := mallory.Update(context.Background(), bc); err != nil {
		t.Errorf("update that keeps alice's setting: %v", err)
	}

	rs := `
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: %s}
spec:
  task: {name: pvc-restore}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: data}
    volumeMounts: [{name: data, mountPath: /restore/data}]
    volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
    rules: [{snapshots: [latest]}]
`
	if err := apply(t, mallory, ns, fmt.Sprintf(rs, "m")); err == nil || !strings.Contains(err.Error(), "volumeClaimTemplates") {
		t.Errorf("RestoreSession creating PVCs for a user who cannot: %v", err)
	}
	if err := apply(t, alice, ns, fmt.Sprintf(rs, "a")); err != nil {
		t.Errorf("RestoreSession creating PVCs for a user who can: %v", err)
	}

	// Without the policy the operator cannot tell who set them: refused.
	ctx := context.Background()
	if err := admin.Delete(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "stash-runtime-settings"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testserver.InstallAdmissionPolicy(ctx, admin) })
	mustApply(t, admin, ns, backupConfiguration("unverified", settings["serviceAccountName"]))
	eventually(t, 20*time.Second, "Invalid without the admission policy", func() error {
		bc := get(t, admin, ns, "unverified", &stashv1beta1.BackupConfiguration{})
		if bc.Status.Phase != stashv1beta1.InvokerInvalid {
			return fmt.Errorf("phase %q", bc.Status.Phase)
		}
		if c := status.FindCondition(bc.Status.Conditions, backupconfiguration.CondValidationPassed); c == nil || !strings.Contains(c.Message, "stash-runtime-settings") {
			return fmt.Errorf("condition %+v does not name the policy", c)
		}
		return nil
	})
}

// TestStashObjectsNeedTheRightsTheyUse: what a Stash object would have the
// operator do on its author's behalf is admitted only for an author who
// could do it without Stash: exec hooks need pods/exec, a sidecar needs
// update on the workload, a repository on a volume other than a PVC needs
// pod create, and a Secret named by a Repository or AppBinding needs get
// on that Secret, and a target in another namespace needs get on it
// there. What needs no right (an HTTP hook, a PVC) stays open.
func TestStashObjectsNeedTheRightsTheyUse(t *testing.T) {
	startOperator(t)
	admin := newClient(t)
	ns := newNamespace(t, admin)
	mustApply(t, admin, ns, fixtures)
	stash := []rbacv1.PolicyRule{
		{APIGroups: []string{"stash.appscode.com"}, Resources: []string{"backupconfigurations", "restoresessions", "repositories"}, Verbs: []string{"get", "create", "update"}},
		{APIGroups: []string{"appcatalog.appscode.com"}, Resources: []string{"appbindings"}, Verbs: []string{"get", "create", "update"}},
	}
	// Everyone may read the Secret they made themselves.
	mustApply(t, admin, ns, "apiVersion: v1\nkind: Secret\nmetadata: {name: own-secret}\nstringData: {RESTIC_PASSWORD: pw}\n")
	stash = append(stash, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"own-secret"}})
	mallory := asUser(t, ns, "mallory", stash...)
	alice := asUser(t, ns, "alice", append(stash,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"pg-auth", "s3-secret"}})...)
	erin := asUser(t, ns, "erin", append(stash, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}})...)
	dave := asUser(t, ns, "dave", append(stash, rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"update"}, ResourceNames: []string{"web"}})...)

	execHook := backupConfiguration("exec-%s", "  hooks: {preBackup: {exec: {command: [sh, -c, id]}}}")
	httpHook := backupConfiguration("http", "  hooks: {preBackup: {httpGet: {port: 8080, path: /ready}}}")
	repo := `
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: %s}
spec:
  backend:
%s`
	hostPath := "    local: {hostPath: {path: /}, mountPath: /host}\n    storageSecretName: own-secret\n"
	pvc := "    local: {persistentVolumeClaim: {claimName: data}, mountPath: /repo}\n    storageSecretName: own-secret\n"
	withSecret := "    s3: {endpoint: \"http://127.0.0.1:9\", bucket: b}\n    storageSecretName: s3-secret\n"
	binding := `
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: %s}
spec:
  type: kubedb.com/postgres
  clientConfig: {url: "postgresql://db:5432/"}
%s`
	// A target in another namespace: alice may get AppBinding pg there.
	other := newNamespace(t, admin)
	asUser(t, other, "alice", rbacv1.PolicyRule{APIGroups: []string{"appcatalog.appscode.com"}, Resources: []string{"appbindings"}, Verbs: []string{"get"}, ResourceNames: []string{"pg"}})
	elsewhere := func(name, target string) string {
		return strings.Replace(backupConfiguration(name, ""), "kind: AppBinding, name: pg}", "kind: AppBinding, name: "+target+", namespace: "+other+"}", 1)
	}
	// The API server loads a new policy asynchronously.
	eventually(t, 30*time.Second, "admission policy in force", func() error {
		if err := apply(t, mallory, ns, fmt.Sprintf(execHook, "probe")); err == nil {
			_ = admin.Delete(context.Background(), get(t, admin, ns, "exec-probe", &stashv1beta1.BackupConfiguration{}))
			return fmt.Errorf("admitted")
		}
		return nil
	})
	for _, tc := range []struct {
		what     string
		manifest string
		user     client.Client
		refused  string // "" when admitted
	}{
		{"exec hook, no right to exec", fmt.Sprintf(execHook, "m"), mallory, "may exec into pods"},
		{"exec hook, pods create alone", fmt.Sprintf(execHook, "a"), alice, "may exec into pods"},
		{"exec hook, pods/exec", fmt.Sprintf(execHook, "e"), erin, ""},
		{"HTTP hook", httpHook, mallory, ""},
		{"sidecar, no right to update the Deployment", sidecarBackup("web-m", "Deployment", "web"), mallory, "may update Deployment web"},
		{"sidecar, another Deployment", sidecarBackup("other-d", "Deployment", "other"), dave, "may update Deployment other"},
		{"sidecar, update on the Deployment", sidecarBackup("web-d", "Deployment", "web"), dave, ""},
		{"hostPath repository", fmt.Sprintf(repo, "host-m", hostPath), mallory, "volume other than a persistentVolumeClaim"},
		{"hostPath repository, pods create", fmt.Sprintf(repo, "host-a", hostPath), alice, ""},
		{"PVC repository", fmt.Sprintf(repo, "pvc-m", pvc), mallory, ""},
		{"storage Secret the user cannot read", fmt.Sprintf(repo, "s3-m", withSecret), mallory, "may read Secret s3-secret"},
		{"storage Secret the user can read", fmt.Sprintf(repo, "s3-a", withSecret), alice, ""},
		{"AppBinding Secret the user cannot read", fmt.Sprintf(binding, "ab-m", "  secret: {name: pg-auth}\n"), mallory, "may read Secret pg-auth"},
		{"AppBinding Secret the user can read", fmt.Sprintf(binding, "ab-a", "  secret: {name: pg-auth}\n"), alice, ""},
		{"AppBinding TLS Secret", fmt.Sprintf(binding, "tls-m", "  tlsSecret: {name: pg-auth}\n"), mallory, "may read Secret pg-auth"},
		{"AppBinding addKeysFrom", fmt.Sprintf(binding, "keys-m", "  secretTransforms: [{addKeysFrom: {secretRef: {name: s3-secret}}}]\n"), mallory, "addKeysFrom"},
		{"target in another namespace the user cannot get", elsewhere("else-m", "pg"), mallory, "may get AppBinding pg in namespace " + other},
		{"another target there", elsewhere("else-o", "other"), alice, "may get AppBinding other in namespace " + other},
		{"target in another namespace the user can get", elsewhere("else-a", "pg"), alice, ""},
		{"target in the invoker's namespace, named", strings.Replace(backupConfiguration("same-m", ""), "name: pg}", "name: pg, namespace: "+ns+"}", 1), mallory, ""},
		{"AppBinding addKeysFrom the user can read", fmt.Sprintf(binding, "keys-a", "  secretTransforms: [{addKeysFrom: {secretRef: {name: s3-secret}}}]\n"), alice, ""},
	} {
		err := apply(t, tc.user, ns, tc.manifest)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.what, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s: %v, want refused with %q", tc.what, err, tc.refused)
		}
	}
	// Anyone may change what an object keeps as it was.
	bc := get(t, mallory, ns, "exec-e", &stashv1beta1.BackupConfiguration{})
	bc.Spec.Paused = true
	if err := mallory.Update(context.Background(), bc); err != nil {
		t.Errorf("pausing erin's configuration with its exec hook: %v", err)
	}
}

// TestAdmissionPolicyMatchesChart: the policy applied by kubectl and the
// one the chart ships are the same.
func TestAdmissionPolicyMatchesChart(t *testing.T) {
	a, err := os.ReadFile(filepath.Join(testserver.RepoRoot(), "config", "admission", "runtime-settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(testserver.RepoRoot(), "charts", "stash", "templates", "admissionpolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Error("config/admission/runtime-settings.yaml and charts/stash/templates/admissionpolicy.yaml differ")
	}
}

// TestSecureMetrics: with --metrics-secure, /metrics answers only HTTPS
// clients whose token may get /metrics: none without a token (401), a
// ServiceAccount without the right gets 403, one with it gets the metrics.
func TestSecureMetrics(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	ns := newNamespace(t, c)
	op := runOperator(t, func(o *operator.Options) { o.Webhooks, o.SecureMetrics = false, true })
	metricsAddr := op.metricsAddr

	token := func(sa string) string {
		if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}); err != nil {
			t.Fatal(err)
		}
		tr := &authenticationv1.TokenRequest{}
		if err := c.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}, tr); err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	reader, nobody := token("prometheus"), token("nobody")
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "prometheus", Namespace: ns}}}
	for _, obj := range []client.Object{cr, crb} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test checks authentication, not the self-signed certificate
	get := func(tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+metricsAddr+"/metrics", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually(t, 30*time.Second, "metrics served to the allowed token", func() error {
		if code, body := get(reader); code != http.StatusOK || !strings.Contains(body, "controller_runtime") {
			return fmt.Errorf("%d %.200s", code, body)
		}
		return nil
	})
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", code)
	}
	if code, _ := get(nobody); code != http.StatusForbidden {
		t.Errorf("token without the right: %d, want 403", code)
	}
	if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served the metrics")
		}
	}
}

// TestSessionEndsWhenItsPodIsLost: there is no kubelet here, so the pod's
// state is set the way the node lifecycle and pod GC controllers would when
// its node goes away (DisruptionTarget), and when it is deleted mid-step.
// The session fails with the cause and the next one runs.
func TestSessionEndsWhenItsPodIsLost(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ctx := context.Background()
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fixtures+"---"+backupConfiguration("lost", ""))
	waitReady(t, c, ns, "lost")
	for _, tc := range []struct {
		name, want string
		lose       func(p *corev1.Pod)
	}{
		{"node gone", "node no longer exists", func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: "DeletionByPodGC", Message: "PodGC: node no longer exists", LastTransitionTime: metav1.Now()})
			if err := c.Status().Update(ctx, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"evicted", "Evicted", func(p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
			if err := c.Status().Update(ctx, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", "was deleted before its step finished", func(p *corev1.Pod) {
			// A finalizer keeps the deleted pod visible, as a kubelet
			// still stopping its containers would.
			p.Finalizers = []string{"stash.test/hold"}
			if err := c.Update(ctx, p); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, p); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				p := get(t, c, ns, p.Name, &corev1.Pod{})
				p.Finalizers = nil
				_ = c.Update(ctx, p)
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := createSession(t, c, ns, "lost")
			waitSession(t, c, ns, name, stashv1beta1.BackupSessionRunning)
			job := get(t, c, ns, plan.BackupJobName(name), &batchv1.Job{})
			labels := map[string]string{"batch.kubernetes.io/job-name": job.Name}
			for k, v := range job.Spec.Template.Labels {
				labels[k] = v
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-pod", Namespace: ns, Labels: labels},
				Spec:       job.Spec.Template.Spec,
			}
			if err := c.Create(ctx, pod); err != nil {
				t.Fatal(err)
			}
			tc.lose(pod)
			bs := waitSession(t, c, ns, name, stashv1beta1.BackupSessionFailed)
			if msg := firstStatsError(bs); !strings.Contains(msg, tc.want) {
				t.Errorf("session error %q does not say %q", msg, tc.want)
			}
		})
	}
}

// TestLegacyFinalizerRemovedFromInvalidInvoker: earlier versions put a
// finalizer on BackupConfigurations that used another namespace's
// Repository. When that Repository stops allowing them, the operator still
// removes the finalizer (the webhook admits an update that leaves the spec
// alone) and marks the BackupConfiguration Invalid, so it can be deleted.
func TestLegacyFinalizerRemovedFromInvalidInvoker(t *testing.T) {
	// Set up with no operator running, as an upgrade finds it: the old
	// finalizer is there and the policy has changed since.
	c := newClient(t)
	ctx := context.Background()
	repoNS, ns := newNamespace(t, c), newNamespace(t, c)
	mustApply(t, c, repoNS, repositoryFixtures)
	all := stashv1alpha1.NamespacesFromAll
	updateRepository(t, c, repoNS, "s3-repo", func(r *stashv1alpha1.Repository) {
		r.Spec.UsagePolicy = &stashv1alpha1.UsagePolicy{AllowedNamespaces: stashv1alpha1.AllowedNamespaces{From: &all}}
	})
	mustApply(t, c, ns, appBinding)
	bc := strings.Replace(backupConfiguration("legacy", ""), "metadata: {name: legacy}", "metadata: {name: legacy, finalizers: [stash.appscode.com]}", 1)
	bc = strings.Replace(bc, "repository: {name: s3-repo}", "repository: {name: s3-repo, namespace: "+repoNS+"}", 1)
	mustApply(t, c, ns, bc)
	same := stashv1alpha1.NamespacesFromSame
	updateRepository(t, c, repoNS, "s3-repo", func(r *stashv1alpha1.Repository) {
		r.Spec.UsagePolicy.AllowedNamespaces.From = &same
	})
	startOperator(t)
	eventually(t, 20*time.Second, "finalizer removed and Invalid", func() error {
		o := get(t, c, ns, "legacy", &stashv1beta1.BackupConfiguration{})
		if len(o.Finalizers) > 0 || o.Status.Phase != stashv1beta1.InvokerInvalid {
			return fmt.Errorf("finalizers %v, phase %q", o.Finalizers, o.Status.Phase)
		}
		return nil
	})
	if err := c.Delete(ctx, get(t, c, ns, "legacy", &stashv1beta1.BackupConfiguration{})); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "deleted", func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "legacy"}, &stashv1beta1.BackupConfiguration{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
}
