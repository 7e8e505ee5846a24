package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCommandTree walks the whole tree: every command documents itself and
// answers --help with its usage and exit status 0.
func TestCommandTree(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Short == "" {
			t.Errorf("%q has no Short description", strings.Join(path, " "))
		}
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Name() == "help" {
				continue
			}
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(NewRootCommand(), nil)

	want := []string{"serve", "validate", "dlq", "dlq list", "dlq show", "dlq replay", "dlq purge",
		"health", "sim", "demo", "completion", "completion bash", "completion zsh", "completion fish", "completion powershell"}
	have := map[string]bool{}
	for _, p := range paths {
		have[strings.Join(p, " ")] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("command %q is missing from the tree", w)
		}
	}

	for _, p := range paths {
		code, out, errOut := runCmd(t, append(p, "--help")...)
		name := strings.Join(append([]string{"sluice"}, p...), " ")
		if code != 0 || errOut != "" {
			t.Errorf("%s --help: exit %d, stderr %q", name, code, errOut)
		}
		if !strings.Contains(out, "Usage:") || !strings.Contains(out, name) {
			t.Errorf("%s --help printed no usage for itself:\n%s", name, out)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, "--version")
	if code != 0 || !strings.HasPrefix(out, "sluice dev (") || !strings.Contains(out, "go1.") {
		t.Fatalf("--version: exit %d, %q; want \"sluice dev (... goX.Y ...)\"", code, out)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"validate"}, "accepts 1 arg(s), received 0"},
		{[]string{"serve", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"demo", "--duration", "1s"}, "--duration must be at least 3s, got 1s"},
		{[]string{"sim", "--scenario", "tsunami"}, `--scenario "tsunami": want one of outage,`},
		{[]string{"dlq", "replay"}, "replay needs exactly one of"},
		{[]string{"dlq", "purge"}, "purge needs message IDs"},
		{[]string{"health", "--admin", "ftp://x"}, "want an http:// or https:// URL"},
	} {
		code, out, errOut := runCmd(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.msg) || !strings.Contains(errOut, "--help' for usage") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.msg)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash":       "bash completion",
		"zsh":        "#compdef sluice",
		"fish":       "fish completion",
		"powershell": "Register-ArgumentCompleter",
	} {
		code, out, errOut := runCmd(t, "completion", shell)
		if code != 0 || !strings.Contains(out, marker) {
			t.Errorf("completion %s: exit %d, stderr %q, output lacks %q", shell, code, errOut, marker)
		}
	}
}

func TestExitErrorIsSilent(t *testing.T) {
	var b strings.Builder
	if code := exitStatus(nil, &exitError{code: 3}, &b); code != 3 || b.String() != "" {
		t.Errorf("exitError{3}: exit %d, printed %q; want 3 and nothing", code, b.String())
	}
	b.Reset()
	if code := exitStatus(nil, errors.New("boom"), &b); code != 1 || b.String() != "sluice: boom\n" {
		t.Errorf("plain error: exit %d, printed %q; want 1 and \"sluice: boom\"", code, b.String())
	}
}
