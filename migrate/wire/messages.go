package wire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
)

// Bounds on variable-length fields, beyond the frame limit itself.
const (
	// MaxSpecLen bounds Sync.Spec (the JSON of the source's vmm.Spec).
	MaxSpecLen = 1 << 20
	// MaxConsoleLen bounds ServerState.Console.
	MaxConsoleLen = 1 << 20
	// MaxDevices bounds DeviceState.Devices.
	MaxDevices = 4096
	// MaxPhaseTimings bounds Finish.Phases.
	MaxPhaseTimings = 4096
	// MaxMemorySamples bounds MemoryCheck.Samples.
	MaxMemorySamples = 1 << 16
	// MaxRuns bounds the runs in ZeroPages and PullRequest (each run takes
	// 12 bytes, so a frame holds at most this many).
	MaxRuns = MaxPayload / pageRunSize

	pageRunSize     = 12
	pageHashSize    = 16
	phaseTimingSize = 33
	timeDataSize    = 44
	deviceMinSize   = 16
)

// Hello opens the handshake (destination → source): the protocol versions
// the destination speaks.
type Hello struct {
	Versions []uint32
}

// Type returns TypeHello.
func (*Hello) Type() Type { return TypeHello }

func (m *Hello) appendPayload(b []byte) ([]byte, error) {
	if err := checkCount(TypeHello, "versions", len(m.Versions), MaxVersions); err != nil {
		return b, err
	}
	b = appendU32(b, uint32(len(m.Versions)))
	for _, v := range m.Versions {
		b = appendU32(b, v)
	}
	return b, nil
}

func (m *Hello) decodePayload(d *decoder) {
	n := d.count("Versions", 4, MaxVersions)
	m.Versions = m.Versions[:0]
	for range n {
		m.Versions = append(m.Versions, d.u32("Versions"))
	}
}

// HelloReply answers Hello (source → destination) with the version chosen.
type HelloReply struct {
	Version uint32
}

// Type returns TypeHelloReply.
func (*HelloReply) Type() Type { return TypeHelloReply }

func (m *HelloReply) appendPayload(b []byte) ([]byte, error) { return appendU32(b, m.Version), nil }
func (m *HelloReply) decodePayload(d *decoder)               { m.Version = d.u32("Version") }

// Okay acknowledges the previous step. It has no payload.
type Okay struct{}

// Type returns TypeOkay.
func (*Okay) Type() Type                             { return TypeOkay }
func (*Okay) appendPayload(b []byte) ([]byte, error) { return b, nil }
func (*Okay) decodePayload(*decoder)                 {}

// Error tells the peer that the sender failed; the receiver reports it as a
// *RemoteError. Phase is a schema.Phase value (0 during the handshake).
type Error struct {
	Phase   uint8
	Message string
}

// Type returns TypeError.
func (*Error) Type() Type { return TypeError }

func (m *Error) appendPayload(b []byte) ([]byte, error) {
	b = append(b, m.Phase)
	return appendString(b, TypeError, "Message", m.Message, MaxErrorMessage)
}

func (m *Error) decodePayload(d *decoder) {
	m.Phase = d.u8("Phase")
	m.Message = d.str("Message", MaxErrorMessage)
}

// Sync opens the migration (source → destination).
type Sync struct {
	// MigrationID identifies the migration (a UUID's 16 bytes).
	MigrationID [16]byte
	// TraceParent and TraceState are the W3C trace context of the source's
	// migration span, so both hosts' spans share one trace.
	TraceParent string
	TraceState  string
	// SourceName is the source server's name.
	SourceName string
	// Spec is the JSON encoding of the source VM's vmm.Spec.
	Spec []byte
}

// Type returns TypeSync.
func (*Sync) Type() Type { return TypeSync }

func (m *Sync) appendPayload(b []byte) ([]byte, error) {
	b = append(b, m.MigrationID[:]...)
	var err error
	if b, err = appendString(b, TypeSync, "TraceParent", m.TraceParent, MaxTraceParentLen); err != nil {
		return b, err
	}
	if b, err = appendString(b, TypeSync, "TraceState", m.TraceState, MaxTraceStateLen); err != nil {
		return b, err
	}
	if b, err = appendString(b, TypeSync, "SourceName", m.SourceName, MaxNameLen); err != nil {
		return b, err
	}
	return appendBytes(b, TypeSync, "Spec", m.Spec, MaxSpecLen)
}

