package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stash-backup/stash/internal/appbinding"
)

// KibanaFile is the file of a file set that holds Kibana's saved
// objects, as Kibana's export API gives them (NDJSON).
const KibanaFile = "kibana-saved-objects.ndjson"

// kibanaTypes are the saved object types exported: what makes a
// dashboard and what it refers to. A Kibana that cannot export one (an
// older one, or without the plugin) says so, and the type is left out.
var kibanaTypes = []string{"config", "index-pattern", "visualization", "search", "dashboard", "url", "query", "lens", "map", "tag", "canvas-workpad"}

// dashboardParams is the part of the AppBinding's spec.parameters that
// names Kibana: {"dashboard": {"url": "https://kibana:5601"}}.
type dashboardParams struct {
	Dashboard struct {
		URL string `json:"url"`
	} `json:"dashboard"`
}

// newKibana makes a client of the Kibana the AppBinding's parameters
// name, with the AppBinding's credentials and TLS settings.
func newKibana(c *appbinding.Connection) (*client, error) {
	var p dashboardParams
	if len(c.Parameters) > 0 {
		if err := json.Unmarshal(c.Parameters, &p); err != nil {
			return nil, fmt.Errorf("AppBinding spec.parameters: %w", err)
		}
	}
	if p.Dashboard.URL == "" {
		return nil, errors.New(`--enable-dashboard: the AppBinding names no Kibana: set spec.parameters to {"dashboard": {"url": "https://<kibana>:5601"}}`)
	}
	u, err := url.Parse(p.Dashboard.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("AppBinding spec.parameters.dashboard.url %q: give http(s)://host:port", p.Dashboard.URL)
	}
	kc := *c
	kc.Scheme, kc.Host, kc.Database = u.Scheme, u.Hostname(), strings.Trim(u.Path, "/")
	kc.Port = 5601
	if u.Port() != "" {
		fmt.Sscan(u.Port(), &kc.Port) //nolint:errcheck
	}
	return newClient(&kc)
}

// exportKibana returns every saved object of kibanaTypes, with what they
// refer to.
func exportKibana(ctx context.Context, k *client) ([]byte, error) {
	types := slices.Clone(kibanaTypes)
	for range len(kibanaTypes) {
		body, _ := json.Marshal(map[string]any{"type": types, "includeReferencesDeep": true})
		out, err := k.doKibana(ctx, "/api/saved_objects/_export", bytes.NewReader(body), "application/json")
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 400 {
			if _, list, ok := strings.Cut(ae.Reason, "non-exportable type(s): "); ok {
				for _, t := range strings.Split(list, ",") {
					types = slices.DeleteFunc(types, func(x string) bool { return x == strings.TrimSpace(t) })
				}
				if len(types) > 0 {
					continue
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("export Kibana's saved objects: %w", err)
		}
		return out, nil
	}
	return nil, errors.New("export Kibana's saved objects: Kibana exports none of the dashboard types")
}

// importKibana imports saved objects, overwriting those of the same id.
func importKibana(ctx context.Context, k *client, ndjson []byte) (int, error) {
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, err := mw.CreateFormFile("file", "export.ndjson")
	if err != nil {
		return 0, err
	}
	if _, err := fw.Write(ndjson); err != nil {
		return 0, err
	}
	if err := mw.Close(); err != nil {
		return 0, err
	}
	out, err := k.doKibana(ctx, "/api/saved_objects/_import?overwrite=true", &form, mw.FormDataContentType())
	if err != nil {
		return 0, fmt.Errorf("import Kibana's saved objects: %w", err)
	}
	var res struct {
		Success      bool              `json:"success"`
		SuccessCount int               `json:"successCount"`
		Errors       []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("import Kibana's saved objects: the answer is not the JSON expected: %w", err)
	}
	if !res.Success {
		return res.SuccessCount, fmt.Errorf("import Kibana's saved objects: %d imported, %d failed, first: %s", res.SuccessCount, len(res.Errors), firstRaw(res.Errors))
	}
	return res.SuccessCount, nil
}

func firstRaw(r []json.RawMessage) string {
	if len(r) == 0 {
		return "(none given)"
	}
	return string(r[0])
}

// doKibana posts to Kibana with the header its API requires of every
// write (kbn-xsrf) and returns a 2xx answer's body. A Kibana error's
// message becomes the apiError's Reason.
func (c *client) doKibana(ctx context.Context, path string, body any, ctype string) ([]byte, error) {
	return c.doWith(ctx, http.MethodPost, path, body, ctype, map[string]string{"kbn-xsrf": "stash"})
}
