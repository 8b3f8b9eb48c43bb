package plan

import (
	"encoding/json"
	"fmt"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// stashAddon is the StashAddon KubeDB writes into AppBinding parameters.
type stashAddon struct {
	Kind  string `json:"kind"`
	Stash struct {
		Addon struct {
			BackupTask  stashv1beta1.TaskRef `json:"backupTask"`
			RestoreTask stashv1beta1.TaskRef `json:"restoreTask"`
		} `json:"addon"`
	} `json:"stash"`
}

// AddonTask returns the Task an AppBinding's parameters name for a backup
// or a restore (Stash reads it when the invoker's task.name is empty), with
// the invoker's params merged over the AppBinding's.
func AddonTask(ab *appcatalogv1alpha1.AppBinding, restore bool, invoker stashv1beta1.TaskRef) (stashv1beta1.TaskRef, error) {
	if invoker.Name != "" || ab == nil || ab.Spec.Parameters == nil || len(ab.Spec.Parameters.Raw) == 0 {
		return invoker, nil
	}
	var sa stashAddon
	if err := json.Unmarshal(ab.Spec.Parameters.Raw, &sa); err != nil {
		return invoker, fmt.Errorf("AppBinding %s/%s: spec.parameters: %w", ab.Namespace, ab.Name, err)
	}
	if sa.Kind != "StashAddon" {
		return invoker, nil
	}
	ref := sa.Stash.Addon.BackupTask
	if restore {
		ref = sa.Stash.Addon.RestoreTask
	}
	params := append([]stashv1beta1.Param{}, ref.Params...)
	for _, p := range invoker.Params {
		replaced := false
		for i := range params {
			if params[i].Name == p.Name {
				params[i].Value, replaced = p.Value, true
			}
		}
		if !replaced {
			params = append(params, p)
		}
	}
	return stashv1beta1.TaskRef{Name: ref.Name, Params: params}, nil
}
