// Package hook runs Stash's hooks (kmodules prober handlers: exec,
// httpGet, httpPost, tcpSocket) with the session summary available to
// Go templates in exec commands and HTTP bodies, as Stash does for
// notifications.
package hook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"text/template"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// Summary is what hook templates see.
type Summary struct {
	Name      string
	Namespace string
	Invoker   struct{ Kind, Name string }
	Target    struct{ Kind, Name string }
	Status    struct{ Phase, Duration, Error string }
}

// ShouldRun applies a post hook's executionPolicy to a finished session.
func ShouldRun(policy stashv1beta1.HookExecutionPolicy, phase string, finalRetry bool) bool {
	switch policy {
	case stashv1beta1.ExecuteOnSuccess:
		return phase == "Succeeded"
	case stashv1beta1.ExecuteOnFailure:
		return phase == "Failed"
	case stashv1beta1.ExecuteOnFinalRetryFailure:
		return phase == "Failed" && finalRetry
	}
	return true
}

func render(s string, sum Summary) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	t, err := template.New("hook").Option("missingkey=error").Parse(s)
	if err != nil {
		return "", fmt.Errorf("hook template %q: %w", s, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, sum); err != nil {
		return "", fmt.Errorf("hook template %q: %w", s, err)
	}
	return b.String(), nil
}

func port(p intstr.IntOrString) (string, error) {
	if p.Type == intstr.Int {
		return strconv.Itoa(int(p.IntVal)), nil
	}
	if _, err := strconv.Atoi(p.StrVal); err == nil {
		return p.StrVal, nil
	}
	if n, err := net.LookupPort("tcp", p.StrVal); err == nil {
		return strconv.Itoa(n), nil
	}
	return "", fmt.Errorf("port %q: a named port needs a pod; give a number", p.StrVal)
}

// ExecFunc runs an exec hook's command in a container of the target's
// pod (in a cluster, through pods/exec), writing its output to out.
type ExecFunc func(ctx context.Context, container string, argv []string, out io.Writer) error

// Target is where a hook acts.
type Target struct {
	// Host replaces an empty host of an HTTP or TCP hook (outside a
	// cluster the target runs on this machine: 127.0.0.1; in a cluster,
	// the target pod's IP).
	Host string
	// Exec runs exec hooks; nil runs them as processes here (the local
	// runtime, where the target runs on this machine).
	Exec ExecFunc
}

// Execute runs a hook.
func Execute(ctx context.Context, h *stashv1beta1.Handler, sum Summary, target Target, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	switch {
	case h.Exec != nil:
		if len(h.Exec.Command) == 0 {
			return fmt.Errorf("exec hook has no command")
		}
		args := make([]string, len(h.Exec.Command))
		for i, a := range h.Exec.Command {
			r, err := render(a, sum)
			if err != nil {
				return err
			}
			args[i] = r
		}
		var buf bytes.Buffer
		w := io.MultiWriter(out, &buf)
		var err error
		if target.Exec != nil {
			err = target.Exec(ctx, h.ContainerName, args, w)
		} else {
			cmd := exec.CommandContext(ctx, args[0], args[1:]...)
			cmd.Stdout, cmd.Stderr = w, w
			err = runCommand(cmd)
		}
		if err != nil {
			return fmt.Errorf("exec hook %q failed: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(lastBytes(buf.Bytes(), 2000)))
		}
		return nil
	case h.HTTPGet != nil:
		g := h.HTTPGet
		u, err := hookURL(string(g.Scheme), g.Host, target.Host, g.Port, g.Path)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		for _, hd := range g.HTTPHeaders {
			req.Header.Add(hd.Name, hd.Value)
		}
		return do(req)
	case h.HTTPPost != nil:
		p := h.HTTPPost
		u, err := hookURL(string(p.Scheme), p.Host, target.Host, p.Port, p.Path)
		if err != nil {
			return err
		}
		var body io.Reader
		contentType := ""
		if len(p.Form) > 0 {
			form := url.Values{}
			for _, f := range p.Form {
				for _, v := range f.Values {
					r, err := render(v, sum)
					if err != nil {
						return err
					}
					form.Add(f.Key, r)
				}
			}
			body, contentType = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
		} else {
			r, err := render(p.Body, sum)
			if err != nil {
				return err
			}
			body = strings.NewReader(r)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
		if err != nil {
			return err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for _, hd := range p.HTTPHeaders {
			req.Header.Add(hd.Name, hd.Value)
		}
		return do(req)
	case h.TCPSocket != nil:
		hst := h.TCPSocket.Host
		if hst == "" {
			hst = target.Host
		}
		pt, err := port(h.TCPSocket.Port)
		if err != nil {
			return err
		}
		conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort(hst, pt))
		if err != nil {
			return fmt.Errorf("tcpSocket hook: %w", err)
		}
		return conn.Close()
	}
	return fmt.Errorf("hook has no action: set exec, httpGet, httpPost or tcpSocket")
}

func hookURL(scheme, h, def string, p intstr.IntOrString, path string) (string, error) {
	if scheme == "" {
		scheme = "HTTP"
	}
	if h == "" {
		h = def
	}
	pt, err := port(p)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return strings.ToLower(scheme) + "://" + net.JoinHostPort(h, pt) + path, nil
}

func do(req *http.Request) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s hook %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("%s hook %s: %s: %s", req.Method, req.URL.Redacted(), resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
