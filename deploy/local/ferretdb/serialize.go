package main

// FerretDB v1's SQLite handler applies update and findAndModify as a read, then a write,
// outside one transaction (FerretDB issue #3040), so concurrent updates of one document
// lose writes: 8 clients x 200 `$inc` on one document ended at 161, not 1600. MongoDB
// guarantees single-document atomicity, and Dealflow's outbox, idempotent consumers and
// timer claims rely on it. This front end restores it: it forwards the wire protocol to
// the embedded FerretDB unchanged and lets one write command at a time through per
// database, from its arrival until its reply. Reads are not held back. SQLite has one
// writer at a time per database file anyway, so the cost is small; writes to different
// databases (one per service) go side by side.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
)

const (
	opMsg       = 2013
	moreToCome  = 1 << 1
	maxMsgBytes = 48_000_000
)

var writeCommands = map[string]bool{
	"insert": true, "update": true, "delete": true, "findandmodify": true,
	"create": true, "createindexes": true, "drop": true, "dropindexes": true,
	"dropdatabase": true, "renamecollection": true,
}

func readMessage(r io.Reader) ([]byte, error) {
	var header [16]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	size := int(binary.LittleEndian.Uint32(header[:4]))
	if size < 16 || size > maxMsgBytes {
		return nil, errors.New("bad message length")
	}
	msg := make([]byte, size)
	copy(msg, header[:])
	if _, err := io.ReadFull(r, msg[16:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// command returns the command name (lower case) and the target database of an OP_MSG
// that expects a reply; "" for anything else.
func command(msg []byte) (name, db string) {
	if len(msg) < 21 || binary.LittleEndian.Uint32(msg[12:16]) != opMsg {
		return "", ""
	}
	if binary.LittleEndian.Uint32(msg[16:20])&moreToCome != 0 {
		return "", "" // no reply will come to release the turn
	}
	pos := 20
	for pos+5 <= len(msg) {
		kind := msg[pos]
		size := int(binary.LittleEndian.Uint32(msg[pos+1 : pos+5]))
		if kind == 0 {
			end := pos + 1 + size
			if size < 5 || end > len(msg) {
				return "", ""
			}
			return bodyCommand(msg[pos+1 : end])
		}
		pos += 1 + size
	}
	return "", ""
}

// bodyCommand reads the first key and the "$db" string of a BSON document.
func bodyCommand(doc []byte) (name, db string) {
	pos := 4
	first := true
	for pos < len(doc)-1 {
		typ := doc[pos]
		pos++
		keyEnd := pos
		for keyEnd < len(doc) && doc[keyEnd] != 0 {
			keyEnd++
		}
		if keyEnd >= len(doc) {
			return name, db
		}
		key := string(doc[pos:keyEnd])
		pos = keyEnd + 1
		if first {
			name = strings.ToLower(key)
			first = false
		}
		n := valueSize(typ, doc[pos:])
		if n < 0 || pos+n > len(doc) {
			return name, db
		}
		if key == "$db" && typ == 0x02 && n > 5 {
			db = string(doc[pos+4 : pos+n-1])
		}
		pos += n
	}
	return name, db
}

// valueSize is the encoded size of a BSON value of type typ at the start of b, or -1.
func valueSize(typ byte, b []byte) int {
	i32 := func() int {
		if len(b) < 4 {
			return -1
		}
		return int(int32(binary.LittleEndian.Uint32(b[:4])))
	}
	switch typ {
	case 0x01, 0x09, 0x11, 0x12: // double, datetime, timestamp, int64
		return 8
	case 0x02, 0x0D, 0x0E: // string, code, symbol
		if n := i32(); n >= 0 {
			return 4 + n
		}
	case 0x03, 0x04, 0x0F: // document, array, code with scope
		return i32()
	case 0x05: // binary
		if n := i32(); n >= 0 {
			return 5 + n
		}
	case 0x06, 0x0A, 0x7F, 0xFF: // undefined, null, max key, min key
		return 0
	case 0x07: // object id
		return 12
	case 0x08: // bool
		return 1
	case 0x0B: // regex: two cstrings
		n, zeros := 0, 0
		for n < len(b) && zeros < 2 {
			if b[n] == 0 {
				zeros++
			}
			n++
		}
		return n
	case 0x0C: // db pointer
		if n := i32(); n >= 0 {
			return 4 + n + 12
		}
	case 0x10: // int32
		return 4
	case 0x13: // decimal128
		return 16
	}
	return -1
}

type serializer struct {
	backend string // unix socket of the embedded FerretDB
	mu      sync.Mutex
	writes  map[string]*sync.Mutex // database -> its write turn
	ids     *idIndexer             // a database's part only while holding its turn
	log     *slog.Logger
}

// turn is the write lock of one database.
func (s *serializer) turn(db string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.writes == nil {
		s.writes = map[string]*sync.Mutex{}
	}

	m, ok := s.writes[db]
	if !ok {
		m = &sync.Mutex{}
		s.writes[db] = m
	}

	return m
}

func (s *serializer) serve(l net.Listener) error {
	for {
		client, err := l.Accept()
		if err != nil {
			return err
		}
		go s.handle(client)
	}
}

func (s *serializer) handle(client net.Conn) {
	server, err := net.Dial("unix", s.backend)
	if err != nil {
		s.log.Error("backend", "error", err)
		client.Close()
		return
	}

	var mu sync.Mutex // guards held and heldDB
	var held *sync.Mutex
	heldDB := ""
	release := func() {
		mu.Lock()
		if held != nil {
			if heldDB != "" {
				if err := s.ids.ensure(context.Background(), heldDB); err != nil {
					s.log.Debug("id index", "db", heldDB, "error", err)
				}
			}
			held.Unlock()
			held = nil
		}
		mu.Unlock()
	}

	done := make(chan struct{})
	go func() { // replies: server -> client
		defer close(done)
		for {
			msg, err := readMessage(server)
			if err != nil {
				break
			}
			release()
			if _, err := client.Write(msg); err != nil {
				break
			}
		}
		client.Close()
	}()

	for { // requests: client -> server
		msg, err := readMessage(client)
		if err != nil {
			break
		}
		if name, db := command(msg); writeCommands[name] {
			t := s.turn(db)
			t.Lock()
			if name == "dropdatabase" {
				s.ids.forget(db)
				db = ""
			}
			mu.Lock()
			held = t
			heldDB = db
			mu.Unlock()
		}
		if _, err := server.Write(msg); err != nil {
			break
		}
	}
	server.Close()
	<-done
	release()
}
