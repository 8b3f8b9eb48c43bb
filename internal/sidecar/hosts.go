package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
)

// hostReport is what a backup and a restore channel's host entries have
// in common, so that one reader and one lost-pod check serve both.
type hostReport interface {
	session() string
	host() string
	Final() bool
	pod() (name, uid string)
	fail(msg string)
}

func (r *Result) session() string              { return r.Session }
func (r *Result) host() string                 { return r.Stats.Hostname }
func (r *Result) pod() (string, string)        { return r.Pod, r.PodUID }
func (r *Result) fail(msg string)              { r.Stats.Phase, r.Stats.Error = PhaseFailed, msg }
func (r *RestoreResult) session() string       { return r.Session }
func (r *RestoreResult) host() string          { return r.Stats.Hostname }
func (r *RestoreResult) pod() (string, string) { return r.Pod, r.PodUID }
func (r *RestoreResult) fail(msg string)       { r.Stats.Phase, r.Stats.Error = PhaseFailed, msg }

// readHosts decodes the host entries of a channel that belong to session
// (a result filed under another host's key counts for none).
func readHosts[R any, P interface {
	*R
	hostReport
}](cm *corev1.ConfigMap, session string) (map[string]R, error) {
	out := map[string]R{}
	for k, v := range cm.Data {
		if !strings.HasPrefix(k, hostPrefix) || !strings.HasSuffix(k, hostSuffix) {
			continue
		}
		var r R
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, k, err)
		}
		host := strings.TrimSuffix(strings.TrimPrefix(k, hostPrefix), hostSuffix)
		if p := P(&r); p.session() == session && p.host() == host {
			out[host] = r
		}
	}
	return out, nil
}

// failLost fails, in results and in cm, the hosts still at work whose pod
// is gone or is another pod now: they will never report. what names the
// work ("backup", "restore"). It reports whether cm changed.
func failLost[R any, P interface {
	*R
	hostReport
}](ctx context.Context, r client.Reader, cm *corev1.ConfigMap, results map[string]R, what string) (bool, error) {
	changed := false
	for h, res := range results {
		p := P(&res)
		if p.Final() {
			continue
		}
		name, uid := p.pod()
		gone, err := PodGone(ctx, r, cm.Namespace, name, uid)
		if err != nil {
			return false, err
		}
		if !gone {
			continue
		}
		p.fail(fmt.Sprintf("pod %s ended during the %s (deleted, evicted or restarted): host %s did not finish", name, what, h))
		if err := set(cm, HostKey(h), res); err != nil {
			return false, err
		}
		results[h] = res
		changed = true
	}
	return changed, nil
}

// FailLost fails the backup hosts whose pod went away mid-backup, in st
// and in cm (the channel st was read from); it reports whether cm
// changed and must be written.
func (st State) FailLost(ctx context.Context, r client.Reader, cm *corev1.ConfigMap) (bool, error) {
	return failLost(ctx, r, cm, st.Results, "backup")
}

// FailLost fails the restore hosts whose pod went away mid-restore, as
// State.FailLost.
func (st RestoreState) FailLost(ctx context.Context, r client.Reader, cm *corev1.ConfigMap) (bool, error) {
	return failLost(ctx, r, cm, st.Results, "restore")
}

// HostsBeyond are the hosts of a session of total hosts that a workload of
// kind, now asking for replicas pods, has no pod for: a
// StatefulSet's from ordinal replicas up, the one host of the kinds whose
// replicas share it once none is left. A DaemonSet's hosts are its nodes,
// which a count does not name: none.
func HostsBeyond(kind, alias string, total, replicas int32) []string {
	switch kind {
	case "DaemonSet":
		return nil
	case "StatefulSet":
		return plan.OrdinalHosts(alias, replicas, total)
	}
	if replicas > 0 || total <= 0 {
		return nil
	}
	return []string{plan.WorkloadHost(kind, alias, "", "")}
}

// FailUnstarted fails, in st and in cm (the channel st was read from), the
// given hosts that have not reported at all, each with why(host). It
// reports whether cm changed and must be written.
func (st State) FailUnstarted(cm *corev1.ConfigMap, hosts []string, why func(host string) string) (bool, error) {
	if st.Session == nil {
		return false, nil
	}
	changed := false
	for _, h := range hosts {
		if _, ok := st.Results[h]; ok {
			continue
		}
		res := Result{Session: st.Session.Name, Stats: stashv1beta1.HostBackupStats{Hostname: h, Phase: PhaseFailed, Error: why(h)}}
		if err := SetResult(cm, res); err != nil {
			return false, err
		}
		st.Results[h] = res
		changed = true
	}
	return changed, nil
}
