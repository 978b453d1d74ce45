package wire

import (
	"context"
	"fmt"
	"slices"
)

// ProtocolVersion is the newest version of the protocol this package
// speaks. Version 2 adds MemoryCheck and MemoryDigest, which verify guest
// memory after the handoff, and PageList, which carries scattered pages
// many to a frame; everything else is version 1's.
const ProtocolVersion uint32 = 2

// SupportedVersions lists every version this package can speak.
var SupportedVersions = []uint32{1, ProtocolVersion}

// Negotiate returns the highest version in both lists. With no overlap the
// error is a *VersionMismatchError listing both (ErrNoCommonVersion).
func Negotiate(ours, theirs []uint32) (uint32, error) {
	var (
		best  uint32
		found bool
	)
	for _, v := range ours {
		if (!found || v > best) && slices.Contains(theirs, v) {
			best, found = v, true
		}
	}
	if !found {
		return 0, &VersionMismatchError{Ours: slices.Clone(ours), Theirs: slices.Clone(theirs)}
	}
	return best, nil
}

// HandshakeClient runs the dialling side's handshake (the destination): it
// offers versions and returns the one the server chose. If the server
// refuses, the error is a *RemoteError whose message lists both sides'
// versions.
func HandshakeClient(ctx context.Context, c *Conn, versions []uint32) (uint32, error) {
	if err := c.Send(ctx, &Hello{Versions: versions}); err != nil {
		return 0, fmt.Errorf("version handshake: %w", err)
	}
	reply, err := Expect[*HelloReply](ctx, c)
	if err != nil {
		return 0, fmt.Errorf("version handshake: %w", err)
	}
	if !slices.Contains(versions, reply.Version) {
		return 0, fmt.Errorf("version handshake: peer chose version %d: %w", reply.Version,
			&VersionMismatchError{Ours: slices.Clone(versions), Theirs: []uint32{reply.Version}})
	}
	return reply.Version, nil
}

// HandshakeServer runs the accepting side's handshake (the source): it reads
// the client's offer and answers with the highest common version. With no
// overlap it sends an Error naming both lists, then returns a
// *VersionMismatchError.
func HandshakeServer(ctx context.Context, c *Conn, versions []uint32) (uint32, error) {
	hello, err := Expect[*Hello](ctx, c)
	if err != nil {
		return 0, fmt.Errorf("version handshake: %w", err)
	}
	v, err := Negotiate(versions, hello.Versions)
	if err != nil {
		// Best effort: the peer learns why, and our own error stands.
		msg := fmt.Sprintf("%v: server supports %v, client offered %v", ErrNoCommonVersion, versions, hello.Versions)
		_ = c.Send(ctx, &Error{Message: msg})
		return 0, fmt.Errorf("version handshake: %w", err)
	}
	if err := c.Send(ctx, &HelloReply{Version: v}); err != nil {
		return 0, fmt.Errorf("version handshake: %w", err)
	}
	return v, nil
}
