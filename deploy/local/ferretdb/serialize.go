package main

// FerretDB v1's SQLite handler applies update and findAndModify as a read, then a write,
// outside one transaction (FerretDB issue #3040), so concurrent updates of one document
// lose writes: 8 clients x 200 `$inc` on one document ended at 161, not 1600. MongoDB
// guarantees single-document atomicity, and Dealflow's outbox, idempotent consumers and
// timer claims rely on it. This front end restores it: it forwards the wire protocol to
// the embedded FerretDB unchanged and lets one write command at a time through, from its
// arrival until its reply. Reads are not held back. SQLite has one writer at a time
// anyway, so the cost is small.

import (
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

// isWrite reports whether msg is an OP_MSG write command that expects a reply.
func isWrite(msg []byte) bool {
	if len(msg) < 21 || binary.LittleEndian.Uint32(msg[12:16]) != opMsg {
		return false
	}
	if binary.LittleEndian.Uint32(msg[16:20])&moreToCome != 0 {
		return false // no reply will come to release the turn
	}
	pos := 20
	for pos < len(msg) {
		kind := msg[pos]
		pos++
		if pos+4 > len(msg) {
			return false
		}
		size := int(binary.LittleEndian.Uint32(msg[pos : pos+4]))
		if kind == 0 {
			// BSON document: int32 size, then the first element: type byte, cstring name
			start := pos + 5
			end := start
			for end < len(msg) && msg[end] != 0 {
				end++
			}
			if start > len(msg) || end >= len(msg) {
				return false
			}
			return writeCommands[strings.ToLower(string(msg[start:end]))]
		}
		pos += size
	}
	return false
}

type serializer struct {
	backend string // unix socket of the embedded FerretDB
	writes  sync.Mutex
	log     *slog.Logger
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

	var mu sync.Mutex // guards holding
	holding := false
	release := func() {
		mu.Lock()
		if holding {
			holding = false
			s.writes.Unlock()
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
		if isWrite(msg) {
			s.writes.Lock()
			mu.Lock()
			holding = true
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
