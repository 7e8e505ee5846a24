package fleet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// bin is the sluice binary TestMain builds once for every test; buildErr
// is why it could not.
var (
	bin      string
	buildErr error
)

// quiet drops go-redis's log lines (failed dials while a test has killed
// Redis); the tests check what the fleet does instead.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-fleet-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bin = filepath.Join(dir, "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sluice-go/sluice/cmd/sluice").CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, out)
	}
	redis.SetLogger(quiet{})
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { os.RemoveAll(dir) }))
}

// needBinary fails t when TestMain could not build sluice.
func needBinary(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}
