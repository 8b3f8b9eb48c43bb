// Package v1beta1 holds the stash.appscode.com/v1beta1 API: Function, Task,
// BackupConfiguration, BackupSession, RestoreSession, BackupBlueprint,
// BackupBatch and RestoreBatch, with Stash's field names and JSON tags.
//
// +kubebuilder:object:generate=true
// +groupName=stash.appscode.com
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of this package.
	GroupVersion = schema.GroupVersion{Group: "stash.appscode.com", Version: "v1beta1"}
	// SchemeBuilder registers the types of this package.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Function{}, &FunctionList{},
		&Task{}, &TaskList{},
		&BackupConfiguration{}, &BackupConfigurationList{},
		&BackupSession{}, &BackupSessionList{},
		&RestoreSession{}, &RestoreSessionList{},
		&BackupBlueprint{}, &BackupBlueprintList{},
		&BackupBatch{}, &BackupBatchList{},
		&RestoreBatch{}, &RestoreBatchList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
