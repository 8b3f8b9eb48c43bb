package local

import (
	"github.com/stash-backup/stash/internal/repository/location"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/formats"
	"github.com/stash-backup/stash/internal/step"
	"github.com/stash-backup/stash/internal/validation"
)

// Runtime runs the sessions of a set of manifests on this machine.
type Runtime struct {
	Files    []string
	StateDir string
	// Binary is the stash binary the steps run (default: this process).
	Binary         string
	Stdout, Stderr io.Writer
	Now            func() time.Time
	// DefaultTimeout is the deadline of a session whose invoker sets no
	// timeOut; zero means plan.DefaultSessionTimeout, the operator's.
	DefaultTimeout time.Duration

	ownOnce sync.Once
	own     *owner
	ownErr  error
}

// owner is the lock that makes this process the owner of the sessions it
// runs, taken at the first session and held until Close or exit.
func (rt *Runtime) owner() (*owner, error) {
	rt.ownOnce.Do(func() { rt.own, rt.ownErr = acquireOwner(rt.StateDir) })
	return rt.own, rt.ownErr
}

// Close releases the runtime's ownership lock. Call it when no session of
// this Runtime runs any more; exiting does the same.
func (rt *Runtime) Close() error {
	rt.ownOnce.Do(func() {}) // no lock taken later
	if rt.own == nil {
		return nil
	}
	err := rt.own.release()
	rt.own = nil
	return err
}

// sweep fails the sessions whose runtime is gone and removes the lock
// files such runtimes left.
func (rt *Runtime) sweep(store *Store) (int, error) {
	n, err := store.FailInterrupted(SessionAlive(rt.StateDir))
	if err != nil {
		return n, fmt.Errorf("fail the sessions of stopped runtimes: %w", err)
	}
	removeDeadOwners(rt.StateDir)
	return n, nil
}

// DefaultStateDir is where state lives unless --state-dir says otherwise.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "stash")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "stash")
	}
	return filepath.Join(os.TempDir(), "stash-state")
}

func (rt *Runtime) now() time.Time {
	if rt.Now != nil {
		return rt.Now()
	}
	return time.Now()
}

// InvalidError lists the objects whose validation failed.
type InvalidError struct{ Results []validation.Result }

func (e *InvalidError) Error() string {
	msg := "the manifests are invalid; nothing was started:"
	for _, r := range e.Results {
		for _, er := range r.Blocking() {
			msg += fmt.Sprintf("\n  %s %s: %s", r.Kind, r.Name, er)
		}
	}
	return msg
}

