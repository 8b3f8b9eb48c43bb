package repository

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kopia/kopia/snapshot"
)

// tagPrefix marks Stash tags among a kopia manifest's tags.
const tagPrefix = "tag:"

// Snapshot describes one stored snapshot.
type Snapshot struct {
	// ID is the snapshot's manifest ID (Stash's snapshot `name`).
	ID string `json:"id"`
	// Host is the Stash hostname the snapshot belongs to (host-0, a pod
	// ordinal, a database name).
	Host string `json:"host"`
	// Path is the backed-up directory, or the stream's file name.
	Path string `json:"path"`
	// Time is when the snapshot started.
	Time time.Time `json:"time"`
	// EndTime is when the snapshot was committed.
	EndTime time.Time `json:"endTime"`
	// Stream is true for a snapshot of a stream (a single file).
	Stream bool `json:"stream"`
	// TotalSize is the size of the data the snapshot holds, in bytes.
	TotalSize int64 `json:"totalSize"`
	// Files is the number of files the snapshot holds.
	Files int64 `json:"files"`
	// Tags are the snapshot's key=value tags.
	Tags map[string]string `json:"tags,omitempty"`
	// Paths are the directories of a restic snapshot that holds several
	// (Path is then their common parent); empty otherwise.
	Paths []string `json:"paths,omitempty"`
	// Format is "restic" for a snapshot of a restic repository, empty
	// for this project's own.
	Format string `json:"format,omitempty"`

	man *snapshot.Manifest
}

// ShortID is the first eight characters of the ID, enough to name a
// snapshot on the command line.
func (s Snapshot) ShortID() string {
	if len(s.ID) > 8 {
		return s.ID[:8]
	}
	return s.ID
}

// TagList renders the tags as sorted key=value strings.
func (s Snapshot) TagList() []string {
	out := make([]string, 0, len(s.Tags))
	for k, v := range s.Tags {
		if v == "" {
			out = append(out, k)
		} else {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

func fromManifest(m *snapshot.Manifest) Snapshot {
	s := Snapshot{
		ID:        string(m.ID),
		Host:      m.Source.Host,
		Path:      m.Source.Path,
		Time:      m.StartTime.ToTime().UTC(),
		EndTime:   m.EndTime.ToTime().UTC(),
		TotalSize: m.Stats.TotalFileSize,
		Files:     int64(m.Stats.TotalFileCount),
		man:       m,
	}
	if m.RootEntry != nil {
		s.Stream = m.RootEntry.Type == snapshot.EntryTypeFile
		if m.RootEntry.DirSummary != nil {
			s.TotalSize = m.RootEntry.DirSummary.TotalFileSize
			s.Files = m.RootEntry.DirSummary.TotalFileCount
		} else if s.Stream {
			s.TotalSize = m.RootEntry.FileSize
			s.Files = 1
		}
	}
	for k, v := range m.Tags {
		if strings.HasPrefix(k, tagPrefix) {
			if s.Tags == nil {
				s.Tags = map[string]string{}
			}
			s.Tags[strings.TrimPrefix(k, tagPrefix)] = v
		}
	}
	return s
}

func toKopiaTags(tags map[string]string) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		out[tagPrefix+k] = v
	}
	return out
}

// ParseTags turns "key=value" (or bare "key") strings into a tag map.
func ParseTags(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, t := range list {
		k, v, _ := strings.Cut(t, "=")
		if k == "" {
			return nil, fmt.Errorf("tag %q has no key: use key=value", t)
		}
		out[k] = v
	}
	return out, nil
}

// FileStats counts files as Stash reports them.
type FileStats struct {
	TotalFiles      *int64 `json:"totalFiles,omitempty"`
	NewFiles        *int64 `json:"newFiles,omitempty"`
	ModifiedFiles   *int64 `json:"modifiedFiles,omitempty"`
	UnmodifiedFiles *int64 `json:"unmodifiedFiles,omitempty"`
}

// SnapshotStats is the result of one snapshot with Stash's stat names
// (BackupSession status.targets[].stats[].snapshots[]), plus the raw numbers
// for scripts.
type SnapshotStats struct {
	Name           string    `json:"name"`
	Path           string    `json:"path"`
	TotalSize      string    `json:"totalSize"`
	Uploaded       string    `json:"uploaded"`
	ProcessingTime string    `json:"processingTime"`
	FileStats      FileStats `json:"fileStats"`

	Host          string `json:"host"`
	TotalBytes    int64  `json:"totalBytes"`
	UploadedBytes int64  `json:"uploadedBytes"`
	DurationMS    int64  `json:"durationMs"`
}

// FormatBytes renders a byte count the way Stash's stats show sizes.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.3f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func formatDuration(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

func int64p(v int64) *int64 { return &v }