func (m *Sync) decodePayload(d *decoder) {
	copy(m.MigrationID[:], d.take("MigrationID", 16))
	m.TraceParent = d.str("TraceParent", MaxTraceParentLen)
	m.TraceState = d.str("TraceState", MaxTraceStateLen)
	m.SourceName = d.str("SourceName", MaxNameLen)
	m.Spec = d.bytesCopy("Spec", MaxSpecLen)
}

// ClockProbe asks the source for its wall clock (destination → source).
// T1 is the destination's wall clock, in Unix ns, when it sent the probe.
type ClockProbe struct {
	Seq uint32
	T1  int64
}

// Type returns TypeClockProbe.
func (*ClockProbe) Type() Type { return TypeClockProbe }

func (m *ClockProbe) appendPayload(b []byte) ([]byte, error) {
	return appendI64(appendU32(b, m.Seq), m.T1), nil
}

func (m *ClockProbe) decodePayload(d *decoder) {
	m.Seq = d.u32("Seq")
	m.T1 = d.i64("T1")
}

// ClockReply answers a ClockProbe (source → destination): T1 echoed, T2 the
// source's wall clock when the probe arrived, T3 when the reply left, all
// Unix ns.
type ClockReply struct {
	Seq        uint32
	T1, T2, T3 int64
}

// Type returns TypeClockReply.
func (*ClockReply) Type() Type { return TypeClockReply }

func (m *ClockReply) appendPayload(b []byte) ([]byte, error) {
	b = appendU32(b, m.Seq)
	b = appendI64(b, m.T1)
	b = appendI64(b, m.T2)
	return appendI64(b, m.T3), nil
}

func (m *ClockReply) decodePayload(d *decoder) {
	m.Seq = d.u32("Seq")
	m.T1 = d.i64("T1")
	m.T2 = d.i64("T2")
	m.T3 = d.i64("T3")
}

// Sample completes the exchange with T4, the destination's wall clock when
// the reply arrived.
func (m *ClockReply) Sample(t4 int64) ClockSample {
	return ClockSample{T1: m.T1, T2: m.T2, T3: m.T3, T4: t4}
}

// RoundBegin starts a RAM push round (source → destination). Pages is the
// number of pages the round will carry, as data or as zero runs.
type RoundBegin struct {
	Round  uint32
	Paused bool
	Pages  uint64
}

// Type returns TypeRoundBegin.
func (*RoundBegin) Type() Type { return TypeRoundBegin }

func (m *RoundBegin) appendPayload(b []byte) ([]byte, error) {
	b = appendU32(b, m.Round)
	b = appendBool(b, m.Paused)
	return appendU64(b, m.Pages), nil
}

func (m *RoundBegin) decodePayload(d *decoder) {
	m.Round = d.u32("Round")
	m.Paused = d.boolean("Paused")
	m.Pages = d.u64("Pages")
}

// PageData carries Count consecutive pages starting at page First (source →
// destination). Data holds exactly Count*PageSize bytes, 1 ≤ Count ≤
// MaxPagesPerFrame.
//
// A PageData returned by Conn.Recv, and its Data, belong to the Conn and are
// valid only until the next Recv: copy the pages into guest memory before
// receiving again. Send does not retain Data.
type PageData struct {
	First uint64
	Count uint32
	Data  []byte

	// frame, when set by NewPageData, is Data's backing buffer with room
	// for the frame head in front.
	frame []byte
}

// pageDataFixed is the size of PageData's fixed fields (First, Count);
// pageDataHead adds the frame header.
const (
	pageDataFixed = 12
	pageDataHead  = HeaderSize + pageDataFixed
)

