// Package issues holds one regression test per fixed bug; see README.md.
// The package has no code of its own.
package issues
