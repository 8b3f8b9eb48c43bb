package local

import (
	"encoding/json"
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
	PID    int             `json:"pid,omitempty"`
}

// Store keeps sessions in a bbolt file under the state directory.
type Store struct {
	db *bolt.DB
}

var sessionsBucket = []byte("sessions")

// OpenStore opens (creating) the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state store in %s: %w", dir, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(sessionsBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func key(sess *Session) []byte { return []byte(sess.Kind + "/" + sess.Namespace + "/" + sess.Name) }

// Put writes a session.
func (s *Store) Put(sess *Session) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(sessionsBucket).Put(key(sess), b) })
}

// List returns every session, oldest first.
func (s *Store) List() ([]Session, error) {
	var out []Session
	err := s.db.View(func(tx *bolt.Tx) error {
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
// Failed, so that no session stays Running (Stash's #1170, #1488).
func (s *Store) FailInterrupted(alive func(pid int) bool) (int, error) {
	sessions, err := s.List()
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range sessions {
		sess := &sessions[i]
		if sess.Phase != "Running" || (sess.PID != 0 && alive(sess.PID)) {
			continue
		}
		sess.Phase = "Failed"
		sess.Error = "the runtime stopped while this session ran (killed or crashed)"
		sess.End = time.Now().UTC()
		if err := s.Put(sess); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
