package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Session is one backup or restore run as the local runtime keeps it, with
// Stash's session status shape.
type Session struct {
	Name        string    `json:"name"`
	Namespace   string    `json:"namespace"`
	Kind        string    `json:"kind"` // BackupSession or RestoreSession
	InvokerKind string    `json:"invokerKind"`
	InvokerName string    `json:"invokerName"`
	Phase       string    `json:"phase"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end,omitempty"`
	Error       string    `json:"error,omitempty"`
	// Status is the BackupSessionStatus or RestoreSessionStatus JSON.
	Status json.RawMessage `json:"status,omitempty"`
	// PID is the runtime process's, for people reading the list; whether
	// the session still runs is Owner's lock to say (owner.go).
	PID int `json:"pid,omitempty"`
	// Owner names the lock file (under <state-dir>/owners) that the runtime
	// running this session holds while it lives.
	Owner string `json:"owner,omitempty"`
	// Repository is the state of the repository after a backup (Stash's
	// post-backup actions VerifyRepositoryIntegrity and
	// SendRepositoryMetrics).
	Repository *RepositoryState `json:"repository,omitempty"`
}

// RepositoryState is what the post-backup actions found.
type RepositoryState struct {
	Name          string `json:"name"`
	Namespace     string `json:"namespace"`
	Backend       string `json:"backend"`
	Bucket        string `json:"bucket,omitempty"`
	Prefix        string `json:"prefix,omitempty"`
	Integrity     bool   `json:"integrity"`
	SizeBytes     int64  `json:"sizeBytes"`
	SnapshotCount int    `json:"snapshotCount"`
	Error         string `json:"error,omitempty"`
}

// Store keeps sessions in a bbolt file under the state directory. The file
// is opened for each operation only, because bbolt locks it exclusively
// and several processes (the runtime, triggers, `local sessions`) share it.
type Store struct {
	path string
}

var sessionsBucket = []byte("sessions")

// OpenStore opens (creating) the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	s := &Store{path: filepath.Join(dir, "state.db")}
	err := s.update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(sessionsBucket)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) open() (*bolt.DB, error) {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", s.path, err)
	}
	return db, nil
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	db, err := s.open()
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(fn)
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	db, err := s.open()
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(fn)
}

// Close is a no-op kept for symmetry: the file is not held open.
func (s *Store) Close() error { return nil }

func key(sess *Session) []byte { return []byte(sess.Kind + "/" + sess.Namespace + "/" + sess.Name) }

// Put writes a session.
func (s *Store) Put(sess *Session) error {
	return s.update(func(tx *bolt.Tx) error { return putTx(tx, sess) })
}

