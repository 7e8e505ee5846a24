package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateGoodFile(t *testing.T) {
	code, out, errOut := runCmd(t, "validate", "testdata/good.yaml")
	if code != 0 || out != "testdata/good.yaml: ok\n" || errOut != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and \"testdata/good.yaml: ok\"", code, out, errOut)
	}
}

func TestValidateBadFile(t *testing.T) {
	want := []string{
		`testdata/bad.yaml:5:39: policies.network.retry.backoff: unknown backoff "expo" (want exponential, linear, constant, decorrelated)`,
		`testdata/bad.yaml:5:57: policies.network.retry.base_delay: bad duration "fast" (want a Go duration such as 30s, 500ms or 1m30s)`,
		`testdata/bad.yaml:6:37: policies.network.circuit_breaker.failure_rate: must be greater than 0 and at most 1, got 1.5`,
		`testdata/bad.yaml:10:17: routes[0].upstreams[0]: bad upstream URL "ftp://127.0.0.1:9000": want an http:// or https:// URL`,
		`testdata/bad.yaml:11:13: routes[0].policy: unknown policy "netwrok" (did you mean network?)`,
		`testdata/bad.yaml:12:19: routes[0].on_exhausted: unknown on_exhausted "later" (want queue, fail)`,
	}
	root := NewRootCommand()
	var out, errOut strings.Builder
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"validate", "testdata/bad.yaml"})
	err := root.Execute()
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || ee.err != nil {
		t.Fatalf("Execute returned %v; want a silent exitError with status 1", err)
	}
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("validate printed\n%s\nwant\n%s", out.String(), strings.Join(want, "\n"))
	}
	if errOut.String() != "" {
		t.Errorf("stderr %q; want nothing", errOut.String())
	}
	if code, _, errOut := runCmd(t, "validate", "testdata/bad.yaml"); code != 1 || errOut != "" {
		t.Errorf("the process would exit %d with stderr %q; want 1 and nothing", code, errOut)
	}
}

func TestValidateMissingFile(t *testing.T) {
	code, out, _ := runCmd(t, "validate", "testdata/no-such-file.yaml")
	if code != 1 || !strings.HasPrefix(out, "testdata/no-such-file.yaml") {
		t.Fatalf("exit %d, stdout %q; want 1 and a line naming the file", code, out)
	}
}

// TestValidateBuildsPolicies: a value the parser accepts but a policy
// refuses is caught too, as serve would refuse it at start.
func TestValidateBuildsPolicies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	data := "routes:\n  - name: a\n    upstreams: [http://127.0.0.1:1]\n    policy: p\npolicies:\n  p:\n    bulkhead: {max_concurrent: 100000000}\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(t, "validate", path)
	if code != 1 || !strings.HasPrefix(out, path+`: config: route "a": bulkhead:`) || !strings.Contains(out, "MaxConcurrent") {
		t.Fatalf("exit %d, stdout %q; want 1 and the bulkhead's refusal", code, out)
	}
}