// NewPageData returns a PageData for up to maxPages pages (at most
// MaxPagesPerFrame) whose Data sits in a buffer with room for the frame
// head in front, so that Conn.Send writes it without copying the pages.
// Data and Count start at maxPages.
//
// To send a run of the pages, reslice the original Data to it and set First
// and Count: buf := pd.Data, then pd.Data = buf[i*PageSize:(i+n)*PageSize]
// for pages i to i+n-1. A run that does not start at page 0 is framed in
// place too: Send then writes the 20-byte frame head over the end of page
// i-1 in the buffer, so the pages before a run must be ones already sent or
// no longer needed (as when a buffer is scanned and sent from the start).
// Pointing Data at other memory still works, at the cost of a copy.
func NewPageData(maxPages int) *PageData {
	maxPages = min(max(maxPages, 1), MaxPagesPerFrame)
	buf := make([]byte, pageDataHead+maxPages*PageSize)
	return &PageData{Count: uint32(maxPages), Data: buf[pageDataHead:], frame: buf}
}

// frameInPlace returns the frame, head included, in the memory of Data's
// buffer from NewPageData, or nil if Data lies elsewhere.
func (m *PageData) frameInPlace() []byte {
	if len(m.Data) == 0 || m.frame == nil {
		return nil
	}
	// A slice of the buffer keeps the buffer's end as its capacity, which
	// gives Data's offset in it; the address check catches anything else.
	off := cap(m.frame) - cap(m.Data)
	if off < pageDataHead || off+len(m.Data) > len(m.frame) || &m.frame[off] != &m.Data[0] {
		return nil
	}
	return m.frame[off-pageDataHead : off+len(m.Data)]
}

// Type returns TypePageData.
func (*PageData) Type() Type { return TypePageData }

func (m *PageData) appendHead(b []byte) ([]byte, error) {
	if err := checkRun(TypePageData, "pages", m.First, uint64(m.Count), MaxPagesPerFrame); err != nil {
		return b, err
	}
	if uint64(len(m.Data)) != uint64(m.Count)*PageSize {
		return b, fmt.Errorf("encoding PageData: %d bytes of data for %d pages (want %d): %w",
			len(m.Data), m.Count, uint64(m.Count)*PageSize, ErrInvalidMessage)
	}
	return appendU32(appendU64(b, m.First), m.Count), nil
}

func (m *PageData) appendPayload(b []byte) ([]byte, error) {
	b, err := m.appendHead(b)
	if err != nil {
		return b, err
	}
	return append(b, m.Data...), nil
}

func (m *PageData) decodePayload(d *decoder) {
	m.First = d.u64("First")
	off := d.off
	m.Count = d.u32("Count")
	if d.err != nil {
		return
	}
	if m.Count == 0 || m.Count > MaxPagesPerFrame {
		d.fail("Count", off, "%d pages, want 1 to %d", m.Count, MaxPagesPerFrame)
		return
	}
	if m.First > math.MaxUint64-uint64(m.Count) {
		d.fail("First", off-8, "page %d + %d pages overflows", m.First, m.Count)
		return
	}
	m.Data = d.take("Data", int(m.Count)*PageSize)
}

// MaxListPages bounds a PageList: 512 pages, 2 MiB of page data.
const MaxListPages = 512

// pageListEntry is what one page costs in a PageList: its data and its
// page number.
const pageListEntry = PageSize + 8

// PageList carries pages that need not be consecutive (version 2; source
// → destination): 1 to MaxListPages pages, Data holding them in the order
// of Pages, whose page numbers increase strictly. Pages a guest dirtied one
// by one, sent as PageData, cost a frame each, and a frame costs the
// sender a write and the receiver two reads; a PageList carries 512.
//
// A PageList returned by Conn.Recv, with its Pages and Data, belongs to
// the Conn and is valid only until the next Recv.
type PageList struct {
	Pages []uint64
	Data  []byte

	// frame, when set by NewPageList, is Data's backing buffer, with room
	// for the frame head in front and the page numbers behind.
	frame []byte
}

// NewPageList returns an empty PageList for up to maxPages pages (at most
// MaxListPages) whose Data sits in a buffer that Conn.Send frames in
// place, without copying the pages. Fill it by copying page i of the list
// to Data[i*PageSize:] and appending its number to Pages; Send sends the
// first len(Pages) pages of Data, and writes their page numbers over the
// pages of Data after them. Truncate Pages to refill it.
func NewPageList(maxPages int) *PageList {
	maxPages = min(max(maxPages, 1), MaxListPages)
	buf := make([]byte, pageListHead+maxPages*pageListEntry)
	return &PageList{Pages: make([]uint64, 0, maxPages), Data: buf[pageListHead : pageListHead+maxPages*PageSize], frame: buf}
}

