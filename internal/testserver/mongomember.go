package testserver

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MongoMember is one member of a replica set as a backup sees it: a
// FerretDB behind a MongoProxy that answers replSetGetStatus, currentOp,
// fsync with lock, fsyncUnlock and applyOps as MongoDB documents them
// (FerretDB has no replica sets, fsyncLock or applyOps) and records them. Tests against it
// check our reading of MongoDB's replica-set and sharded procedures.
type MongoMember struct {
	*FerretDB
	Proxy *MongoProxy

	mu     sync.Mutex
	set    string
	state  string
	locked bool
	fail   error
}

// StartMongoMember starts a member of replica set set in state (PRIMARY
// or SECONDARY); a second, unreachable member of the other state is
// listed beside it.
func StartMongoMember(t testing.TB, set, state string) *MongoMember {
	t.Helper()
	return StartMongoMemberOn(t, "127.0.0.1", set, state)
}

// StartMongoMemberOn is StartMongoMember with the member's address on
// host (the node's, for pods of the test cluster to reach); its FerretDB
// listens on 127.0.0.1.
func StartMongoMemberOn(t testing.TB, host, set, state string) *MongoMember {
	t.Helper()
	m := &MongoMember{FerretDB: StartFerretDB(t), set: set, state: state}
	backend, err := mongo.Connect(options.Client().ApplyURI(m.URI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Disconnect(context.Background()) })
	m.Proxy = StartMongoProxyOn(t, host, m.FerretDB, map[string]MongoHandler{
		"applyOps":         ApplyOps(backend),
		"replSetGetStatus": m.status,
		"currentOp": func(string, bson.Raw) (bson.D, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			return bson.D{{Key: "inprog", Value: bson.A{}}, {Key: "fsyncLock", Value: m.locked}}, nil
		},
		"fsync": func(_ string, cmd bson.Raw) (bson.D, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if lock, _ := cmd.Lookup("lock").BooleanOK(); lock {
				m.locked = true
			}
			return bson.D{{Key: "lockCount", Value: int64(1)}}, nil
		},
		"fsyncUnlock": func(string, bson.Raw) (bson.D, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if !m.locked {
				return nil, &CommandError{Code: 125, Msg: "fsyncUnlock called when not locked"}
			}
			m.locked = false
			return bson.D{{Key: "lockCount", Value: int64(0)}}, nil
		},
	})
	return m
}

func (m *MongoMember) status(string, bson.Raw) (bson.D, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	other := "PRIMARY"
	if m.state == "PRIMARY" {
		other = "SECONDARY"
	}
	return bson.D{{Key: "set", Value: m.set}, {Key: "members", Value: bson.A{
		bson.D{{Key: "name", Value: "127.0.0.1:1"}, {Key: "stateStr", Value: other}, {Key: "health", Value: 1.0}},
		bson.D{{Key: "name", Value: m.Addr()}, {Key: "stateStr", Value: m.state}, {Key: "health", Value: 1.0}},
	}}}, nil
}

// Addr is the member's address (its proxy's), host:port.
func (m *MongoMember) Addr() string { return net.JoinHostPort(m.Proxy.Host, fmt.Sprint(m.Proxy.Port)) }

// SetState makes the member PRIMARY or SECONDARY.
func (m *MongoMember) SetState(s string) { m.mu.Lock(); m.state = s; m.mu.Unlock() }

// SetLocked sets whether the member is fsyncLocked (a lock an earlier
// backup left).
func (m *MongoMember) SetLocked(l bool) { m.mu.Lock(); m.locked = l; m.mu.Unlock() }

// Locked says whether the member is fsyncLocked.
func (m *MongoMember) Locked() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.locked }

// Fail makes replSetGetStatus fail with err (nil: answer again).
func (m *MongoMember) Fail(err error) { m.mu.Lock(); m.fail = err; m.mu.Unlock() }
