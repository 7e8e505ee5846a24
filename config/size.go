package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Size is a number of bytes, written in a configuration file as a plain
// integer (1024) or with a unit: decimal KB, MB, GB, TB (powers of 1000) or
// binary KiB, MiB, GiB, TiB (powers of 1024), case-insensitive, optionally
// with a fraction that comes to a whole number of bytes (1.5KiB).
type Size int64

// Size units.
const (
	Byte Size = 1
	KB   Size = 1000
	MB   Size = 1000 * KB
	GB   Size = 1000 * MB
	TB   Size = 1000 * GB
	KiB  Size = 1 << 10
	MiB  Size = 1 << 20
	GiB  Size = 1 << 30
	TiB  Size = 1 << 40
)

var sizeUnits = []struct {
	name string
	size Size
}{
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB},
	{"B", Byte},
}

// ParseSize parses a size such as "1MiB", "512KB", "1.5 KiB" or "1024".
// Negative sizes, unknown units and sizes beyond math.MaxInt64 bytes are
// errors.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size")
	}
	if t[0] == '-' {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	whole, frac, hasDot := strings.Cut(num, ".")
	if whole+frac == "" || strings.Contains(frac, ".") || (hasDot && frac == "") {
		return 0, fmt.Errorf("bad size %q (want a number of bytes, optionally with a unit: 1024, 512KB, 1MiB)", s)
	}
	mult := Size(0)
	if unit == "" {
		mult = Byte
	}
	for _, u := range sizeUnits {
		if strings.EqualFold(unit, u.name) {
			mult = u.size
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("bad size %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, unit)
	}
	// Exact arithmetic: (whole.frac) * mult must be a whole number of bytes.
	n, ok := new(big.Int).SetString(whole+frac, 10)
	if !ok {
		return 0, fmt.Errorf("bad size %q", s)
	}
	n.Mul(n, big.NewInt(int64(mult)))
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	q, r := new(big.Int).QuoRem(n, den, new(big.Int))
	if r.Sign() != 0 {
		return 0, fmt.Errorf("bad size %q: not a whole number of bytes", s)
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("size %q is too large (max %d bytes)", s, int64(math.MaxInt64))
	}
	return Size(q.Int64()), nil
}

// String formats s in the largest unit that divides it exactly, so that
// ParseSize(s.String()) == s: 1048576 is "1MiB", 2000 is "2KB", 1500 is
// "1500".
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	best := sizeUnits[len(sizeUnits)-1]
	for _, u := range sizeUnits {
		if s%u.size == 0 && u.size > best.size {
			best = u
		}
	}
	if best.size == Byte {
		return strconv.FormatInt(int64(s), 10)
	}
	return strconv.FormatInt(int64(s/best.size), 10) + best.name
}

// MarshalText implements encoding.TextMarshaler with String, so a Config
// marshalled to YAML or JSON shows sizes as they are written.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