// pageListHead is the frame header and PageList's Count field.
const pageListHead = HeaderSize + 4

// Type returns TypePageList.
func (*PageList) Type() Type { return TypePageList }

// check refuses a list the receiver would refuse.
func (m *PageList) check() error {
	n := len(m.Pages)
	if n == 0 || n > MaxListPages {
		return fmt.Errorf("encoding PageList: %d pages, want 1 to %d: %w", n, MaxListPages, ErrInvalidMessage)
	}
	if len(m.Data) < n*PageSize {
		return fmt.Errorf("encoding PageList: %d bytes of data for %d pages: %w", len(m.Data), n, ErrInvalidMessage)
	}
	for i := 1; i < n; i++ {
		if m.Pages[i] <= m.Pages[i-1] {
			return fmt.Errorf("encoding PageList: page %d follows page %d: %w", m.Pages[i], m.Pages[i-1], ErrInvalidMessage)
		}
	}
	return nil
}

// frameInPlace lays the frame out in NewPageList's buffer: the head in
// front of Data, the page numbers behind its first len(Pages) pages. It
// returns nil if Data lies elsewhere.
func (m *PageList) frameInPlace() []byte {
	if m.frame == nil || len(m.Data) == 0 || &m.Data[0] != &m.frame[pageListHead] {
		return nil
	}
	n := len(m.Pages)
	end := pageListHead + n*PageSize
	f := m.frame[:end+8*n]
	binary.LittleEndian.PutUint32(f[HeaderSize:], uint32(n))
	for i, p := range m.Pages {
		binary.LittleEndian.PutUint64(f[end+8*i:], p)
	}
	return f
}

func (m *PageList) appendPayload(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, err
	}
	n := len(m.Pages)
	b = appendU32(b, uint32(n))
	b = append(b, m.Data[:n*PageSize]...)
	for _, p := range m.Pages {
		b = appendU64(b, p)
	}
	return b, nil
}

func (m *PageList) decodePayload(d *decoder) {
	off := d.off
	n := d.u32("Count")
	if d.err != nil {
		return
	}
	if n == 0 || n > MaxListPages {
		d.fail("Count", off, "%d pages, want 1 to %d", n, MaxListPages)
		return
	}
	if d.remaining() != int(n)*pageListEntry {
		d.fail("Data", d.off, "%d bytes for %d pages, want %d", d.remaining(), n, int(n)*pageListEntry)
		return
	}
	m.Data = d.take("Data", int(n)*PageSize)
	m.Pages = m.Pages[:0]
	for i := range int(n) {
		at := d.off
		p := d.u64("Pages")
		if i > 0 && p <= m.Pages[i-1] {
			d.fail(fmt.Sprintf("Pages[%d]", i), at, "page %d follows page %d", p, m.Pages[i-1])
			return
		}
		m.Pages = append(m.Pages, p)
	}
}

// listChecked is the part of a PageList payload the frame checksum
// covers: the count and the page numbers, not the pages (as for
// PageData). A payload whose length does not fit its count is covered
// whole; the decoder refuses it anyway.
func listChecked(payload []byte) (head, tail []byte) {
	if len(payload) >= 4 {
		n := int(binary.LittleEndian.Uint32(payload))
		if n <= MaxListPages && len(payload) == 4+n*pageListEntry {
			return payload[:4], payload[4+n*PageSize:]
		}
	}
	return payload, nil
}

// PageRun is Count consecutive pages starting at page First.
type PageRun struct {
	First uint64
	Count uint32
}

// ZeroPages marks runs of all-zero pages (source → destination): the
// destination zeroes them instead of receiving their bytes.
//
// A ZeroPages returned by Conn.Recv, and its Runs, belong to the Conn and
// are valid only until the next Recv.
type ZeroPages struct {
	Runs []PageRun
}

// Type returns TypeZeroPages.
func (*ZeroPages) Type() Type { return TypeZeroPages }

