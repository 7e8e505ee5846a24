// Package ids makes 128-bit identifiers that sort by creation time and are
// unique across processes without coordination: 48 bits of Unix milliseconds
// followed by 80 bits that start random in each millisecond and count up
// within it, so ids made by one Generator are strictly increasing even when
// many are made in the same millisecond or the clock steps back. The text
// form is 26 characters of Crockford base32 whose string order is the byte
// order (the layout of a ULID).
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// ID is a 128-bit identifier: 6 bytes of big-endian Unix milliseconds, then
// 10 bytes of entropy and counter.
type ID [16]byte

// maxMillis is the largest time a 48-bit millisecond field holds (year 10889).
const maxMillis = 1<<48 - 1

// Generator makes increasing IDs. The zero value is ready to use and safe for
// concurrent use; it holds the last id so the next one sorts after it.
type Generator struct {
	mu     sync.Mutex
	ms     uint64 // millisecond of the last id
	hi     uint16 // top 16 bits of the 80-bit tail of the last id
	lo     uint64 // low 64 bits of the tail
	primed bool
}

// NewAt returns an id for time now that sorts after every id this Generator
// returned before. When now is not after the previous id's millisecond (same
// millisecond, or a clock that stepped back), the previous millisecond is kept
// and the tail is incremented.
func (g *Generator) NewAt(now time.Time) ID {
	ms := uint64(max(now.UnixMilli(), 0))
	ms = min(ms, maxMillis)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.primed || ms > g.ms {
		var b [10]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		g.ms, g.hi, g.lo, g.primed = ms, binary.BigEndian.Uint16(b[:2]), binary.BigEndian.Uint64(b[2:]), true
		// Leave headroom so a burst within the millisecond cannot overflow
		// the tail: clear the top bit.
		g.hi &^= 0x8000
	} else {
		g.lo++
		if g.lo == 0 {
			g.hi++
			if g.hi == 0 { // 2^80 ids in one millisecond: borrow the next one
				g.ms++
			}
		}
	}
	var id ID
	id[0] = byte(g.ms >> 40)
	id[1] = byte(g.ms >> 32)
	id[2] = byte(g.ms >> 24)
	id[3] = byte(g.ms >> 16)
	id[4] = byte(g.ms >> 8)
	id[5] = byte(g.ms)
	binary.BigEndian.PutUint16(id[6:8], g.hi)
	binary.BigEndian.PutUint64(id[8:], g.lo)
	return id
}

// Time returns the millisecond at which id was made, in UTC.
func (id ID) Time() time.Time {
	ms := uint64(id[0])<<40 | uint64(id[1])<<32 | uint64(id[2])<<24 | uint64(id[3])<<16 | uint64(id[4])<<8 | uint64(id[5])
	return time.UnixMilli(int64(ms)).UTC()
}

// IsZero reports whether id is the zero ID, which no Generator returns.
func (id ID) IsZero() bool { return id == ID{} }

// Crockford's base32 alphabet: no I, L, O, U, so ids read aloud well.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// EncodedLen is the length of an ID's text form.
const EncodedLen = 26

// String returns the 26-character text form.
func (id ID) String() string {
	var b [EncodedLen]byte
	id.encode(&b)
	return string(b[:])
}

// AppendText appends the text form to dst.
func (id ID) AppendText(dst []byte) []byte {
	var b [EncodedLen]byte
	id.encode(&b)
	return append(dst, b[:]...)
}

// encode writes 128 bits as 26 five-bit digits, most significant first; the
// first digit carries only the top 3 bits (26*5 = 130).
func (id ID) encode(b *[EncodedLen]byte) {
	hi := binary.BigEndian.Uint64(id[:8])
	lo := binary.BigEndian.Uint64(id[8:])
	for i := EncodedLen - 1; i >= 0; i-- {
		b[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
}

// ErrSyntax is returned by Parse for text that is not an ID.
var ErrSyntax = errors.New("ids: invalid id syntax")

// Parse decodes the text form made by String. Lower case is accepted; the
// letters I, L and O read as 1, 1 and 0, as Crockford's base32 allows.
func Parse(s string) (ID, error) {
	if len(s) != EncodedLen {
		return ID{}, ErrSyntax
	}
	var hi, lo uint64
	for i := 0; i < EncodedLen; i++ {
		v := decodeDigit(s[i])
		if v < 0 || (i == 0 && v > 7) {
			return ID{}, ErrSyntax
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	var id ID
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id, nil
}

func decodeDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		c -= 'a' - 'A'
	}
	switch c {
	case 'I', 'L':
		return 1
	case 'O':
		return 0
	case 'U':
		return -1
	}
	for i := 10; i < len(alphabet); i++ {
		if alphabet[i] == c {
			return i
		}
	}
	return -1
}
