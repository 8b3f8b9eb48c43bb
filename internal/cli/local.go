package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/runtime/local"
)

func newLocalCommand() *cobra.Command {
	var (
		files     []string
		stateDir  string
		namespace string
		output    string
		timeout   time.Duration
	)
	runtime := func() *local.Runtime {
		return &local.Runtime{Files: files, StateDir: stateDir, Stdout: os.Stderr, Stderr: os.Stderr, DefaultTimeout: timeout}
	}
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run Stash's manifests on this machine, without Kubernetes",
	}
	pf := cmd.PersistentFlags()
	pf.StringSliceVarP(&files, "filename", "f", nil, "files or directories of manifests")
	pf.StringVar(&stateDir, "state-dir", local.DefaultStateDir(), "where sessions and their status are kept")
	pf.StringVarP(&namespace, "namespace", "n", manifest.DefaultNamespace, "namespace of the object")
	pf.StringVarP(&output, "output", "o", outputText, "output format: text or json")
	pf.DurationVar(&timeout, "default-session-timeout", plan.DefaultSessionTimeout, "deadline of sessions whose invoker sets no spec.timeOut")

	report := func(s *local.Session) error {
		if output == outputJSON {
			return writeJSON(stdout, s)
		}
		fmt.Fprintf(stdout, "%s %s/%s: %s in %s", s.Kind, s.Namespace, s.Name, s.Phase, s.End.Sub(s.Start).Round(time.Millisecond))
		if s.Error != "" {
			fmt.Fprintf(stdout, " (%s)", s.Error)
		}
		fmt.Fprintln(stdout)
		return nil
	}
	var listen string
	runCmd := &cobra.Command{
		Use:   "run",
		Short: "Schedule every BackupConfiguration of the manifests, follow their changes, serve /metrics and /healthz",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s := &local.Scheduler{Runtime: runtime(), Listen: listen}
			return s.Run(c.Context())
		},
	}
	runCmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9090", "address for /metrics and /healthz (empty: none)")
	cmd.AddCommand(runCmd, &cobra.Command{
		Use:   "trigger NAME",
		Short: "Run one backup session of BackupConfiguration NAME now and wait for it; exit 0 only on success",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rt := runtime()
			defer rt.Close()
			s, err := rt.Trigger(c.Context(), namespace, args[0])
			if s != nil {
				if rerr := report(s); rerr != nil {
					return rerr
				}
			}
			return err
		},
	}, &cobra.Command{
		Use:   "restore NAME",
		Short: "Run RestoreSession NAME now and wait for it; exit 0 only on success",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rt := runtime()
			defer rt.Close()
			s, err := rt.Restore(c.Context(), namespace, args[0])
			if s != nil {
				if rerr := report(s); rerr != nil {
					return rerr
				}
			}
			return err
		},
	}, &cobra.Command{
		Use:   "sessions",
		Short: "List the sessions this machine ran",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			store, err := local.OpenStore(stateDir)
			if err != nil {
				return err
			}
			defer store.Close()
			if _, err := store.FailInterrupted(local.SessionAlive(stateDir)); err != nil {
				return err
			}
			list, err := store.List()
			if err != nil {
				return err
			}
			if output == outputJSON {
				if list == nil {
					list = []local.Session{}
				}
				return writeJSON(stdout, list)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tINVOKER\tPHASE\tSTART\tDURATION\tHOSTS\tSNAPSHOT\tSIZE\tUPLOADED\tERROR")
			for _, s := range list {
				d := ""
				if !s.End.IsZero() {
					d = s.End.Sub(s.Start).Round(time.Millisecond).String()
				}
				hosts, snap, size, up := sessionStats(s.Status)
				fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Namespace, s.Name, s.Kind, s.InvokerName, s.Phase,
					s.Start.Local().Format("2006-01-02 15:04:05"), d, hosts, snap, size, up, s.Error)
			}
			return tw.Flush()
		},
	})
	return cmd
}

// sessionStats summarises a session status for the sessions table: hosts,
// the first snapshot's short ID, its size and uploaded bytes.
func sessionStats(raw []byte) (hosts, snapshot, size, uploaded string) {
	var st struct {
		Targets []struct {
			Stats []stashv1beta1.HostBackupStats `json:"stats"`
		} `json:"targets"`
		Stats []stashv1beta1.HostRestoreStats `json:"stats"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &st) != nil {
		return "", "", "", ""
	}
	var hs []string
	for _, t := range st.Targets {
		for _, h := range t.Stats {
			hs = append(hs, h.Hostname)
			if snapshot == "" && len(h.Snapshots) > 0 {
				sn := h.Snapshots[0]
				snapshot, size, uploaded = sn.Name, sn.TotalSize, sn.Uploaded
				if len(snapshot) > 8 {
					snapshot = snapshot[:8]
				}
			}
		}
	}
	for _, h := range st.Stats {
		hs = append(hs, h.Hostname)
	}
	return strings.Join(hs, ","), snapshot, size, uploaded
}
