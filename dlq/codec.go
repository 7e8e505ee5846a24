package dlq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"time"
)

// The record layout (docs/dlq.md, "File format"): every integer is a uvarint
// unless noted, strings and byte slices are a uvarint length then the bytes.
//
//	version (1 byte, = recordVersion)
//	state (1 byte)
//	attempts, replays
//	first failure, last failure, next replay (8 bytes each, big-endian
//	    Unix nanoseconds; 0 is the zero time)
//	queue, last error
//	header count, then key and value of each header, keys sorted
//	payload
//	CRC-32C of everything above (4 bytes, big-endian)
const recordVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadRecord = errors.New("bad record")

// encodedSize returns the exact length encodeRecord will produce for m.
func encodedSize(m *Message) int {
	n := 2 + uvarintLen(uint64(m.Attempts)) + uvarintLen(uint64(m.Replays)) + 3*8
	n += strLen(len(m.Queue)) + strLen(len(m.LastError))
	n += uvarintLen(uint64(len(m.Headers)))
	for k, v := range m.Headers {
		n += strLen(len(k)) + strLen(len(v))
	}
	n += strLen(len(m.Payload))
	return n + 4
}

func strLen(n int) int { return uvarintLen(uint64(n)) + n }

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// encodeRecord appends the record form of m (everything but its ID, which is
// the key) to dst.
func encodeRecord(dst []byte, m *Message) []byte {
	start := len(dst)
	dst = append(dst, recordVersion, byte(m.State))
	dst = binary.AppendUvarint(dst, uint64(m.Attempts))
	dst = binary.AppendUvarint(dst, uint64(m.Replays))
	dst = binary.BigEndian.AppendUint64(dst, uint64(timeToNanos(m.FirstFailure)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(timeToNanos(m.LastFailure)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(timeToNanos(m.NextReplay)))
	dst = appendString(dst, m.Queue)
	dst = appendString(dst, m.LastError)
	dst = binary.AppendUvarint(dst, uint64(len(m.Headers)))
	keys := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same message always encodes to the same bytes
	for _, k := range keys {
		dst = appendString(dst, k)
		dst = appendString(dst, m.Headers[k])
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Payload)))
	dst = append(dst, m.Payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeRecord parses a record made by encodeRecord, copying everything out
// of b (which may be memory-mapped and valid only inside a transaction).
func decodeRecord(id ID, b []byte) (Message, error) {
	if len(b) < 2+4 {
		return Message{}, fmt.Errorf("%w: %d bytes", errBadRecord, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return Message{}, fmt.Errorf("%w: checksum mismatch", errBadRecord)
	}
	if body[0] != recordVersion {
		return Message{}, fmt.Errorf("%w: unknown record version %d", errBadRecord, body[0])
	}
	d := decoder{b: body[2:]}
	m := Message{ID: id, State: State(body[1])}
	m.Attempts = d.int()
	m.Replays = d.int()
	m.FirstFailure = nanosToTime(d.fixed64())
	m.LastFailure = nanosToTime(d.fixed64())
	m.NextReplay = nanosToTime(d.fixed64())
	m.Queue = string(d.bytes())
	m.LastError = string(d.bytes())
	if n := d.int(); n > 0 && d.err == nil {
		if n > len(d.b) { // each header takes at least two bytes
			d.err = errBadRecord
		} else {
			m.Headers = make(map[string]string, n)
			for range n {
				k := string(d.bytes())
				m.Headers[k] = string(d.bytes())
			}
		}
	}
	if p := d.bytes(); len(p) > 0 {
		m.Payload = append([]byte(nil), p...)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errBadRecord, len(d.b))
	}
	if d.err == nil && (m.State != StateReady && m.State != StateParked) {
		d.err = fmt.Errorf("%w: state %d", errBadRecord, m.State)
	}
	if d.err != nil {
		return Message{}, d.err
	}
	return m, nil
}

// decoder reads fields; the first error sticks and later reads return zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", errBadRecord)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	v := d.uvarint()
	if v > math.MaxInt32 {
		d.err = fmt.Errorf("%w: count %d out of range", errBadRecord, v)
		return 0
	}
	return int(v)
}

func (d *decoder) fixed64() int64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = fmt.Errorf("%w: short time field", errBadRecord)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return int64(v)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: field of %d bytes past the end", errBadRecord, n)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// timeToNanos maps the zero time to 0 and other times to Unix nanoseconds
// (times outside 1678–2262 are clamped, which a DLQ never meets).
func timeToNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nanosToTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
