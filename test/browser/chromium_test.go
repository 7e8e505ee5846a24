package browser_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluice-go/sluice/internal/testenv"
)

// startChromium starts a headless Chromium and returns its tab's context.
// It skips the test where there is no chromium (fails with
// SLUICE_REQUIRE_ALL=1). The browser resolves evil.test to 127.0.0.1, as a
// DNS-rebinding attacker's name would after the rebind. The cleanup closes
// the browser, waits for its process, and checks that none is left.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	chromium := testenv.RequireTool(t, "chromium", "apt-get install -y chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, no-first-run, disable-background-networking, disable-sync...
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1"),
		chromedp.WindowSize(1280, 1000),
		// No UserDataDir: the allocator makes a fresh temporary one, and
		// when the browser exits it kills any child still using it and
		// removes it.
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil { // start the browser
		cancel()
		allocCancel()
		t.Fatalf("start chromium: %v", err)
	}
	proc := chromedp.FromContext(ctx).Browser.Process()
	t.Cleanup(func() {
		// Close the browser gracefully, then cancel the allocator, which
		// waits until the process has exited and its directory is gone.
		closeCtx, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		if err := chromedp.Cancel(closeCtx); err != nil {
			t.Errorf("close chromium: %v", err)
		}
		cancel()
		allocCancel()
		if proc != nil {
			if err := proc.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("chromium (pid %d) still running after the test: %v", proc.Pid, err)
			}
		}
	})
	return ctx
}