// Load reads and validates the manifests; an invalid set is refused whole.
func (rt *Runtime) Load() (*manifest.Set, *catalog.Catalog, error) {
	set, err := manifest.Load(rt.Files...)
	if err != nil {
		return nil, nil, err
	}
	cat, err := catalog.Builtin()
	if err != nil {
		return nil, nil, err
	}
	cat = cat.With(set.Functions, set.Tasks)
	// The runtime runs from the manifests alone: a Repository, Secret,
	// Task or AppBinding they lack, only a warning for stash validate,
	// refuses the set here.
	var bad []validation.Result
	for _, r := range validation.All(set, cat) {
		if len(r.Blocking()) > 0 {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		return nil, nil, &InvalidError{Results: bad}
	}
	return set, cat, nil
}

func (rt *Runtime) sessionDir(ns, name string) string {
	return filepath.Join(rt.StateDir, "sessions", ns, name)
}

// mounts maps the paths steps use to directories of this machine.
func (rt *Runtime) mounts(ns, session string, repo *stashv1alpha1.Repository) (map[string]string, error) {
	dir := rt.sessionDir(ns, session)
	m := map[string]string{
		plan.ScratchDir:       filepath.Join(dir, "tmp"),
		plan.InterimMountPath: filepath.Join(dir, "interim"),
	}
	if l := repo.Spec.Backend.Local; l != nil && l.MountPath != "" {
		loc, err := location.Resolve(repo.Spec.Backend, nil)
		if err != nil {
			return nil, err
		}
		m[l.MountPath] = loc.Filesystem.Path
	}
	return m, nil
}

// ProcessAlive reports whether a process exists. A zombie and an unrelated
// process that got the PID both count; only sessions recorded before
// owner locks existed are judged by it (SessionAlive).
func ProcessAlive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// Trigger runs one backup session of BackupConfiguration name now and
// returns it finished. A failed session is retried as retryConfig says
// (each retry is a new session named <first>-retry-<n>, after the delay);
// the last session is returned.
func (rt *Runtime) Trigger(ctx context.Context, namespace, name string) (*Session, error) {
	sess, retry, err := rt.trigger(ctx, namespace, name, "")
	if err == nil || sess == nil || sess.Phase != "Failed" || retry == nil {
		return sess, err
	}
	first := sess.Name
	for i := 1; i <= int(retry.MaxRetry); i++ {
		select {
		case <-ctx.Done():
			return sess, err
		case <-time.After(retry.Delay.Duration):
		}
		sess, _, err = rt.trigger(ctx, namespace, name, fmt.Sprintf("%s-retry-%d", first, i))
		if err == nil || sess == nil || sess.Phase != "Failed" {
			return sess, err
		}
	}
	return sess, err
}

// trigger runs one session and also returns the invoker's retryConfig as it
// read it.
func (rt *Runtime) trigger(ctx context.Context, namespace, name, sessionName string) (*Session, *stashv1beta1.RetryConfig, error) {
	sess, bc, err := rt.runBackup(ctx, namespace, name, sessionName)
	if bc == nil {
		return sess, nil, err
	}
	return sess, bc.Spec.RetryConfig, err
}

func (rt *Runtime) runBackup(ctx context.Context, namespace, name, sessionName string) (*Session, *stashv1beta1.BackupConfiguration, error) {
	set, cat, err := rt.Load()
	if err != nil {
		return nil, nil, err
	}
	bc, ok := set.BackupConfigurations[manifest.Key(namespace, name)]
	if !ok {
		return nil, nil, fmt.Errorf("BackupConfiguration %s not found in the manifests", manifest.Key(namespace, name))
	}
	store, err := OpenStore(rt.StateDir)
	if err != nil {
		return nil, bc, err
	}
	defer store.Close()
	if _, err := rt.sweep(store); err != nil {
		return nil, bc, err
	}
	own, err := rt.owner()
	if err != nil {
		return nil, bc, err
	}
	generated := sessionName == ""
	base := fmt.Sprintf("%s-%d", bc.Name, rt.now().Unix())
	l := validation.ManifestLookup{Set: set, Catalog: cat}
	repo, _ := l.Repository(orNS(bc.Spec.Repository.Namespace, bc.Namespace), bc.Spec.Repository.Name)
	var ab *appcatalogv1alpha1.AppBinding
	if bc.Spec.Target != nil && bc.Spec.Target.Ref.Kind == "AppBinding" {
		ab, _ = l.AppBinding(orNS(bc.Spec.Target.Ref.Namespace, bc.Namespace), bc.Spec.Target.Ref.Name)
	}
	var (
		sess    *Session
		job     *batchv1.Job
		running *Session
	)
	// A session's name is its key in the store: two sessions of one
	// BackupConfiguration started within a second (a trigger right after
	// a crash, two triggers at once) get <name>-<n>, and none ever
	// overwrites another's record.
	for n := 0; ; n++ {
		if generated {
			sessionName = base
			if n > 0 {
				sessionName = fmt.Sprintf("%s-%d", base, n)
			}
		}
		sess = &Session{
			Name: sessionName, Namespace: bc.Namespace, Kind: "BackupSession",
			InvokerKind: "BackupConfiguration", InvokerName: bc.Name, Start: rt.now().UTC(), PID: os.Getpid(), Owner: own.id,
		}
		job, err = plan.BackupJob(plan.BackupRequest{Config: bc, AppBinding: ab, Session: sess.Name, Repository: repo, Catalog: cat})
		if err != nil {
			return nil, bc, err
		}
		// One session per BackupConfiguration at a time, as in Stash; a
		// Running one whose runtime died is failed here and does not count.
		running, err = store.Begin(sess, SessionAlive(rt.StateDir))
		if errors.Is(err, ErrSessionExists) && generated && n < 100 {
			continue
		}
		if err != nil {
			return nil, bc, err
		}
		break
	}
	if running != nil {
		sess.Phase, sess.End, sess.Error = "Skipped", rt.now().UTC(), "session "+running.Name+" of this BackupConfiguration is still running"
		return sess, bc, store.Put(sess)
	}
	runCtx, cancel := rt.deadline(ctx, bc.Spec.TimeOut)
	defer cancel()
	runErr := rt.execute(runCtx, set, job, repo, sess)
	runErr = timedOut(runCtx, runErr)
	done, err := rt.finish(store, sess, runErr)
	if done != nil && done.Phase == "Succeeded" {
		done.Repository = rt.repositoryState(ctx, set, repo)
		if perr := store.Put(done); perr != nil && err == nil {
			err = perr
		}
	}
	limit := 1
	if l := bc.Spec.BackupHistoryLimit; l != nil {
		limit = int(*l)
	}
	if herr := store.KeepNewest("BackupSession", bc.Namespace, bc.Name, limit); herr != nil && err == nil {
		err = herr
	}
	return done, bc, err
}

// Restore runs RestoreSession name now and returns it finished.
func (rt *Runtime) Restore(ctx context.Context, namespace, name string) (*Session, error) {
	set, cat, err := rt.Load()
	if err != nil {
		return nil, err
	}
	rs, ok := set.RestoreSessions[manifest.Key(namespace, name)]
	if !ok {
		return nil, fmt.Errorf("RestoreSession %s not found in the manifests", manifest.Key(namespace, name))
	}
	store, err := OpenStore(rt.StateDir)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	if _, err := rt.sweep(store); err != nil {
		return nil, err
	}
	own, err := rt.owner()
	if err != nil {
		return nil, err
	}
	l := validation.ManifestLookup{Set: set, Catalog: cat}
	repo, _ := l.Repository(orNS(rs.Spec.Repository.Namespace, rs.Namespace), rs.Spec.Repository.Name)
	var ab *appcatalogv1alpha1.AppBinding
	if t := rs.Spec.Target; t != nil && t.Ref.Kind == "AppBinding" {
		ab, _ = l.AppBinding(orNS(t.Ref.Namespace, rs.Namespace), t.Ref.Name)
	}
	jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, AppBinding: ab, Repository: repo, Catalog: cat})
	if err != nil {
		return nil, err
	}
	sess := &Session{
		Name: rs.Name, Namespace: rs.Namespace, Kind: "RestoreSession", InvokerKind: "RestoreSession", InvokerName: rs.Name,
		Start: rt.now().UTC(), PID: os.Getpid(), Owner: own.id,
	}
	// A RestoreSession runs again when restored again: its old record
	// and status go.
	running, err := store.BeginAgain(sess, SessionAlive(rt.StateDir))
	if err != nil {
		return nil, err
	}
	if running != nil {
		return nil, fmt.Errorf("RestoreSession %s/%s is already running (since %s, runtime pid %d)",
			sess.Namespace, sess.Name, running.Start.Local().Format(time.RFC3339), running.PID)
	}
	runCtx, cancel := rt.deadline(ctx, rs.Spec.TimeOut)
	defer cancel()
	var runErr error
	for _, job := range jobs {
		if runErr = rt.execute(runCtx, set, job, repo, sess); runErr != nil {
			break
		}
	}
	return rt.finish(store, sess, timedOut(runCtx, runErr))
}

