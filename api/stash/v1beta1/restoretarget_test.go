package v1beta1

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRestoreTargetWithoutRef: a restore into volumeClaimTemplates names
// no ref, and re-encoding it (as the defaulting webhook does to compute
// its patch) must not add an empty one, whose kind the CRD's enum refuses.
func TestRestoreTargetWithoutRef(t *testing.T) {
	b, err := json.Marshal(RestoreSession{Spec: RestoreSessionSpec{RestoreTargetSpec: RestoreTargetSpec{Target: &RestoreTarget{
		VolumeClaimTemplates: []PersistentVolumeClaim{{}},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"ref"`) {
		t.Errorf("an empty ref was encoded: %s", b)
	}
}
