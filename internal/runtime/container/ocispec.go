package container

import "encoding/json"

// The part of the OCI runtime specification (runtime-spec v1.0.2,
// config.json) the local runtime writes: only the fields it sets, with
// the spec's JSON names.

// Spec is an OCI runtime config.json.
type Spec struct {
	Version  string      `json:"ociVersion"`
	Process  Process     `json:"process"`
	Root     Root        `json:"root"`
	Hostname string      `json:"hostname,omitempty"`
	Mounts   []SpecMount `json:"mounts"`
	Linux    *Linux      `json:"linux"`
}

// Process is the container's process.
type Process struct {
	User            User          `json:"user"`
	Args            []string      `json:"args"`
	Env             []string      `json:"env"`
	Cwd             string        `json:"cwd"`
	Capabilities    *Capabilities `json:"capabilities,omitempty"`
	NoNewPrivileges bool          `json:"noNewPrivileges,omitempty"`
}

// MarshalJSON names User's fields as the spec does.
func (u User) MarshalJSON() ([]byte, error) {
	type user struct {
		UID            uint32   `json:"uid"`
		GID            uint32   `json:"gid"`
		AdditionalGIDs []uint32 `json:"additionalGids,omitempty"`
	}
	return json.Marshal(user(u))
}

// Capabilities are the process's capability sets.
type Capabilities struct {
	Bounding  []string `json:"bounding"`
	Effective []string `json:"effective"`
	Permitted []string `json:"permitted"`
}

// Root is the container's root filesystem.
type Root struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly,omitempty"`
}

// SpecMount is one mount of the container.
type SpecMount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// Linux holds the Linux-specific settings.
type Linux struct {
	Namespaces    []Namespace `json:"namespaces"`
	MaskedPaths   []string    `json:"maskedPaths,omitempty"`
	ReadonlyPaths []string    `json:"readonlyPaths,omitempty"`
	Resources     *Resources  `json:"resources,omitempty"`
	CgroupsPath   string      `json:"cgroupsPath,omitempty"`
}

// Namespace is a namespace the container gets, new or (Path) joined.
type Namespace struct {
	Type string `json:"type"`
	Path string `json:"path,omitempty"`
}

// Resources are the container's cgroup settings.
type Resources struct {
	Devices []DeviceRule `json:"devices,omitempty"`
	Memory  *Memory      `json:"memory,omitempty"`
	CPU     *CPU         `json:"cpu,omitempty"`
}

// DeviceRule allows or denies devices.
type DeviceRule struct {
	Allow  bool   `json:"allow"`
	Access string `json:"access,omitempty"`
}

// Memory limits the container's memory.
type Memory struct {
	Limit *int64 `json:"limit,omitempty"`
	Swap  *int64 `json:"swap,omitempty"`
}

// CPU limits the container's CPU time.
type CPU struct {
	Quota  *int64  `json:"quota,omitempty"`
	Period *uint64 `json:"period,omitempty"`
}
