package config_test

import (
	"slices"
	"testing"
)

const adminRoute = "routes:\n  - {name: r, upstreams: [http://127.0.0.1:9000]}\n"

func TestAdminAllowedHosts(t *testing.T) {
	cfg, err := testLoader.Parse("sluice.yaml", []byte("admin: {allowed_hosts: [Sidecar.Internal, 10.0.0.7, '[fd00::1]', admin.example.]}\n"+adminRoute))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sidecar.internal", "10.0.0.7", "[fd00::1]", "admin.example"}; !slices.Equal(cfg.Admin.AllowedHosts, want) {
		t.Errorf("allowed_hosts = %q, want %q", cfg.Admin.AllowedHosts, want)
	}
}

func TestAdminAllowedHostsErrors(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"[sidecar:9901]", `sluice.yaml:1:25: admin.allowed_hosts[0]: "sidecar:9901": want a host name or IP address without a port or scheme`},
		{"[http://sidecar]", `sluice.yaml:1:25: admin.allowed_hosts[0]: "http://sidecar": want a host name or IP address without a port or scheme`},
		{"[ok, 'a b']", `sluice.yaml:1:29: admin.allowed_hosts[1]: "a b" is not a host name: ' ' is not allowed`},
		{"[-bad]", `sluice.yaml:1:25: admin.allowed_hosts[0]: "-bad" is not a host name`},
		{"sidecar", `sluice.yaml:1:24: admin.allowed_hosts: `},
	} {
		got := errorLines(t, "admin: {allowed_hosts: "+tc.value+"}\n"+adminRoute)
		if len(got) != 1 || len(got[0]) < len(tc.want) || got[0][:len(tc.want)] != tc.want {
			t.Errorf("allowed_hosts: %s: errors %q, want one starting %q", tc.value, got, tc.want)
		}
	}
}
