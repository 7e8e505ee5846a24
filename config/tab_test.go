package config_test

import (
	"strings"
	"testing"
)

// A tab in the indentation is a YAML syntax error whose text names neither
// the column nor the cause; Parse points at the tab and says what to do.
// A tab elsewhere (before a comment, inside a value) is not indentation and
// keeps YAML's own message.
func TestTabInIndentationNamesItsColumn(t *testing.T) {
	t.Parallel()
	const hint = "invalid YAML: a tab in the indentation: YAML does not allow tabs for indentation; use spaces"
	tests := []struct {
		rule, src, want string
	}{
		{"a tab indenting a key", "listen: 127.0.0.1:8080\nroutes:\n  - name: a\n\tmatch: {path_prefix: /}\n", "sluice.yaml:4:1: " + hint},
		{"a tab indenting a list item", "listen: :80\nroutes:\n\t- name: a\n", "sluice.yaml:3:1: " + hint},
		{"a tab after spaces", "policies:\n  p:\n    retry:\n  \t  max_attempts: 3\n", "sluice.yaml:4:3: " + hint},
		{"a tab at the top level", "listen: :80\n\troutes: []\n", "sluice.yaml:2:1: " + hint},
		{"another character that cannot start a token", "listen: :80\nadmin: @x\n", "sluice.yaml:2: invalid YAML: found character that cannot start any token"},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			t.Parallel()
			if got := strings.Join(errorLines(t, tt.src), "\n"); got != tt.want {
				t.Errorf("errors:\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}
