package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// NormalizeRef returns an image reference as containerd stores it:
// docker.io/library/ for a bare name, docker.io/ for a user's, and :latest
// when neither a tag nor a digest is given, as the kubelet resolves them.
func NormalizeRef(ref string) (string, error) {
	if ref == "" || strings.ContainsAny(ref, " \t\n") {
		return "", fmt.Errorf("image %q is not an image reference", ref)
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	first, _, hasSlash := strings.Cut(name, "/")
	if !hasSlash || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !hasSlash {
			name = "library/" + name
		}
		name = "docker.io/" + name
	}
	if hasDigest {
		return name + "@" + digest, nil
	}
	if i := strings.LastIndex(name, ":"); i < 0 || i < strings.LastIndex(name, "/") {
		name += ":latest"
	}
	return name, nil
}

// Media types of the manifests an image reference may point at.
const (
	mediaIndexOCI      = "application/vnd.oci.image.index.v1+json"
	mediaIndexDocker   = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaManifestOCI   = "application/vnd.oci.image.manifest.v1+json"
	mediaManifestDockr = "application/vnd.docker.distribution.manifest.v2+json"
)

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform,omitempty"`
}

// manifestOrIndex decodes either an image manifest or an index.
type manifestOrIndex struct {
	MediaType string       `json:"mediaType"`
	Config    descriptor   `json:"config"`
	Manifests []descriptor `json:"manifests"`
}

// imageConfig walks from an image's target (an index or a manifest,
// whose media type is given) to its config, reading blobs with get.
func imageConfig(mediaType, digest string, get func(digest string) ([]byte, error)) (ImageConfig, error) {
	for range 4 {
		raw, err := get(digest)
		if err != nil {
			return ImageConfig{}, err
		}
		var m manifestOrIndex
		if err := json.Unmarshal(raw, &m); err != nil {
			return ImageConfig{}, fmt.Errorf("image manifest %s: %w", digest, err)
		}
		if m.MediaType != "" {
			mediaType = m.MediaType
		}
		switch {
		case mediaType == mediaIndexOCI || mediaType == mediaIndexDocker || (mediaType == "" && len(m.Manifests) > 0):
			next := ""
			for _, d := range m.Manifests {
				if d.Platform == nil || (d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH) {
					next, mediaType = d.Digest, d.MediaType
					break
				}
			}
			if next == "" {
				return ImageConfig{}, fmt.Errorf("image index %s has no manifest for linux/%s", digest, runtime.GOARCH)
			}
			digest = next
		case mediaType == mediaManifestOCI || mediaType == mediaManifestDockr || m.Config.Digest != "":
			raw, err := get(m.Config.Digest)
			if err != nil {
				return ImageConfig{}, err
			}
			var cfg struct {
				Config ImageConfig `json:"config"`
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				return ImageConfig{}, fmt.Errorf("image config %s: %w", m.Config.Digest, err)
			}
			return cfg.Config, nil
		default:
			return ImageConfig{}, fmt.Errorf("image target %s has media type %q, neither a manifest nor an index", digest, mediaType)
		}
	}
	return ImageConfig{}, errors.New("image index nested too deep")
}

// parsePasswd finds name in an /etc/passwd.
func parsePasswd(passwd []byte, name string) (uid, gid uint32, ok bool) {
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 || f[0] != name {
			continue
		}
		var u, g uint32
		if _, err := fmt.Sscan(f[2], &u); err != nil {
			return 0, 0, false
		}
		if _, err := fmt.Sscan(f[3], &g); err != nil {
			return 0, 0, false
		}
		return u, g, true
	}
	return 0, 0, false
}
