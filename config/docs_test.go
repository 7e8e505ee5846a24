package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/sluice-go/sluice/config"
)

// TestDocumentedDefaultIsEmbedded checks that the default configuration
// docs/config.md shows is the one `sluice serve` embeds, word for word, so
// the page cannot go on describing a policy the binary no longer runs.
func TestDocumentedDefaultIsEmbedded(t *testing.T) {
	page, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "## The default configuration"
	_, section, ok := strings.Cut(string(page), heading)
	if !ok {
		t.Fatalf("docs/config.md has no %q section", heading)
	}
	_, block, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatalf("docs/config.md: no yaml block under %q", heading)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatalf("docs/config.md: the yaml block under %q is not closed", heading)
	}
	if want := string(config.DefaultYAML()); block != want {
		t.Errorf("docs/config.md's default configuration differs from config/default.yaml:\n--- documented\n%s--- embedded\n%s", block, want)
	}
}
