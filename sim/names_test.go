package sim

import (
	"slices"
	"strings"
	"testing"
)

// The built-in policies are named for what they are; the policy once named
// after the document it came from is still accepted under that name.
func TestBuiltinPolicyNames(t *testing.T) {
	t.Parallel()
	want := []string{"none", "naive", "no-budget-exponential", "sluice-default"}
	if got := BuiltinPolicies(); !slices.Equal(got, want) {
		t.Errorf("BuiltinPolicies() = %v, want %v", got, want)
	}
	for _, n := range BuiltinPolicies() {
		if strings.Contains(n, "original") {
			t.Errorf("built-in policy %q is named after a document, not for what it does", n)
		}
	}
	for _, tc := range []struct{ rule, name, want string }{
		{"the new name", "no-budget-exponential", "no-budget-exponential"},
		{"the deprecated alias reports the new name", "original-network", "no-budget-exponential"},
	} {
		specs, err := resolvePolicies([]string{tc.name}, nil)
		if err != nil || len(specs) != 1 || specs[0].name != tc.want {
			t.Errorf("%s: resolvePolicies(%q) = %v, %v; want one policy named %q", tc.rule, tc.name, specs, err, tc.want)
			continue
		}
		s := specs[0]
		if s.retry == nil || s.retry.MaxAttempts != 5 || !s.budget.off || s.breaker == nil {
			t.Errorf("%s: %q is not 5 attempts without a budget, with a breaker: %+v", tc.rule, tc.name, s)
		}
	}
	if _, err := resolvePolicies([]string{"no-budget-exponential", "original-network"}, nil); err == nil {
		t.Error("the policy and its alias were both accepted: the report would list it twice")
	}
}