func (m *ZeroPages) appendPayload(b []byte) ([]byte, error) {
	return appendRuns(b, TypeZeroPages, m.Runs)
}

func (m *ZeroPages) decodePayload(d *decoder) { m.Runs = decodeRuns(d, m.Runs) }

// RoundEnd ends a RAM push round (source → destination): how many pages
// went as data and how many as zero runs.
type RoundEnd struct {
	Round     uint32
	PagesSent uint64
	ZeroPages uint64
}

// Type returns TypeRoundEnd.
func (*RoundEnd) Type() Type { return TypeRoundEnd }

func (m *RoundEnd) appendPayload(b []byte) ([]byte, error) {
	return appendU64(appendU64(appendU32(b, m.Round), m.PagesSent), m.ZeroPages), nil
}

func (m *RoundEnd) decodePayload(d *decoder) {
	m.Round = d.u32("Round")
	m.PagesSent = d.u64("PagesSent")
	m.ZeroPages = d.u64("ZeroPages")
}

// RoundAck confirms a round (destination → source) with the number of
// pages it received, data and zero runs together.
type RoundAck struct {
	Round         uint32
	PagesReceived uint64
}

// Type returns TypeRoundAck.
func (*RoundAck) Type() Type { return TypeRoundAck }

func (m *RoundAck) appendPayload(b []byte) ([]byte, error) {
	return appendU64(appendU32(b, m.Round), m.PagesReceived), nil
}

func (m *RoundAck) decodePayload(d *decoder) {
	m.Round = d.u32("Round")
	m.PagesReceived = d.u64("PagesReceived")
}

// PullRequest asks the source for pages (destination → source); usually
// empty. The source answers with PageData and ZeroPages, then PullEnd.
type PullRequest struct {
	Runs []PageRun
}

// Type returns TypePullRequest.
func (*PullRequest) Type() Type { return TypePullRequest }

func (m *PullRequest) appendPayload(b []byte) ([]byte, error) {
	return appendRuns(b, TypePullRequest, m.Runs)
}

func (m *PullRequest) decodePayload(d *decoder) { m.Runs = decodeRuns(d, m.Runs) }

// PullEnd ends the source's answer to a PullRequest. It has no payload.
type PullEnd struct{}

// Type returns TypePullEnd.
func (*PullEnd) Type() Type                             { return TypePullEnd }
func (*PullEnd) appendPayload(b []byte) ([]byte, error) { return b, nil }
func (*PullEnd) decodePayload(*decoder)                 {}

// TimeData carries the guest's time data as the source read it.
type TimeData struct {
	Data timedata.Data
}

// Type returns TypeTimeData.
func (*TimeData) Type() Type { return TypeTimeData }

func (m *TimeData) appendPayload(b []byte) ([]byte, error) {
	if !m.Data.Wallclock.Valid() {
		return b, fmt.Errorf("encoding TimeData: wall clock nanoseconds %d not below 1e9: %w", m.Data.Wallclock.Nsec, ErrInvalidMessage)
	}
	b = appendU64(b, m.Data.GuestFreq)
	b = appendU64(b, m.Data.GuestTSC)
	b = appendI64(b, m.Data.Hrtime)
	b = appendU64(b, m.Data.Wallclock.Sec)
	b = appendU32(b, m.Data.Wallclock.Nsec)
	return appendI64(b, m.Data.BootHrtime), nil
}

func (m *TimeData) decodePayload(d *decoder) {
	m.Data.GuestFreq = d.u64("GuestFreq")
	m.Data.GuestTSC = d.u64("GuestTSC")
	m.Data.Hrtime = d.i64("Hrtime")
	m.Data.Wallclock.Sec = d.u64("Wallclock.Sec")
	off := d.off
	m.Data.Wallclock.Nsec = d.u32("Wallclock.Nsec")
	if d.err == nil && !m.Data.Wallclock.Valid() {
		d.fail("Wallclock.Nsec", off, "%d not below 1e9", m.Data.Wallclock.Nsec)
	}
	m.Data.BootHrtime = d.i64("BootHrtime")
}

// DeviceState carries every device's exported state (source → destination).
type DeviceState struct {
	Devices []vmm.DeviceState
}

