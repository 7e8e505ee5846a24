package config_test

import (
	"errors"
	"testing"

	"github.com/sluice-go/sluice/config"
	"go.yaml.in/yaml/v3"
)

// FuzzParse checks that Parse never panics, that every error it reports
// carries the file and a line, and that every config it accepts survives a
// round trip through Redacted and YAML. The seed corpus in
// testdata/fuzz/FuzzParse holds valid and invalid files.
func FuzzParse(f *testing.F) {
	f.Add([]byte(route))
	f.Add(config.DefaultYAML())
	l := config.Loader{LookupEnv: env("TOKEN", "t0k", "PORT", "9000")}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := l.Parse("fuzz.yaml", data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a Config with an error")
			}
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v, want non-empty config.Errors", err, err)
			}
			for _, e := range errs {
				if e.Line < 1 || e.Column < 0 || e.File != "fuzz.yaml" || e.Msg == "" {
					t.Fatalf("error without a position or message: %#v", e)
				}
			}
			return
		}
		text, err := yaml.Marshal(cfg.Redacted())
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := l.Parse("again.yaml", text)
		if err != nil {
			t.Fatalf("the redacted config does not parse: %v\n%s", err, text)
		}
		text2, err := yaml.Marshal(again.Redacted())
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if string(text) != string(text2) {
			t.Fatalf("round trip changed the config:\n%s\nbecame\n%s", text, text2)
		}
	})
}
