package operator_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
)

// A sidecar session waits only for hosts that can report: a workload with
// no replica is refused, and a host whose pod a scale-down took away
// fails, naming the scale-down, rather than hold the session Running to
// its deadline (and Skip every scheduled session meanwhile).

// TestSidecarSessionRefusesZeroReplicas: whatever the kind, a workload
// scaled to 0 has no pod to take the session: it fails at once, saying so.
func TestSidecarSessionRefusesZeroReplicas(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, t.TempDir()))
	for _, kind := range []string{"Deployment", "ReplicaSet", "ReplicationController", "StatefulSet"} {
		t.Run(kind, func(t *testing.T) {
			name := strings.ToLower(kind)
			w := strings.Replace(workloadManifest(kind, name, ""), "replicas: 1", "replicas: 0", 1)
			mustApply(t, c, ns, w+"---"+sidecarBackup(name+"-backup", kind, name))
			waitSidecar(t, c, ns, kind, name, true)
			waitReady(t, c, ns, name+"-backup")
			bs := waitSessionWithin(t, c, ns, createSession(t, c, ns, name+"-backup"), stashv1beta1.BackupSessionFailed, 30*time.Second)
			if msg := firstStatsError(bs); !strings.Contains(msg, "0 replicas") {
				t.Errorf("session error %q, want it to say the %s has 0 replicas", msg, kind)
			}
		})
	}
}

// TestSidecarStatefulSetScaledDownMidSession: a StatefulSet of three is
// scaled to two while host-0 and host-1 back up and db-2 has not started:
// host-2 fails for the scale-down, and the session ends.
func TestSidecarStatefulSetScaledDownMidSession(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	bc := strings.Replace(sidecarBackup("db-backup", "StatefulSet", "db"), "/source/data", data, -1)
	sts := strings.Replace(workloadManifest("StatefulSet", "db", ""), "replicas: 1", "replicas: 3", 1)
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, t.TempDir())+"---"+sts+"---"+bc)
	waitSidecar(t, c, ns, "StatefulSet", "db", true)
	waitReady(t, c, ns, "db-backup")
	secrets := secretDir(t)
	startSidecar(t, ns, "db-backup", "StatefulSet", "db", "db-0", "node-a", secrets)
	startSidecar(t, ns, "db-backup", "StatefulSet", "db", "db-1", "node-a", secrets)
	name := createSession(t, c, ns, "db-backup")
	eventually(t, time.Minute, "host-0 and host-1 done", func() error {
		st, err := sidecar.Read(get(t, c, ns, plan.SidecarChannelName("db-backup"), &corev1.ConfigMap{}))
		if err != nil || st.Session == nil || st.Session.Name != name {
			return fmt.Errorf("channel not on %s yet: %v", name, err)
		}
		if n := len(st.FinalStats()); n != 2 {
			return fmt.Errorf("%d hosts done", n)
		}
		return nil
	})
	// The session waits for host-2, whose pod never started.
	if bs := get(t, c, ns, name, &stashv1beta1.BackupSession{}); bs.Status.Phase != stashv1beta1.BackupSessionRunning {
		t.Fatalf("phase %s before the scale-down, want Running", bs.Status.Phase)
	}
	s := get(t, c, ns, "db", &appsv1.StatefulSet{})
	two := int32(2)
	s.Spec.Replicas = &two
	if err := c.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	bs := waitSessionWithin(t, c, ns, name, stashv1beta1.BackupSessionFailed, 30*time.Second)
	hosts := map[string]stashv1beta1.HostBackupStats{}
	for _, h := range bs.Status.Targets[0].Stats {
		hosts[h.Hostname] = h
	}
	if hosts["host-0"].Phase != "Succeeded" || hosts["host-1"].Phase != "Succeeded" {
		t.Errorf("hosts %+v: want host-0 and host-1 Succeeded", hosts)
	}
	if h := hosts["host-2"]; h.Phase != "Failed" || !strings.Contains(h.Error, "scaled to 2") {
		t.Errorf("host-2 %+v: want Failed for the scale-down to 2", h)
	}
}
