// Package browser holds the tests that drive a real headless Chromium: the
// dashboard as an operator sees it, and the admin API against the attacks a
// web page could make on it. It is its own module so that the browser
// driver (chromedp) never enters the library's go.mod.
//
// Run it from this directory:
//
//	go test -race ./...
//
// A test skips where no chromium is on PATH, and fails instead when
// SLUICE_REQUIRE_ALL=1 (as CI sets it).
package browser
