package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// FileRecorder keeps session status as JSON files under Dir
// (<namespace>/<kind>/<name>.json), for runs outside a cluster.
type FileRecorder struct {
	Dir string
}

func (f FileRecorder) path(ns, kind, name string) string {
	return filepath.Join(f.Dir, ns, kind, name+".json")
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// RecordBackup implements Recorder.
func (f FileRecorder) RecordBackup(_ context.Context, ns, session string, target stashv1beta1.TargetRef, total int32, stats []stashv1beta1.HostBackupStats, conds []stashv1beta1.Condition) (*stashv1beta1.BackupSessionStatus, error) {
	p := f.path(ns, "backupsessions", session)
	var st stashv1beta1.BackupSessionStatus
	if err := readJSON(p, &st); err != nil {
		return nil, fmt.Errorf("read status of BackupSession %s/%s: %w", ns, session, err)
	}
	st = MergeBackup(st, target, total, stats, conds...)
	if err := writeJSON(p, st); err != nil {
		return nil, fmt.Errorf("record status of BackupSession %s/%s: %w", ns, session, err)
	}
	return &st, nil
}

// RecordRestore implements Recorder.
func (f FileRecorder) RecordRestore(_ context.Context, ns, session string, total int32, stats []stashv1beta1.HostRestoreStats, conds ...stashv1beta1.Condition) (*stashv1beta1.RestoreSessionStatus, error) {
	p := f.path(ns, "restoresessions", session)
	var st stashv1beta1.RestoreSessionStatus
	if err := readJSON(p, &st); err != nil {
		return nil, fmt.Errorf("read status of RestoreSession %s/%s: %w", ns, session, err)
	}
	st = MergeRestore(st, total, stats, conds...)
	if err := writeJSON(p, st); err != nil {
		return nil, fmt.Errorf("record status of RestoreSession %s/%s: %w", ns, session, err)
	}
	return &st, nil
}
