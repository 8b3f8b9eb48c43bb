package local

import (
	"context"
	"encoding/json"
	"fmt"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/status"
)

// StoreRecorder is the status.Recorder of steps the local runtime runs:
// update-status merges a step's result into its session's record in the
// runtime's store, where the runtime reads it when the session ends.
type StoreRecorder struct {
	// Dir is the runtime's state directory.
	Dir string
}

var _ status.Recorder = StoreRecorder{}

// RecordBackup implements status.Recorder.
func (r StoreRecorder) RecordBackup(_ context.Context, ns, session string, target stashv1beta1.TargetRef, total int32, stats []stashv1beta1.HostBackupStats, conds []stashv1beta1.Condition, report *stashv1beta1.RepositoryReport) (*stashv1beta1.BackupSessionStatus, error) {
	var out stashv1beta1.BackupSessionStatus
	err := r.record("BackupSession", ns, session, func(raw []byte) (any, error) {
		var st stashv1beta1.BackupSessionStatus
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &st); err != nil {
				return nil, err
			}
		}
		var err error
		if out, err = status.RecordBackupResult(st, target, total, stats, conds...); err != nil {
			return nil, err
		}
		if report != nil {
			out.Repository = report
		}
		return out, nil
	})
	return &out, err
}

// RecordRestore implements status.Recorder.
func (r StoreRecorder) RecordRestore(_ context.Context, ns, session string, total int32, stats []stashv1beta1.HostRestoreStats, conds ...stashv1beta1.Condition) (*stashv1beta1.RestoreSessionStatus, error) {
	var out stashv1beta1.RestoreSessionStatus
	err := r.record("RestoreSession", ns, session, func(raw []byte) (any, error) {
		var st stashv1beta1.RestoreSessionStatus
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &st); err != nil {
				return nil, err
			}
		}
		var err error
		if out, err = status.RecordRestoreResult(st, total, stats, conds...); err != nil {
			return nil, err
		}
		return out, nil
	})
	return &out, err
}

func (r StoreRecorder) record(kind, ns, name string, merge func([]byte) (any, error)) error {
	store, err := OpenStore(r.Dir)
	if err != nil {
		return err
	}
	defer store.Close()
	err = store.RecordStatus(kind, ns, name, func(raw []byte) ([]byte, error) {
		st, err := merge(raw)
		if err != nil {
			return nil, err
		}
		return json.Marshal(st)
	})
	if err != nil {
		return fmt.Errorf("record status of %s %s/%s: %w", kind, ns, name, err)
	}
	return nil
}
