// Package addons embeds the addon catalog: Functions and Tasks per
// application and version (addons/<app>/<version>/*.yaml) and Stash's
// built-ins (addons/stash). hack/gen-catalog writes the YAML.
package addons

import "embed"

// FS holds every catalog manifest.
//
//go:embed */*.yaml */*/*.yaml
var FS embed.FS