// List returns every session, oldest first.
func (s *Store) List() ([]Session, error) {
	var out []Session
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(sessionsBucket).ForEach(func(_, v []byte) error {
			var sess Session
			if err := json.Unmarshal(v, &sess); err != nil {
				return err
			}
			out = append(out, sess)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, err
}

// FailInterrupted marks sessions left Running by a runtime that died as
// Failed, so that no session stays Running (Stash's #1170, #1488). alive
// says whether a session's runtime still holds it (SessionAlive). Each
// session is re-read and written in one transaction, so that a session
// that finishes meanwhile keeps its real outcome.
func (s *Store) FailInterrupted(alive func(*Session) bool) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(sessionsBucket)
		var dead []*Session
		err := b.ForEach(func(_, v []byte) error {
			var sess Session
			if err := json.Unmarshal(v, &sess); err != nil {
				return err
			}
			if sess.Phase == "Running" && !alive(&sess) {
				dead = append(dead, &sess)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, sess := range dead {
			markInterrupted(sess)
			if err := putTx(tx, sess); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func markInterrupted(sess *Session) {
	sess.Phase, sess.Error, sess.End = "Failed", InterruptedReason, time.Now().UTC()
}

func putTx(tx *bolt.Tx, sess *Session) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return tx.Bucket(sessionsBucket).Put(key(sess), b)
}

// Begin records sess as Running unless a session of the same kind and
// invoker still runs: that one is returned and sess is not written. A
// Running session of the invoker whose runtime is gone (alive says no) is
// marked Failed first. Check and write are one transaction, so two
// triggers at once cannot both start. A name the store already holds is
// refused with ErrSessionExists, so no session overwrites another's record.
func (s *Store) Begin(sess *Session, alive func(*Session) bool) (running *Session, err error) {
	return s.begin(sess, alive, false)
}

// BeginAgain is Begin for a session that runs again under its name (a
// RestoreSession restored again): its old record, status included, is
// replaced.
func (s *Store) BeginAgain(sess *Session, alive func(*Session) bool) (running *Session, err error) {
	return s.begin(sess, alive, true)
}

func (s *Store) begin(sess *Session, alive func(*Session) bool, replace bool) (running *Session, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		if !replace && tx.Bucket(sessionsBucket).Get(key(sess)) != nil {
			return ErrSessionExists
		}
		var dead []*Session
		err := tx.Bucket(sessionsBucket).ForEach(func(_, v []byte) error {
			var x Session
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			if x.Phase != "Running" || x.Kind != sess.Kind || x.Namespace != sess.Namespace || x.InvokerName != sess.InvokerName {
				return nil
			}
			if alive(&x) {
				running = &x
			} else {
				dead = append(dead, &x)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, x := range dead {
			markInterrupted(x)
			if err := putTx(tx, x); err != nil {
				return err
			}
		}
		if running != nil {
			return nil
		}
		sess.Phase = "Running"
		return putTx(tx, sess)
	})
	if err != nil {
		return nil, fmt.Errorf("record session %s/%s: %w", sess.Namespace, sess.Name, err)
	}
	return running, nil
}

// ErrSessionExists is a session name the store already holds.
var ErrSessionExists = errors.New("a session of that name exists")

// Get returns the session of that kind, namespace and name, or nil.
func (s *Store) Get(kind, namespace, name string) (*Session, error) {
	var out *Session
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(sessionsBucket).Get(key(&Session{Kind: kind, Namespace: namespace, Name: name}))
		if v == nil {
			return nil
		}
		out = &Session{}
		return json.Unmarshal(v, out)
	})
	return out, err
}

// RecordStatus replaces the status of a session with what update makes of
// it, in one transaction: the step that reports and the runtime that
// closes the session never lose each other's writes. A session the store
// does not hold (update-status run by hand) is recorded with its status.
func (s *Store) RecordStatus(kind, namespace, name string, update func(raw []byte) ([]byte, error)) error {
	return s.update(func(tx *bolt.Tx) error {
		sess := &Session{Kind: kind, Namespace: namespace, Name: name}
		v := tx.Bucket(sessionsBucket).Get(key(sess))
		if v != nil {
			if err := json.Unmarshal(v, sess); err != nil {
				return err
			}
		}
		raw, err := update(sess.Status)
		if err != nil {
			return err
		}
		sess.Status = raw
		if v == nil {
			// No runtime holds it: the recorded phase is its phase.
			var st struct{ Phase string }
			_ = json.Unmarshal(raw, &st)
			sess.Phase, sess.Start = st.Phase, time.Now().UTC()
		}
		return putTx(tx, sess)
	})
}

// Delete removes a session.
func (s *Store) Delete(sess *Session) error {
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(sessionsBucket).Delete(key(sess)) })
}

// KeepNewest deletes the finished sessions of an invoker beyond the newest
// limit, as backupHistoryLimit asks; running sessions are kept.
func (s *Store) KeepNewest(kind, namespace, invoker string, limit int) error {
	list, err := s.List()
	if err != nil {
		return err
	}
	var mine []Session
	for _, x := range list {
		if x.Kind == kind && x.Namespace == namespace && x.InvokerName == invoker && x.Phase != "Running" {
			mine = append(mine, x)
		}
	}
	// The newest real outcome (Succeeded or Failed) always stays, even
	// when Skipped sessions are newer: metrics and `sessions` report it.
	lastOutcome := -1
	for i, x := range mine {
		if x.Phase == "Succeeded" || x.Phase == "Failed" {
			lastOutcome = i
		}
	}
	for i := 0; i < len(mine)-limit; i++ { // oldest first
		if i == lastOutcome {
			continue
		}
		if err := s.Delete(&mine[i]); err != nil {
			return err
		}
	}
	return nil
}
