package restic

import (
	"strings"
	"testing"
)

// An index is input from storage: a blob it makes larger than restic's
// blobs can be is refused before a restore sizes its buffers by it.
func TestPlanRefusesOversizedBlobs(t *testing.T) {
	small, huge := ID{1}, ID{2}
	for _, tc := range []struct {
		name    string
		loc     blobLoc
		refused bool
	}{
		{"stored size", blobLoc{pack: ID{9}, length: 1 << 31}, true},
		{"uncompressed size", blobLoc{pack: ID{9}, length: 100, uncompressedLength: 1<<32 - 1}, true},
		{"at the bound", blobLoc{pack: ID{9}, length: maxBlobSize, uncompressedLength: maxBlobSize}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Repository{index: map[blobKey]blobLoc{
				{small, DataBlob}: {pack: ID{9}, length: 100},
				{huge, DataBlob}:  tc.loc,
			}}
			r.indexOnce.Do(func() {})
			_, _, err := r.plan(t.Context(), []ID{small, huge})
			check(t, "plan (streams, single files, imports)", err, tc.refused)
			size := uint64(blobRef{loc: r.index[blobKey{small, DataBlob}]}.size() + blobRef{loc: tc.loc}.size())
			f := &fileEntry{&entry{v: &view{r: r}, n: &Node{Name: "f", Type: "file", Size: size, Content: []ID{small, huge}}}}
			_, _, err = (&packSource{r: r}).Contents(t.Context(), f)
			check(t, "Contents (tree restores)", err, tc.refused)
		})
	}
}

func check(t *testing.T, what string, err error, refused bool) {
	t.Helper()
	if refused != (err != nil) {
		t.Errorf("%s: %v, want refused %v", what, err, refused)
	} else if err != nil && !strings.Contains(err.Error(), "more than a restic blob can be") {
		t.Errorf("%s: message %q does not say why", what, err)
	}
}
