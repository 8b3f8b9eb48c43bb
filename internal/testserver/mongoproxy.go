package testserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/FerretDB/wire"
	"github.com/FerretDB/wire/wirebson"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// MongoHandler answers one command in place of the server behind a
// MongoProxy: the reply document (ok: 1 is added when it has no ok), or an
// error, which goes back as a command failure.
type MongoHandler func(db string, cmd bson.Raw) (bson.D, error)

// MongoProxy stands between a client and a MongoDB wire-protocol server
// (FerretDB here) and answers the commands it has handlers for itself:
// those of MongoDB that FerretDB lacks (applyOps, _mergeAuthzCollections,
// balancer and fsyncLock commands, replica-set status …), as the handlers
// model MongoDB's documented behaviour. Every other message goes to the
// server unchanged. A test against it checks our own reading of MongoDB,
// not MongoDB; each one says so.
type MongoProxy struct {
	Host string
	Port int
	// URI is a mongodb:// URI of the proxy, direct to it.
	URI string

	handlers map[string]MongoHandler
	backend  string
	reqID    atomic.Int32

	mu       sync.Mutex
	commands []string
}

// StartMongoProxy listens on a free port in front of backend; it stops
// when the test ends.
func StartMongoProxy(t testing.TB, backend *FerretDB, handlers map[string]MongoHandler) *MongoProxy {
	t.Helper()
	return StartMongoProxyOn(t, "127.0.0.1", backend, handlers)
}

// StartMongoProxyOn is StartMongoProxy listening on host (the node's
// address, for pods of the test cluster to reach).
func StartMongoProxyOn(t testing.TB, host string, backend *FerretDB, handlers map[string]MongoHandler) *MongoProxy {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	p := &MongoProxy{Host: host, Port: addr.Port, URI: fmt.Sprintf("mongodb://%s/?directConnection=true", net.JoinHostPort(host, fmt.Sprint(addr.Port))),
		handlers: handlers, backend: fmt.Sprintf("%s:%d", backend.Host, backend.Port)}
	p.reqID.Store(1 << 24)
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conns.Delete(c)
				p.serve(c, &conns)
			}()
		}
	}()
	return p
}

// Commands returns the names of the commands the proxy answered itself,
// in order.
func (p *MongoProxy) Commands() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.commands...)
}

func (p *MongoProxy) serve(client net.Conn, conns *sync.Map) {
	defer client.Close()
	server, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	conns.Store(server, true)
	defer conns.Delete(server)
	defer server.Close()
	cr, cw := bufio.NewReader(client), bufio.NewWriter(client)
	sr, sw := bufio.NewReader(server), bufio.NewWriter(server)
	for {
		hdr, body, err := wire.ReadMessage(cr)
		if err != nil {
			return
		}
		if msg, ok := body.(*wire.OpMsg); ok {
			if reply, handled := p.answer(msg); handled {
				if p.write(cw, hdr, reply) != nil {
					return
				}
				continue
			}
		}
		if wire.WriteMessage(sw, hdr, body) != nil || sw.Flush() != nil {
			return
		}
		rh, rb, err := wire.ReadMessage(sr)
		if err != nil {
			return
		}
		if wire.WriteMessage(cw, rh, rb) != nil || cw.Flush() != nil {
			return
		}
	}
}

// answer runs the handler of msg's command, if there is one.
func (p *MongoProxy) answer(msg *wire.OpMsg) (bson.D, bool) {
	raw := bson.Raw(msg.Section0Raw())
	elems, err := raw.Elements()
	if err != nil || len(elems) == 0 {
		return nil, false
	}
	name := elems[0].Key()
	h := p.handlers[name]
	if h == nil {
		return nil, false
	}
	p.mu.Lock()
	p.commands = append(p.commands, name)
	p.mu.Unlock()
	db, _ := raw.Lookup("$db").StringValueOK()
	reply, err := h(db, raw)
	if err != nil {
		var ce *CommandError
		code := int32(8000)
		if errors.As(err, &ce) {
			code = ce.Code
		}
		return bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: err.Error()}, {Key: "code", Value: code}}, true
	}
	for _, e := range reply {
		if e.Key == "ok" {
			return reply, true
		}
	}
	return append(reply, bson.E{Key: "ok", Value: 1.0}), true
}

// CommandError is a handler's failure with MongoDB's error code.
type CommandError struct {
	Code int32
	Msg  string
}

func (e *CommandError) Error() string { return e.Msg }

func (p *MongoProxy) write(w *bufio.Writer, req *wire.MsgHeader, reply bson.D) error {
	b, err := bson.Marshal(reply)
	if err != nil {
		return err
	}
	msg, err := wire.NewOpMsg(wirebson.RawDocument(b))
	if err != nil {
		return err
	}
	body, err := msg.MarshalBinary()
	if err != nil {
		return err
	}
	hdr := &wire.MsgHeader{MessageLength: int32(len(body) + wire.MsgHeaderLen), RequestID: p.reqID.Add(1), ResponseTo: req.RequestID, OpCode: wire.OpCodeMsg}
	if err := wire.WriteMessage(w, hdr, msg); err != nil {
		return err
	}
	return w.Flush()
}