// errTimedOut marks a session's context that reached its deadline, which
// tells it from a deadline of the caller's context.
type errTimedOut struct{ after time.Duration }

func (e errTimedOut) Error() string {
	return fmt.Sprintf("timeOut %s exceeded (spec.timeOut, or the default session timeout)", e.after)
}

// deadline bounds a session's run: a step that hangs must not keep its
// session Running, and every later trigger of its invoker Skipped, for as
// long as the runtime lives. Without a timeOut the operator's default
// applies.
func (rt *Runtime) deadline(ctx context.Context, timeOut *metav1.Duration) (context.Context, context.CancelFunc) {
	d := plan.SessionTimeout(timeOut, rt.DefaultTimeout)
	return context.WithTimeoutCause(ctx, d, errTimedOut{after: d})
}

// timedOut says why a step failed when its session ran out of time.
func timedOut(ctx context.Context, runErr error) error {
	var to errTimedOut
	if runErr != nil && errors.As(context.Cause(ctx), &to) {
		return fmt.Errorf("%w: %w", to, runErr)
	}
	return runErr
}

func (rt *Runtime) execute(ctx context.Context, set *manifest.Set, job *batchv1.Job, repo *stashv1alpha1.Repository, sess *Session) error {
	mounts, err := rt.mounts(sess.Namespace, sess.Name, repo)
	if err != nil {
		return err
	}
	// A Job's scratch, interim and emptyDir volumes end with it, as a
	// pod's do: what a dump step left there (a copy of the database,
	// unencrypted) does not stay on this machine's disk.
	defer os.RemoveAll(rt.sessionDir(sess.Namespace, sess.Name))
	var env []string
	if sess.Kind == "BackupSession" {
		// The backup steps tag their snapshots with the invoker, which
		// Stash's database Functions pass no flag for.
		env = []string{step.EnvInvokerKind + "=" + sess.InvokerKind, step.EnvInvokerName + "=" + sess.InvokerName}
	}
	lookup := validation.ManifestLookup{Set: set}
	e := &Executor{
		Binary: rt.Binary, Mounts: mounts, Stdout: rt.Stdout, Stderr: rt.Stderr, Env: env,
		Volumes: &VolumeMapper{
			Namespace: job.Namespace, StateDir: rt.StateDir, SessionDir: rt.sessionDir(sess.Namespace, sess.Name),
			Mounts: mounts, Secret: lookup.SecretData,
		},
		ExtraArgs: func(c corev1.Container) []string {
			if len(c.Args) > 0 && c.Args[0] == "update-status" {
				return []string{"--state-dir", rt.StateDir}
			}
			var out []string
			if len(c.Args) > 0 && c.Args[0] == "run-hook" {
				out = append(out, "--state-dir", rt.StateDir)
			}
			for _, f := range rt.Files {
				abs, _ := filepath.Abs(f)
				out = append(out, "-f", abs)
			}
			return out
		},
	}
	return e.Run(ctx, job)
}

