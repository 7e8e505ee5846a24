package dlqtest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryConformance(t *testing.T) {
	dlqtest.RunConformance(t, func(t *testing.T, clock sluice.Clock) dlq.Store {
		return dlqtest.NewMemory(clock)
	})
}