// Type returns TypeDeviceState.
func (*DeviceState) Type() Type { return TypeDeviceState }

func (m *DeviceState) appendPayload(b []byte) ([]byte, error) {
	if err := checkCount(TypeDeviceState, "devices", len(m.Devices), MaxDevices); err != nil {
		return b, err
	}
	b = appendU32(b, uint32(len(m.Devices)))
	var err error
	for i, dev := range m.Devices {
		field := fmt.Sprintf("Devices[%d]", i)
		if b, err = appendString(b, TypeDeviceState, field+".Name", dev.Name, MaxNameLen); err != nil {
			return b, err
		}
		if b, err = appendString(b, TypeDeviceState, field+".Kind", dev.Kind, MaxNameLen); err != nil {
			return b, err
		}
		b = appendU32(b, dev.Version)
		if b, err = appendBytes(b, TypeDeviceState, field+".Data", dev.Data, MaxPayload); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (m *DeviceState) decodePayload(d *decoder) {
	n := d.count("Devices", deviceMinSize, MaxDevices)
	if n == 0 {
		m.Devices = nil
		return
	}
	m.Devices = make([]vmm.DeviceState, n)
	for i := range m.Devices {
		dev := &m.Devices[i]
		dev.Name = d.str("Devices.Name", MaxNameLen)
		dev.Kind = d.str("Devices.Kind", MaxNameLen)
		dev.Version = d.u32("Devices.Version")
		dev.Data = d.bytesCopy("Devices.Data", MaxPayload)
		if d.err != nil {
			if fe, ok := d.err.(*FrameError); ok && fe.Field != "" {
				fe.Field = fmt.Sprintf("Devices[%d]%s", i, fe.Field[len("Devices"):])
			}
			return
		}
	}
}

// ServerState identifies a server and carries its console history; each
// side sends one (destination first).
type ServerState struct {
	Name    string
	Address string
	Console []byte
}

// Type returns TypeServerState.
func (*ServerState) Type() Type { return TypeServerState }

func (m *ServerState) appendPayload(b []byte) ([]byte, error) {
	var err error
	if b, err = appendString(b, TypeServerState, "Name", m.Name, MaxNameLen); err != nil {
		return b, err
	}
	if b, err = appendString(b, TypeServerState, "Address", m.Address, MaxNameLen); err != nil {
		return b, err
	}
	return appendBytes(b, TypeServerState, "Console", m.Console, MaxConsoleLen)
}

func (m *ServerState) decodePayload(d *decoder) {
	m.Name = d.str("Name", MaxNameLen)
	m.Address = d.str("Address", MaxNameLen)
	m.Console = d.bytesCopy("Console", MaxConsoleLen)
}

// PhaseTiming is one phase as the source timed it: Phase is a schema.Phase
// value; BeginNs and EndNs are the source's wall clock in Unix ns; Bytes and
// Pages count what the phase moved.
type PhaseTiming struct {
	Phase          uint8
	BeginNs, EndNs int64
	Bytes, Pages   uint64
}

// Finish closes the migration (source → destination): what the destination
// must verify, and the source's own record of the migration.
type Finish struct {
	// MemoryChecksum is the digest of guest memory taken at pause.
	MemoryChecksum [32]byte
	// DeviceDigest is the digest of the exported device state.
	DeviceDigest [32]byte
	// PauseHrtime and PauseWall are the source's monotonic and wall clocks
	// (ns) when it paused the VM.
	PauseHrtime int64
	PauseWall   int64
	// HandoffWall is the source's wall clock (Unix ns) when it sent Finish.
	HandoffWall int64
	// Phases are the source's phase timings, in order.
	Phases []PhaseTiming
}

// Type returns TypeFinish.
func (*Finish) Type() Type { return TypeFinish }

func (m *Finish) appendPayload(b []byte) ([]byte, error) {
	if err := checkCount(TypeFinish, "phase timings", len(m.Phases), MaxPhaseTimings); err != nil {
		return b, err
	}
	b = append(b, m.MemoryChecksum[:]...)
	b = append(b, m.DeviceDigest[:]...)
	b = appendI64(b, m.PauseHrtime)
	b = appendI64(b, m.PauseWall)
	b = appendI64(b, m.HandoffWall)
	b = appendU32(b, uint32(len(m.Phases)))
	for _, p := range m.Phases {
		b = append(b, p.Phase)
		b = appendI64(b, p.BeginNs)
		b = appendI64(b, p.EndNs)
		b = appendU64(b, p.Bytes)
		b = appendU64(b, p.Pages)
	}
	return b, nil
}

func (m *Finish) decodePayload(d *decoder) {
	copy(m.MemoryChecksum[:], d.take("MemoryChecksum", 32))
	copy(m.DeviceDigest[:], d.take("DeviceDigest", 32))
	m.PauseHrtime = d.i64("PauseHrtime")
	m.PauseWall = d.i64("PauseWall")
	m.HandoffWall = d.i64("HandoffWall")
	n := d.count("Phases", phaseTimingSize, MaxPhaseTimings)
	if n == 0 {
		m.Phases = nil
		return
	}
	m.Phases = make([]PhaseTiming, n)
	for i := range m.Phases {
		p := &m.Phases[i]
		p.Phase = d.u8("Phases.Phase")
		p.BeginNs = d.i64("Phases.BeginNs")
		p.EndNs = d.i64("Phases.EndNs")
		p.Bytes = d.u64("Phases.Bytes")
		p.Pages = d.u64("Phases.Pages")
	}
}

// Handoff is the source's commit (source → destination), sent after the
// destination's Okay to Finish. Once it is sent the source never resumes
// the VM: the destination owns the guest. It has no payload; it is a type
// of its own, not an Okay, so that no other acknowledgement can be taken
// for the commit.
type Handoff struct{}

// Type returns TypeHandoff.
func (*Handoff) Type() Type                             { return TypeHandoff }
func (*Handoff) appendPayload(b []byte) ([]byte, error) { return b, nil }
func (*Handoff) decodePayload(*decoder)                 {}

// Resumed is the destination's final acknowledgement (destination →
// source): it runs the guest. Until the source has it, by this message or
// by asking the destination's API, the source keeps its paused copy, so
// that a lost Handoff or a destination that failed to resume never leaves
// the guest on neither host.
type Resumed struct{}

// Type returns TypeResumed.
func (*Resumed) Type() Type                             { return TypeResumed }
func (*Resumed) appendPayload(b []byte) ([]byte, error) { return b, nil }
func (*Resumed) decodePayload(*decoder)                 {}

// VerifyMode is how the destination checks guest memory against the
// source's frozen at pause (docs/protocol.md §5 states what each mode
// detects, and when).
type VerifyMode uint8

// The verification modes. Codes never change meaning.
const (
	// VerifyFull: Finish carries the checksum of all memory; the
	// destination compares it before it accepts the handoff.
	VerifyFull VerifyMode = 1
	// VerifySampled: MemoryCheck carries the hashes of a random sample of
	// pages, compared before the handoff; MemoryDigest, after it, the
	// checksum of all memory.
	VerifySampled VerifyMode = 2
	// VerifyAfter: only MemoryDigest, after the handoff.
	VerifyAfter VerifyMode = 3
	// VerifyOff: memory is not compared.
	VerifyOff VerifyMode = 4
)

// Valid reports whether v is one of the modes.
func (v VerifyMode) Valid() bool { return v >= VerifyFull && v <= VerifyOff }

// Late reports whether the mode compares all memory after the handoff.
func (v VerifyMode) Late() bool { return v == VerifySampled || v == VerifyAfter }

func (v VerifyMode) String() string {
	switch v {
	case VerifyFull:
		return "full"
	case VerifySampled:
		return "sampled"
	case VerifyAfter:
		return "after"
	case VerifyOff:
		return "off"
	}
	return fmt.Sprintf("VerifyMode(%d)", uint8(v))
}

// PageHash is one sampled page and the xxhash64 of its contents.
type PageHash struct {
	Page, Hash uint64
}

// MemoryCheck (version 2; source → destination, just before Finish) says
// how the destination is to check guest memory, and carries the sample of
// VerifySampled.
type MemoryCheck struct {
	Mode VerifyMode
	// Samples are the pages the source hashed after the pause, in
	// increasing page order, each once; empty in the other modes.
	Samples []PageHash
}

// Type returns TypeMemoryCheck.
func (*MemoryCheck) Type() Type { return TypeMemoryCheck }

func (m *MemoryCheck) appendPayload(b []byte) ([]byte, error) {
	if !m.Mode.Valid() {
		return b, fmt.Errorf("encoding %s: mode %d: %w", TypeMemoryCheck, m.Mode, ErrInvalidMessage)
	}
	if err := checkCount(TypeMemoryCheck, "samples", len(m.Samples), MaxMemorySamples); err != nil {
		return b, err
	}
	b = append(b, byte(m.Mode))
	b = appendU32(b, uint32(len(m.Samples)))
	for _, p := range m.Samples {
		b = appendU64(appendU64(b, p.Page), p.Hash)
	}
	return b, nil
}

func (m *MemoryCheck) decodePayload(d *decoder) {
	off := d.off
	m.Mode = VerifyMode(d.u8("Mode"))
	if d.err == nil && !m.Mode.Valid() {
		d.fail("Mode", off, "mode %d, want 1 to 4", m.Mode)
		return
	}
	n := d.count("Samples", pageHashSize, MaxMemorySamples)
	if n == 0 {
		m.Samples = nil
		return
	}
	m.Samples = make([]PageHash, n)
	for i := range m.Samples {
		m.Samples[i] = PageHash{Page: d.u64("Samples.Page"), Hash: d.u64("Samples.Hash")}
	}
}

// MemoryDigest (version 2; source → destination, after Resumed, in the
// modes that compare memory after the handoff) is the checksum of all
// guest memory as it was frozen at the pause, the same digest as
// Finish.MemoryChecksum, computed by the source while it still held its
// paused copy.
type MemoryDigest struct {
	Checksum [32]byte
	// Pages is the number of pages it covers: all of guest memory.
	Pages uint64
}

// Type returns TypeMemoryDigest.
func (*MemoryDigest) Type() Type { return TypeMemoryDigest }

func (m *MemoryDigest) appendPayload(b []byte) ([]byte, error) {
	b = append(b, m.Checksum[:]...)
	return appendU64(b, m.Pages), nil
}

func (m *MemoryDigest) decodePayload(d *decoder) {
	copy(m.Checksum[:], d.take("Checksum", 32))
	m.Pages = d.u64("Pages")
}

func checkRun(t Type, what string, first, count uint64, max uint64) error {
	if count == 0 || count > max {
		return fmt.Errorf("encoding %s: %d %s, want 1 to %d: %w", t, count, what, max, ErrInvalidMessage)
	}
	if first > math.MaxUint64-count {
		return fmt.Errorf("encoding %s: page %d + %d %s overflows: %w", t, first, count, what, ErrInvalidMessage)
	}
	return nil
}

func appendRuns(b []byte, t Type, runs []PageRun) ([]byte, error) {
	if err := checkCount(t, "runs", len(runs), MaxRuns); err != nil {
		return b, err
	}
	b = appendU32(b, uint32(len(runs)))
	for _, r := range runs {
		if err := checkRun(t, "pages in a run", r.First, uint64(r.Count), math.MaxUint32); err != nil {
			return b, err
		}
		b = appendU32(appendU64(b, r.First), r.Count)
	}
	return b, nil
}

func decodeRuns(d *decoder, runs []PageRun) []PageRun {
	n := d.count("Runs", pageRunSize, MaxRuns)
	runs = runs[:0]
	for i := 0; i < n && d.err == nil; i++ {
		off := d.off
		r := PageRun{First: d.u64("Runs.First"), Count: d.u32("Runs.Count")}
		if d.err != nil {
			break
		}
		if r.Count == 0 {
			d.fail(fmt.Sprintf("Runs[%d].Count", i), off+8, "run of 0 pages")
			break
		}
		if r.First > math.MaxUint64-uint64(r.Count) {
			d.fail(fmt.Sprintf("Runs[%d].First", i), off, "page %d + %d pages overflows", r.First, r.Count)
			break
		}
		runs = append(runs, r)
	}
	return runs
}