// finish reads the status update-status recorded in the session's record
// and closes the session.
func (rt *Runtime) finish(store *Store, sess *Session, runErr error) (*Session, error) {
	sess.End = rt.now().UTC()
	var raw []byte
	cur, err := store.Get(sess.Kind, sess.Namespace, sess.Name)
	if err == nil && (cur == nil || len(cur.Status) == 0) {
		err = errors.New("the session's last step did not run")
	}
	if err == nil {
		raw = cur.Status
		sess.Status = raw
	}
	switch {
	case runErr != nil:
		sess.Phase, sess.Error = "Failed", runErr.Error()
	case err != nil:
		sess.Phase, sess.Error = "Failed", "no status was recorded: "+err.Error()
	default:
		var st struct {
			Phase   string `json:"phase"`
			Targets []struct {
				Stats []stashv1beta1.HostBackupStats `json:"stats"`
			} `json:"targets"`
			Stats []stashv1beta1.HostRestoreStats `json:"stats"`
		}
		if jerr := json.Unmarshal(raw, &st); jerr != nil {
			sess.Phase, sess.Error = "Failed", jerr.Error()
			break
		}
		sess.Phase = st.Phase
		for _, t := range st.Targets {
			for _, h := range t.Stats {
				if h.Error != "" {
					sess.Error = h.Hostname + ": " + h.Error
				}
			}
		}
		for _, h := range st.Stats {
			if h.Error != "" {
				sess.Error = h.Hostname + ": " + h.Error
			}
		}
	}
	if err := store.Put(sess); err != nil {
		return sess, err
	}
	if sess.Phase != "Succeeded" {
		return sess, errors.New(sess.Kind + " " + sess.Namespace + "/" + sess.Name + " " + sess.Phase + ": " + sess.Error)
	}
	return sess, nil
}

func orNS(ns, def string) string {
	if ns == "" {
		return def
	}
	return ns
}

// repositoryState runs the post-backup actions: an integrity check of the
// repository's metadata and its size and snapshot count.
func (rt *Runtime) repositoryState(ctx context.Context, set *manifest.Set, repo *stashv1alpha1.Repository) *RepositoryState {
	st := &RepositoryState{Name: repo.Name, Namespace: repo.Namespace}
	b := repo.Spec.Backend
	switch {
	case b.Local != nil:
		st.Backend = "local"
	case b.S3 != nil:
		st.Backend, st.Bucket, st.Prefix = "s3", b.S3.Bucket, b.S3.Prefix
	case b.GCS != nil:
		st.Backend, st.Bucket, st.Prefix = "gcs", b.GCS.Bucket, b.GCS.Prefix
	case b.Azure != nil:
		st.Backend, st.Bucket, st.Prefix = "azure", b.Azure.Container, b.Azure.Prefix
	case b.B2 != nil:
		st.Backend, st.Bucket, st.Prefix = "b2", b.B2.Bucket, b.B2.Prefix
	}
	fail := func(err error) *RepositoryState { st.Error = err.Error(); return st }
	secret, err := set.StorageSecret(repo)
	if err != nil {
		return fail(err)
	}
	loc, err := location.Resolve(b, secret)
	if err != nil {
		return fail(err)
	}
	pw, err := location.Password(secret)
	if err != nil {
		return fail(err)
	}
	// A restic repository Stash wrote reports its state too.
	r, err := formats.OpenReader(ctx, repository.Options{Location: loc, Password: pw})
	if err != nil {
		return fail(err)
	}
	defer r.Close(ctx) //nolint:errcheck
	check, err := r.Check(ctx, false)
	if err != nil {
		return fail(err)
	}
	st.Integrity = check.OK
	if !check.OK {
		st.Error = strings.Join(check.Errors, "; ")
	}
	stats, err := r.Stats(ctx)
	if err != nil {
		return fail(err)
	}
	st.SizeBytes, st.SnapshotCount = stats.TotalBytes, stats.SnapshotCount
	return st
}
