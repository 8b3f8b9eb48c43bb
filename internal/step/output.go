package step

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/repository"
)

// Output is output.json: what a step reports to update-status.
type Output struct {
	HostBackupStats  []stashv1beta1.HostBackupStats  `json:"hostBackupStats,omitempty"`
	HostRestoreStats []stashv1beta1.HostRestoreStats `json:"hostRestoreStats,omitempty"`
	// Retention is what the --retention-* flags did after the backup;
	// absent when they set no policy.
	Retention *RetentionOutput `json:"retention,omitempty"`
	// Warnings are things the step did that the user may not expect
	// (a "latest" that matched several invokers' snapshots); update-status
	// turns them into conditions and events.
	Warnings []string `json:"warnings,omitempty"`
}

// RetentionOutput is the outcome of a backup step's retention policy. A
// failure here does not fail the backup, whose snapshot is committed;
// update-status turns it into RetentionPolicyApplied=False.
type RetentionOutput struct {
	// SnapshotsRemoved counts the snapshots forgotten, or on a dry run
	// those that would have been.
	SnapshotsRemoved int    `json:"snapshotsRemoved"`
	DryRun           bool   `json:"dryRun,omitempty"`
	Pruned           bool   `json:"pruned,omitempty"`
	Error            string `json:"error,omitempty"`
}

// OutputFile is the name of a step's result in --output-dir.
const OutputFile = "output.json"

// WriteOutput writes out as dir/output.json, whole or not at all.
func WriteOutput(dir string, out Output) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--output-dir: %w", err)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, OutputFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, OutputFile))
}

// ReadOutput reads the output.json an earlier step wrote into dir.
func ReadOutput(dir string) (Output, error) {
	var out Output
	if dir == "" {
		return out, errors.New("--output-dir is empty: name the directory where the previous step wrote output.json")
	}
	p := filepath.Join(dir, OutputFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return out, fmt.Errorf("read the previous step's result: %w (did the backup step run with the same --output-dir?)", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("%s: %w", p, err)
	}
	return out, nil
}

func toAPIStats(s repository.SnapshotStats) stashv1beta1.SnapshotStats {
	return stashv1beta1.SnapshotStats{
		Name: s.Name, Path: s.Path, TotalSize: s.TotalSize, Uploaded: s.Uploaded, ProcessingTime: s.ProcessingTime,
		FileStats: stashv1beta1.FileStats{TotalFiles: s.FileStats.TotalFiles, NewFiles: s.FileStats.NewFiles,
			ModifiedFiles: s.FileStats.ModifiedFiles, UnmodifiedFiles: s.FileStats.UnmodifiedFiles},
	}
}

// hostBackupStats groups the snapshots a step took by host, the step's
// host first: a step that backs up several hosts (one snapshot per shard)
// reports each. A failed step reports its own host, failed.
func (o *Options) hostBackupStats(d time.Duration, stats []repository.SnapshotStats, err error) []stashv1beta1.HostBackupStats {
	dur := d.Round(time.Millisecond).String()
	own := stashv1beta1.HostBackupStats{Hostname: o.Hostname, Duration: dur, Phase: "Succeeded"}
	hostErrs := addon.HostErrors(err)
	if err != nil && hostErrs == nil {
		own.Phase, own.Error = "Failed", err.Error()
		return []stashv1beta1.HostBackupStats{own}
	}
	out := []stashv1beta1.HostBackupStats{own}
	index := map[string]int{o.Hostname: 0}
	for _, s := range stats {
		i, ok := index[s.Host]
		if !ok && s.Host != "" {
			i = len(out)
			index[s.Host] = i
			out = append(out, stashv1beta1.HostBackupStats{Hostname: s.Host, Duration: dur, Phase: "Succeeded"})
		}
		out[i].Snapshots = append(out[i].Snapshots, toAPIStats(s))
	}
	for _, he := range hostErrs {
		out = append(out, stashv1beta1.HostBackupStats{Hostname: he.Host, Duration: dur, Phase: "Failed", Error: he.Err.Error()})
	}
	if len(out) > 1 && len(out[0].Snapshots) == 0 {
		// Every snapshot named its own host: the step's host took none.
		out = out[1:]
	}
	return out
}

// hostRestoreStats reports a restore: of the step's own host, or, when
// the driver restored several hosts (addon.MultiHost), of each: failed
// when its addon.HostError says so, or every one when the step failed
// otherwise.
func (o *Options) hostRestoreStats(d time.Duration, hosts []string, err error) []stashv1beta1.HostRestoreStats {
	dur := d.Round(time.Millisecond).String()
	if len(hosts) < 2 {
		hs := stashv1beta1.HostRestoreStats{Hostname: o.Hostname, Duration: dur, Phase: "Succeeded"}
		if err != nil {
			hs.Phase, hs.Error = "Failed", err.Error()
		}
		return []stashv1beta1.HostRestoreStats{hs}
	}
	hostErrs := addon.HostErrors(err)
	failed := map[string]string{}
	for _, he := range hostErrs {
		failed[he.Host] = he.Err.Error()
	}
	var out []stashv1beta1.HostRestoreStats
	for _, h := range hosts {
		hs := stashv1beta1.HostRestoreStats{Hostname: h, Duration: dur, Phase: "Succeeded"}
		switch msg, ok := failed[h]; {
		case ok:
			hs.Phase, hs.Error = "Failed", msg
		case err != nil && hostErrs == nil:
			hs.Phase, hs.Error = "Failed", err.Error()
		}
		out = append(out, hs)
	}
	return out
}

// finishBackup reports a backup's result and what retention did after it
// (ret; nil without a policy). With OutputDir the result, success or
// failure, goes to output.json and the step succeeds, so that
// update-status (the next step) records it, as in Stash; without, a
// failure, of the backup or of its retention, is the returned error.
func (o *Options) finishBackup(start time.Time, stats []repository.SnapshotStats, ret *RetentionOutput, err error) error {
	hs := o.hostBackupStats(time.Since(start), stats, err)
	var retErr error
	if ret != nil && ret.Error != "" {
		retErr = fmt.Errorf("the backup succeeded, its retention policy failed: %s", ret.Error)
	}
	if o.OutputDir != "" {
		if werr := WriteOutput(o.OutputDir, Output{HostBackupStats: hs, Retention: ret}); werr != nil {
			return errors.Join(err, werr)
		}
		if err != nil {
			fmt.Fprintln(o.log(), "stash: backup failed (recorded in output.json):", err)
		}
		if retErr != nil {
			fmt.Fprintln(o.log(), "stash:", retErr, "(recorded in output.json)")
		}
		return nil
	}
	if err != nil {
		return err
	}
	var v any = hs[0]
	if len(hs) > 1 {
		v = hs
	}
	if werr := writeJSON(o, v); werr != nil {
		return werr
	}
	return retErr
}

func (o *Options) finishRestore(start time.Time, warnings, hosts []string, err error) error {
	all := o.hostRestoreStats(time.Since(start), hosts, err)
	if o.OutputDir != "" {
		if werr := WriteOutput(o.OutputDir, Output{HostRestoreStats: all, Warnings: warnings}); werr != nil {
			return errors.Join(err, werr)
		}
		if err != nil {
			fmt.Fprintln(o.log(), "stash: restore failed (recorded in output.json):", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if len(all) == 1 {
		return writeJSON(o, all[0])
	}
	return writeJSON(o, all)
}

func writeJSON(o *Options, v any) error {
	enc := json.NewEncoder(o.stdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
