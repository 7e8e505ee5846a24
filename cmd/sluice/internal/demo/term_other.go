//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package demo

import "os"

// terminalWidth returns 0: the width of a terminal is not known here, and
// the status line keeps its default width.
func terminalWidth(*os.File) int { return 0 }
